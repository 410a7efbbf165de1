"""What every request goes through: its ID, the body limit, metrics and safe headers.

One hook before and one after each request, kept small: they run on every call, /livez
included, and cost the service its requests per second.
"""
from time import perf_counter

from flask import abort, request

from . import metrics, request_ids

_STARTED = "api.started"


def register(app):
    @app.before_request
    def before():
        environ = request.environ
        environ[_STARTED] = perf_counter()
        limit = app.config["MAX_CONTENT_LENGTH"]
        length = request.content_length
        if length is not None and length > limit:
            abort(413, description=f"the request body is larger than {limit} bytes")

    @app.after_request
    def after(response):
        environ = request.environ
        headers = response.headers
        headers["X-Request-Id"] = request_ids.current()
        # No browser may sniff a response into another content type.
        headers["X-Content-Type-Options"] = "nosniff"
        rule = request.url_rule
        started = environ.get(_STARTED)
        if started is not None:
            metrics.observe(rule.rule if rule else "unmatched", request.method, response.status_code,
                            perf_counter() - started)
        return response
