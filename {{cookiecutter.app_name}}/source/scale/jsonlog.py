"""Log records as JSON lines, one object per line: the format of every log line on stdout.

gunicorn formats its error and access logs with it (gunicorn.conf.py), the application its
own records (scale/logs.py). gunicorn's master, which sets up the logging, imports it: so it
imports nothing but the standard library, never Flask or the application (see scale/__init__.py).
"""

import json
import logging
import re
from datetime import datetime, timezone

_STANDARD_ATTRS = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

# A "?" right after a path or URL, up to the next space or quote: a query string.
QUERY = re.compile(r"(?<=\S)\?[^\s'\"]*")


def without_query(text):
    """``text`` without the query string of any URL in it: a query may carry a token
    (?access_token=...), and no log line may hold one."""
    return QUERY.sub("", text) if "?" in text else text


class JsonFormatter(logging.Formatter):
    """Format a record as a JSON line, keeping any ``extra=`` fields (such as ``request_id``).
    gunicorn's own lines lose any query string: it logs the request line or URI of a request
    it could not parse or serve ("Invalid request from ...", "Error handling request ...")."""

    def format(self, record):
        from_gunicorn = record.name.startswith("gunicorn.")
        message = record.getMessage()
        entry = {
            "time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": without_query(message) if from_gunicorn else message,
        }
        entry.update(
            (key, value)
            for key, value in vars(record).items()
            if key not in _STANDARD_ATTRS and not key.startswith("_")
        )
        request_id = access_log_request_id(record)
        if request_id:
            entry["request_id"] = request_id
        if record.exc_info:
            exception = self.formatException(record.exc_info)
            entry["exception"] = without_query(exception) if from_gunicorn else exception
        return json.dumps(entry, default=str)


def access_log_request_id(record):
    """The X-Request-Id the response carried, in a gunicorn access log record."""
    if record.name == "gunicorn.access" and isinstance(record.args, dict):
        value = record.args.get("{x-request-id}o")
        return value if value and value != "-" else None
    return None
