"""The platform's settings of the service and the application, from environment variables only.

Every variable is listed in the tables below with the form it accepts. A bad value stops
the service before it serves: gunicorn.conf.py checks them all once, in the master process,
and prints one line per problem instead of a traceback per worker. gunicorn's master
imports this module, so it imports nothing but the standard library (see scale/__init__.py).

A team's own settings belong to its own code (the example: GREETING in api/greetings.py).
"""

import os
from collections import namedtuple

Setting = namedtuple("Setting", "default parse accepted")

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


def text(value):
    return value


def log_level(value):
    if value.upper() not in LOG_LEVELS:
        raise ValueError(value)
    return value.upper()


def dr_role(value):
    if value not in ("", "active", "passive"):
        raise ValueError(value)
    return value


def whole_number(low, high):
    """A parser of whole numbers from ``low`` to ``high``."""

    def parse(value):
        number = int(value.strip())
        if not low <= number <= high:
            raise ValueError(value)
        return number

    return parse


# What the application reads (scale.init_app): variable -> default, parser, accepted form.
APP_SETTINGS = {
    "APP_NAME": Setting("{{ cookiecutter.app_name }}", text, "any text"),
    "LOG_LEVEL": Setting("INFO", log_level, "one of " + ", ".join(LOG_LEVELS)),
    "DATA_DIR": Setting("", text, "a directory, or empty"),
    "DR_ROLE": Setting("", dr_role, "active, passive or empty"),
    "DR_REGION": Setting("", text, "a region name, or empty"),
    "MAX_CONTENT_LENGTH": Setting("1048576", whole_number(1, 2**31), "a whole number of bytes from 1 to 2147483648"),
}


def optional(parse):
    """A parser that takes an empty value as None ("not set: derived from another setting")."""

    def parse_optional(value):
        return parse(value) if value.strip() else None

    return parse_optional


# Requests in flight finish within this after SIGTERM; much shorter, and the pod's drain (the
# chart's preStop pause) and slow but honest requests are cut off with resets.
MIN_GRACEFUL_TIMEOUT = 10

# What gunicorn reads (gunicorn.conf.py).
SERVER_SETTINGS = {
    "PORT": Setting("8080", whole_number(1, 65535), "a port number from 1 to 65535"),
    "GUNICORN_WORKERS": Setting("{{ cookiecutter.gunicorn_workers }}", whole_number(1, 64), "a whole number from 1 to 64"),
    "GUNICORN_THREADS": Setting("", optional(whole_number(1, 256)), "a whole number from 1 to 256, or empty"),
    "GUNICORN_TIMEOUT": Setting("30", whole_number(1, 3600), "whole seconds from 1 to 3600"),
    "GUNICORN_GRACEFUL_TIMEOUT": Setting(
        "20",
        whole_number(MIN_GRACEFUL_TIMEOUT, 3600),
        f"whole seconds from {MIN_GRACEFUL_TIMEOUT} to 3600",
    ),
}


# Threads of each worker when GUNICORN_THREADS is empty: ten slow clients (a body sent a byte
# at a time holds a thread as long as it lasts) and six threads for every other request,
# probes included (docs/configuration.md, "Workers and slow clients").
THREADS = 16


def threads_per_worker(threads=None):
    """GUNICORN_THREADS, or THREADS when it is empty."""
    return threads or THREADS


class ConfigError(ValueError):
    """One or more settings are wrong; ``problems`` has one sentence for each."""

    def __init__(self, problems):
        self.problems = problems
        super().__init__("\n".join(problems))


def read(settings, environ=None):
    """{name: parsed value} of ``settings``; ConfigError naming every bad one."""
    environ = os.environ if environ is None else environ
    values, problems = {}, []
    for name, setting in settings.items():
        raw = environ.get(name, setting.default)
        try:
            values[name] = setting.parse(raw)
        except ValueError:
            problems.append(f"{name}={raw!r} is not valid: expected {setting.accepted}")
    if problems:
        raise ConfigError(problems)
    return values


def settings_from_env(environ=None):
    """The application's settings: each default, overridden by the environment."""
    return read(APP_SETTINGS, environ)


def configure(app, environ=None):
    """Put the application's settings from the environment into ``app.config``, except those
    it already holds a value of its own for (the factory's ``test_config``): these win. A
    Flask default (MAX_CONTENT_LENGTH is None in Flask) is no value of the app's own."""
    for name, value in settings_from_env(environ).items():
        if app.config.get(name, None) == app.default_config.get(name, None):
            app.config[name] = value
