"""An example blueprint: replace it with your own endpoints.

GREETING is this module's own setting, read from the environment; the platform's settings
(APP_NAME, DR_ROLE, DR_REGION, ...) are in the app's configuration (scale/settings.py).
"""

import os

from flask import Blueprint, abort, current_app, jsonify, request

bp = Blueprint("greetings", __name__)

MAX_NAME_LENGTH = 64


@bp.record_once
def configure(state):
    """When the app registers the blueprint: GREETING from the environment, unless the app's
    configuration already has one (the factory's test_config)."""
    state.app.config.setdefault("GREETING", os.environ.get("GREETING", "Hello"))


def greet(name):
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > MAX_NAME_LENGTH:
        abort(400, description=f"name must be 1 to {MAX_NAME_LENGTH} characters")
    name = name.strip()
    current_app.logger.info("greeted", extra={"name_length": len(name)})
    return jsonify(message=f"{current_app.config['GREETING']}, {name}!")


@bp.get("/hello")
def hello():
    return greet(request.args.get("name", "world"))


@bp.post("/hello")
def hello_json():
    """The same greeting for a JSON body, {"name": "Ada"}: bad JSON is a 400, never a 500."""
    body = request.get_json()
    if not isinstance(body, dict):
        abort(400, description='expected a JSON object such as {"name": "Ada"}')
    return greet(body.get("name", "world"))


@bp.get("/info")
def info():
    """Which service answers, and (with DR on) from which site."""
    config = current_app.config
    return jsonify(app=config["APP_NAME"], dr_role=config["DR_ROLE"], dr_region=config["DR_REGION"])
