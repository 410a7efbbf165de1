"""{{ cookiecutter.app_name }}: the application factory. This package is yours to edit.

gunicorn serves ``api:create_app()``. What the platform expects of every service (settings
from the environment, JSON logs and errors, limits, request IDs, metrics, /livez and /readyz)
comes from the template's ``scale`` package, wired in by ``scale.init_app(app)``.

The example, api/greetings.py, is yours to keep or remove: to remove it, delete the file,
its tests (tests/test_greetings.py) and the two lines below that name it.
"""

from flask import Flask

import scale
from api import greetings


def create_app(test_config=None):
    """Build the application; ``test_config`` overrides the environment's settings in tests."""
    app = Flask(__name__)
    if test_config is not None:
        app.config.update(test_config)
    scale.init_app(app)
    app.register_blueprint(greetings.bp, url_prefix="/api/v1")

    # /readyz fails while a check fails: add one per dependency the service cannot work
    # without, e.g.
    #   scale.add_check(app, "database", lambda: db.ping(), timeout=1.0)
    return app
