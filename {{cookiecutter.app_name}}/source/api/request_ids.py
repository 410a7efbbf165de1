"""Request IDs: one per request, in its log lines and its response.

Ambassador (Envoy) sends an X-Request-Id; the service keeps it when it is safe to log and to
echo (at most 128 letters, digits and ._:-), and makes one otherwise, so a request can be
followed from the edge through every log line it caused.
"""
import re
import uuid

from flask import g, has_request_context, request

HEADER = "X-Request-Id"
VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")


def from_header(value):
    """``value`` if it is a valid request ID, else a new one."""
    if value and VALID.fullmatch(value):
        return value
    return uuid.uuid4().hex


def current():
    """The ID of the request being handled; None outside a request."""
    if not has_request_context():
        return None
    if "request_id" not in g:
        g.request_id = from_header(request.headers.get(HEADER))
    return g.request_id


def register(app):
    @app.after_request
    def return_request_id(response):
        response.headers[HEADER] = current()
        return response
