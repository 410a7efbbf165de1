"""Request limits.

A body above MAX_CONTENT_LENGTH (Flask's own setting, read from the environment by
scale/settings.py) is refused with a 413 when an endpoint reads it: before a byte of it is
read when its Content-Length says so, at the first byte past the limit when it comes chunked
(Transfer-Encoding: chunked, no length). Endpoints that never read a body ignore it. A chunked
body that is not valid chunked encoding, and JSON that does not parse (malformed, or nested
deeper than Python's parser recurses), are a 400 that says so, never a 500.
"""

from flask import Request, jsonify
from flask.json.provider import DefaultJSONProvider
from gunicorn.http.errors import ParseException
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge
from werkzeug.utils import cached_property
from werkzeug.wsgi import LimitedStream


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with nesting too deep to parse reported as bad JSON, not a 500."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as error:
            raise ValueError("JSON nested too deeply") from error


class StreamedBody(LimitedStream):
    """A body without a length, read up to ``limit`` bytes. Werkzeug's own stops reading at the
    limit and keeps what it read, so the application would take a truncated body for the whole
    one: here a byte past the limit is a 413, as a Content-Length above it is."""

    def __init__(self, stream, limit):
        super().__init__(stream, limit, is_max=True)
        self.source = stream

    def on_exhausted(self):
        if self.source.read(1):
            raise RequestEntityTooLarge()

    def readall(self):
        data = super().readall()
        if self.is_exhausted:
            self.on_exhausted()
        return data


class JSONRequest(Request):
    """A request whose unparsable JSON body is a 400 that says so, and whose streamed body
    is held to MAX_CONTENT_LENGTH like a sized one."""

    @cached_property
    def stream(self):
        limit = self.max_content_length
        if limit is not None and self.content_length is None and "wsgi.input_terminated" in self.environ:
            return StreamedBody(self.environ["wsgi.input"], limit)
        return super().stream

    def on_json_loading_failed(self, e):
        if e is None:  # not a JSON content type: Flask's 415
            return super().on_json_loading_failed(e)
        raise BadRequest(description="the request body is not valid JSON") from e


def register(app):
    app.json = JSONProvider(app)
    app.request_class = JSONRequest

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return jsonify(error=error.name, message=f"the request body is larger than {limit} bytes"), 413

    @app.errorhandler(ParseException)
    def bad_body(error):
        """gunicorn could not decode the body as the application read it (bad chunked encoding):
        the client's fault, a 400 like any other bad request, with no traceback in the log."""
        return jsonify(error="Bad Request", message="the request body is not valid chunked encoding"), 400
