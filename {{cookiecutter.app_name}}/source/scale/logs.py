"""The application's logs: JSON lines on stdout (scale/jsonlog.py), each with its request's ID."""

import logging
import sys

from . import request_ids
from .jsonlog import JsonFormatter


def add_request_id(record):
    """Give a record logged while a request is handled that request's ID."""
    request_id = request_ids.current()
    if request_id:
        record.request_id = request_id
    return True


def configure(app):
    """Send the app's log records to stdout as JSON, at LOG_LEVEL."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(add_request_id)
    app.logger.handlers[:] = [handler]
    app.logger.setLevel(app.config["LOG_LEVEL"])
    app.logger.propagate = False
