"""Request limits.

A body above MAX_CONTENT_LENGTH (Flask's own setting, read from the environment by
scale/settings.py) is refused with a 413 when an endpoint reads it, before a byte of it is read;
endpoints that never read a body ignore it. JSON that does not parse (malformed, or nested
deeper than Python's parser recurses) is a 400 that says so, never a 500.
"""

from flask import Request, jsonify
from flask.json.provider import DefaultJSONProvider
from werkzeug.exceptions import BadRequest, RequestEntityTooLarge


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with nesting too deep to parse reported as bad JSON, not a 500."""

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

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error):
        limit = app.config["MAX_CONTENT_LENGTH"]
        return jsonify(error=error.name, message=f"the request body is larger than {limit} bytes"), 413
