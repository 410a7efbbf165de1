"""The platform's tests build an app of their own: Flask, ``scale.init_app`` and a few routes
made for the tests. They never use the team's routes (the example included), so that a team
may delete or change those freely; test_wiring.py alone looks at ``api.create_app()``."""

import pytest
from flask import Blueprint, Flask, current_app, jsonify, request

import scale

routes = Blueprint("test_routes", __name__)


@routes.post("/echo")
def echo():
    """Reads the request's JSON body, which limits and JSON parsing apply to."""
    return jsonify(request.get_json())


@routes.get("/items/<int:item>")
def item(item):
    return jsonify(item=item)


@routes.get("/log")
def log():
    current_app.logger.info("logged", extra={"size": 3})
    return jsonify()


@routes.get("/boom")
def boom():
    raise RuntimeError("secret internals")


@pytest.fixture
def make_app():
    """make_app(**config) -> a new app with the platform and the test routes; ``config`` as a
    factory's test_config."""

    def _make_app(**config):
        app = Flask(__name__)
        app.config.update(TESTING=True, **config)
        scale.init_app(app)
        app.register_blueprint(routes)
        return app

    return _make_app


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()
