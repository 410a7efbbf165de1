"""Every error leaves the service as JSON, never as an HTML page."""

from flask import jsonify
from werkzeug.exceptions import HTTPException, InternalServerError


def register(app):
    """Install the JSON error handlers on ``app``."""

    @app.errorhandler(HTTPException)
    def http_error(error):
        return jsonify(error=error.name, message=error.description), error.code

    @app.errorhandler(Exception)
    def unhandled_error(error):
        app.logger.exception("unhandled error")
        server_error = InternalServerError()
        return jsonify(error=server_error.name, message=server_error.description), 500
