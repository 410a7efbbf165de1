"""{{ cookiecutter.app_name }}: the Flask application factory.

gunicorn serves ``api:create_app()``; nothing happens at import time.
"""

from flask import Flask

from settings import settings_from_env

from . import errors, greetings, health, limits, logs, metrics, middleware


def create_app(test_config=None):
    """Build and configure the application.

    Configuration comes from environment variables (see ``settings``, beside ``api``);
    ``test_config`` overrides it in tests.
    """
    app = Flask(__name__)
    app.config.from_mapping(settings_from_env())
    if test_config is not None:
        app.config.update(test_config)

    logs.configure(app)
    errors.register(app)
    limits.register(app)
    middleware.register(app)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(health.bp)
    app.register_blueprint(greetings.bp, url_prefix="/api/v1")

    # Readiness: /readyz runs each check. Add one per dependency here, e.g.
    #   health.add_check(app, "database", lambda: db.ping(), timeout=1.0)
    health.add_check(app, "data_dir", lambda: health.data_dir_writable(app.config["DATA_DIR"]))
    return app
