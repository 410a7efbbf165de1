"""gunicorn settings, read from the environment with the platform's defaults.

Command-line flags override them, as in the README's `docker run ... gunicorn -w 6 -b :8080`.
"""
import os
import sys

wsgi_app = "api:create_app()"
bind = f"0.0.0.0:{os.environ.get('PORT', '8080')}"
workers = int(os.environ.get("GUNICORN_WORKERS", "{{ cookiecutter.gunicorn_workers }}"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "30"))
# Kubernetes waits terminationGracePeriodSeconds (longer than this) before it kills the pod.
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5

# Access and error logs go to stdout as JSON lines, like the application's own.
accesslog = "-"
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(D)sus "%(a)s"'
# gunicorn merges this over its defaults key by key, so "root" must be redefined too.
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "root": {"level": "INFO", "handlers": ["stdout"]},
    "formatters": {"json": {"()": "api.logs.JsonFormatter"}},
    "handlers": {
        "stdout": {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "formatter": "json"},
    },
    "loggers": {
        "gunicorn.error": {
            "level": os.environ.get("LOG_LEVEL", "INFO").upper(),
            "handlers": ["stdout"],
            "propagate": False,
        },
        "gunicorn.access": {"level": "INFO", "handlers": ["stdout"], "propagate": False},
    },
}


def post_fork(server, worker):
    """Let each worker import the application afresh.

    The master imported `api` for the JSON log formatter above; a worker that kept that copy
    would serve the old code after `--reload` restarts it.
    """
    for name in [name for name in sys.modules if name == "api" or name.startswith("api.")]:
        del sys.modules[name]
