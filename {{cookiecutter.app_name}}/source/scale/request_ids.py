"""Request IDs: one per request, in its log lines and its response.

Ambassador (Envoy) sends an X-Request-Id; the service keeps it when it is safe to log and to
echo (at most 128 letters, digits and ._:-), and makes one otherwise, so a request can be
followed from the edge through every log line it caused.
"""

import os
import re

from flask import has_request_context, request

HEADER = "X-Request-Id"
VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
ENVIRON_KEY = "scale.request_id"  # where scale.middleware keeps it


def from_header(value):
    """``value`` if it is a valid request ID, else a new random one (128 bits, hex)."""
    if value and VALID.fullmatch(value):
        return value
    return os.urandom(16).hex()


def current():
    """The ID of the request being handled; None outside a request."""
    if not has_request_context():
        return None
    environ = request.environ
    request_id = environ.get(ENVIRON_KEY)
    if request_id is None:  # a request that did not pass through scale.middleware
        request_id = environ[ENVIRON_KEY] = from_header(environ.get("HTTP_X_REQUEST_ID"))
    return request_id
