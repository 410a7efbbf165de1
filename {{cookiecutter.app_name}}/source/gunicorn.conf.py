"""gunicorn settings, read from the environment with the platform's defaults.

Command-line flags override them, as in docs/local-development.md's `docker run ... gunicorn -w 6 -b :8080`.
"""

import sys

# The master imports only the platform's settings table, log format and gunicorn side
# (scale/settings.py, scale/jsonlog.py, scale/server.py: the standard library and gunicorn),
# never Flask or the `api` package: each worker imports the application itself, so a worker
# that `--reload` restarts serves the edited code. `settings` below holds the values read,
# hence the alias.
from scale import server
from scale import settings as app_settings

# Every setting is checked here, once, in the master: a bad value stops start-up with one
# line per problem, instead of a traceback from each worker in a crash loop.
try:
    settings = app_settings.read({**app_settings.SERVER_SETTINGS, **app_settings.APP_SETTINGS})
except app_settings.ConfigError as error:
    sys.exit("\n".join(f"configuration error: {problem}" for problem in error.problems))

wsgi_app = "api:create_app()"
bind = f"0.0.0.0:{settings['PORT']}"
workers = settings["GUNICORN_WORKERS"]
# Threads, so that clients that send slowly hold a thread each and not a whole worker, and a
# worker that takes no connection while its threads are all busy, so that the probes still get
# through (docs/configuration.md, "Workers and slow clients").
worker_class = "scale.server.ThreadWorker"
threads = app_settings.threads_per_worker(settings["GUNICORN_THREADS"])
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


# The workers' metrics files (scale/metrics.py) live in a directory of this server's own,
# under /tmp (the pod's writable emptyDir). It is made once the server is bound, just before
# the first workers fork, so a failed bind or a bad setting leaves none behind, and removed when
# the master exits, a worker that failed to boot included. A SIGHUP reload keeps it: the new
# workers add to the totals of the old ones, which Prometheus sees as counters that go on.


def when_ready(arbiter):
    server.make_metrics_dir()


def post_worker_init(worker):
    """No platform, no service: a worker whose app never called scale.init_app(app) stops the
    server, with one error line that says what to add (scale/server.py)."""
    server.refuse_without_the_platform(worker)


def child_exit(arbiter, worker):
    """A dead worker's counts move into the directory's totals (scale/server.py), so restarted
    workers do not leave files behind that every scrape reads. Whatever its files hold, the
    master goes on."""
    server.worker_exited(worker.pid, log=arbiter.log, live=set(arbiter.WORKERS))
