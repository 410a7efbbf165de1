"""Request limits and safe response headers.

A body above MAX_CONTENT_LENGTH is refused with 413 before it is read, JSON that does not
parse (malformed, or nested deeper than Python's parser recurses) is a 400, and no response
may be sniffed into another content type by a browser.
"""
from flask import Request, abort, current_app, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with nesting too deep to parse reported as bad JSON (400), not a 500."""

    def loads(self, s, **kwargs):
        try:
            return super().loads(s, **kwargs)
        except RecursionError as error:
            raise ValueError("JSON nested too deeply") from error


class JSONRequest(Request):
    """A request whose unparsable JSON body is a 400 that says so."""

    def on_json_loading_failed(self, e):
        if e is None:  # not a JSON content type: Flask's 415
            return super().on_json_loading_failed(e)
        raise BadRequest(description="the request body is not valid JSON") from e


def register(app):
    app.json = JSONProvider(app)
    app.request_class = JSONRequest

    @app.before_request
    def refuse_large_bodies():
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        if request.content_length is not None and request.content_length > limit:
            abort(413, description=f"the request body is larger than {limit} bytes")

    @app.after_request
    def no_sniffing(response):
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response
