"""Prometheus metrics at /metrics: requests by endpoint, method and status, and latency.

Under gunicorn every worker writes its counts to files in PROMETHEUS_MULTIPROC_DIR (set by
gunicorn.conf.py), and /metrics adds up all workers' files, whichever worker answers.
Without it (tests, `flask run`) the process's own counts are served.

Every label comes from a fixed set, whatever a client sends: the endpoint is the route's
pattern (or "unmatched"), a method outside the standard ones and a status outside the known
codes are counted as "other". A label taken from the request would make a series per value
sent: /metrics and the metrics files would grow without bound.
"""

import os
from http import HTTPStatus

from flask import Blueprint, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from . import server

# Not in prometheus_client's global registry: /metrics builds a registry of its own on each
# call, from the workers' files under gunicorn or from these two in a single process.
REQUESTS = Counter(
    "http_requests",
    "HTTP requests answered, by endpoint, method and status.",
    ["endpoint", "method", "status"],
    registry=None,
)
LATENCY = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request, by endpoint and method.",
    ["endpoint", "method"],
    registry=None,
)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"))
STATUSES = frozenset(str(status.value) for status in HTTPStatus)
OTHER = "other"

# The labelled series already in use, so that a request costs no label lookup.
_series = {}

bp = Blueprint("scale_metrics", __name__)


def observe(endpoint, method, status, seconds):
    """Count one answered request; ``endpoint`` is the route's pattern, not the path, so
    /users/<id> is one series and not one per user; ``status`` is the code as text."""
    if method not in METHODS:
        method = OTHER
    if status not in STATUSES:
        status = OTHER
    key = (endpoint, method, status)
    series = _series.get(key)
    if series is None:
        series = _series[key] = (REQUESTS.labels(endpoint, method, status), LATENCY.labels(endpoint, method))
    series[0].inc()
    series[1].observe(seconds)


class WorkersCollector:
    """Every worker's counts, from the files in the metrics directory (scale/server.py reads
    them: it leaves out a file a worker is still making, and reads while no dead worker's counts
    are being moved into the totals)."""

    def __init__(self, path):
        self.path = path

    def collect(self):
        return server.collect(self.path)


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry()
    path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if path:
        registry.register(WorkersCollector(path))
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
