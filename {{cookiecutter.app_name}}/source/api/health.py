"""Kubernetes probes: liveness says the process serves, readiness that it can work."""
import os

from flask import Blueprint, current_app, jsonify

bp = Blueprint("health", __name__)


@bp.get("/livez")
def livez():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    data_dir = current_app.config["DATA_DIR"]
    if data_dir and not os.access(data_dir, os.W_OK):
        return jsonify(status="unavailable", reason=f"{data_dir} is not writable"), 503
    return jsonify(status="ready")
