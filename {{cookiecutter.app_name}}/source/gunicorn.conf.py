"""gunicorn settings, read from the environment with the platform's defaults.

Command-line flags override them, as in docs/local-development.md's `docker run ... gunicorn -w 6 -b :8080`.
"""

import os
import shutil
import sys
import tempfile

# The master imports only the platform's settings table and log format (scale/settings.py,
# scale/jsonlog.py: standard library only), never Flask or the `api` package: each worker
# imports the application itself, so a worker that `--reload` restarts serves the edited
# code. `settings` below holds the values read, hence the alias.
from scale import settings as app_settings

# The workers' metrics files (scale/metrics.py), in a new directory on every start so that no
# count survives from an earlier run; /tmp is the pod's writable emptyDir. The workers'
# prometheus_client reads it when they import the application.
metrics_dir = tempfile.mkdtemp(prefix="prometheus-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir

# Every setting is checked here, once, in the master: a bad value stops start-up with one
# line per problem, instead of a traceback from each worker in a crash loop.
try:
    settings = app_settings.read({**app_settings.SERVER_SETTINGS, **app_settings.APP_SETTINGS})
except app_settings.ConfigError as error:
    shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit("\n".join(f"configuration error: {problem}" for problem in error.problems))

wsgi_app = "api:create_app()"
bind = f"0.0.0.0:{settings['PORT']}"
workers = settings["GUNICORN_WORKERS"]
timeout = settings["GUNICORN_TIMEOUT"]
# Kubernetes waits terminationGracePeriodSeconds (longer than this) before it kills the pod.
graceful_timeout = settings["GUNICORN_GRACEFUL_TIMEOUT"]
keepalive = 5

# Access and error logs go to stdout as JSON lines, like the application's own. The access
# line has the path without its query string, which may carry tokens (?access_token=...);
# jsonlog adds the request's ID from the response's X-Request-Id.
accesslog = "-"
access_log_format = '%(h)s "%(m)s %(U)s %(H)s" %(s)s %(b)s %(D)sus "%(a)s"'
# gunicorn merges this over its defaults key by key, so "root" must be redefined too.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["stdout"]},
    "formatters": {"json": {"()": "scale.jsonlog.JsonFormatter"}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"},
    },
    "loggers": {
        "gunicorn.error": {"level": settings["LOG_LEVEL"], "handlers": ["stdout"], "propagate": False},
        "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
    },
}


def child_exit(server, worker):
    """Remove a dead worker's live-gauge files (gauges with multiprocess_mode "live...", such
    as requests in progress), which would otherwise count it forever. Its counter and
    histogram files stay: totals must not go down, or Prometheus would take the drop for a
    restart and count the rest again."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid, metrics_dir)


def on_exit(server):
    shutil.rmtree(metrics_dir, ignore_errors=True)
