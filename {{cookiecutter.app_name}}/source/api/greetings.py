"""An example blueprint: replace it with your own endpoints."""
from flask import Blueprint, abort, current_app, jsonify, request

bp = Blueprint("greetings", __name__)

MAX_NAME_LENGTH = 64


@bp.get("/hello")
def hello():
    name = request.args.get("name", "world").strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        abort(400, description=f"name must be 1 to {MAX_NAME_LENGTH} characters")
    current_app.logger.info("greeted", extra={"name_length": len(name)})
    return jsonify(message=f"{current_app.config['GREETING']}, {name}!")


@bp.get("/info")
def info():
    """Which service answers, and (with DR on) from which site."""
    config = current_app.config
    return jsonify(app=config["APP_NAME"], dr_role=config["DR_ROLE"], dr_region=config["DR_REGION"])
