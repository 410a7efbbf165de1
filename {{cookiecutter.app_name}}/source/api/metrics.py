"""Prometheus metrics at /metrics: requests by endpoint, method and status, and latency.

Under gunicorn every worker writes its counts to files in PROMETHEUS_MULTIPROC_DIR (set by
gunicorn.conf.py), and /metrics adds up all workers' files, whichever worker answers.
Without it (tests, `flask run`) the process's own counts are served.
"""
import os
import time

from flask import Blueprint, Response, g, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

# Not in prometheus_client's global registry: gunicorn workers import this module afresh
# (gunicorn.conf.py's post_fork), and each app in the tests would register them again.
REQUESTS = Counter(
    "http_requests", "HTTP requests answered, by endpoint, method and status.",
    ["endpoint", "method", "status"], registry=None,
)
LATENCY = Histogram(
    "http_request_duration_seconds", "Time to answer an HTTP request, by endpoint and method.",
    ["endpoint", "method"], registry=None,
)

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry()
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


def register(app):
    app.register_blueprint(bp)

    @app.before_request
    def start_clock():
        g.started = time.perf_counter()

    @app.after_request
    def count(response):
        # The route's pattern, not the path: /users/<id> is one series, not one per user.
        endpoint = request.url_rule.rule if request.url_rule else "unmatched"
        REQUESTS.labels(endpoint, request.method, str(response.status_code)).inc()
        started = g.get("started")
        if started is not None:
            LATENCY.labels(endpoint, request.method).observe(time.perf_counter() - started)
        return response
