"""The SCALE platform's part of the service, plugged into the team's app like a Flask extension.

``api.create_app()`` calls ``scale.init_app(app)`` once; the app then has everything the
platform expects of a service: settings from the environment, JSON log lines with request
IDs, JSON errors, body limits, Prometheus metrics at /metrics, and the probes /livez and
/readyz. A team adds its own readiness checks with ``scale.add_check``.

This package is the template's: `make update` replaces it with each release, so keep your
changes out of it (open an issue or a pull request on the template instead).

Nothing is imported here at import time, on purpose: gunicorn's master process imports
``scale.settings``, ``scale.jsonlog`` and ``scale.server`` (gunicorn.conf.py: its worker class,
its error answers, the metrics directory), and with them this file, but never Flask or the
application. Each worker imports those itself, so a worker that
``--reload`` restarts serves the edited code.
"""

# What a service whose create_app() does not call init_app(app) is told, by the platform's
# test of the team's app (tests/test_wiring.py) and by gunicorn, which refuses to serve it
# (server.refuse_without_the_platform). A project made before 2.0.0 gets this package from a
# plain `cruft update`, but not the call, which its team adds by hand.
NOT_WIRED = (
    "api.create_app() does not call scale.init_app(app), so the service runs without the platform "
    "(/metrics, request IDs, JSON errors and logs, body limits, /livez and /readyz): add that call to "
    'create_app(), as flask-appstack\'s CHANGELOG.md says for release 2.0.0, under "By hand"'
)

# Whether init_app has wired the platform into an app in this process (a gunicorn worker).
_wired_in_this_process = False


def init_app(app):
    """Wire the platform into ``app``, once. Settings already in ``app.config`` (the factory's
    ``test_config``) win over the environment."""
    global _wired_in_this_process
    from . import errors, health, limits, logs, metrics, middleware, settings  # Flask: see above

    if "scale" in app.extensions:
        raise RuntimeError("scale.init_app(app) was already called for this app: call it once")
    app.extensions["scale"] = True
    _wired_in_this_process = True
    settings.configure(app)
    logs.configure(app)
    errors.register(app)
    limits.register(app)
    middleware.register(app)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(health.bp)
    health.add_check(app, "data_dir", lambda: health.data_dir_writable(app.config["DATA_DIR"]))


def add_check(app, name, check, timeout=1.0):
    """Make /readyz call ``check()``: the service is not ready while it returns false, raises or
    takes longer than ``timeout`` seconds (keep that below the chart's readiness timeout).
    One check per dependency the service cannot work without (a database, a queue)."""
    from . import health

    health.add_check(app, name, check, timeout)


def wired(app):
    """Whether ``scale.init_app(app)`` was called for ``app``."""
    return "scale" in app.extensions


def wired_in_this_process():
    """Whether ``scale.init_app`` was called for an app of this process: gunicorn's workers ask,
    once they have loaded the app, whatever create_app() returned (the app, or a WSGI
    middleware around it)."""
    return _wired_in_this_process
