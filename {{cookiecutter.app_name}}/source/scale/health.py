"""Kubernetes probes: liveness says the process serves, readiness that it can work.

/readyz runs every check registered with ``add_check``: one per dependency the service
cannot work without. The platform registers the data directory's (DATA_DIR); a team
registers its own with ``scale.add_check`` in ``api.create_app``. The answer names the
failed checks only; why they failed goes to the log, not to whoever asks.
"""

import os
import threading
import time
from collections import namedtuple

from flask import Blueprint, current_app, jsonify

bp = Blueprint("scale_health", __name__)

Check = namedtuple("Check", "name function timeout")


def add_check(app, name, function, timeout=1.0):
    """Make /readyz call ``function()``; it fails when that returns false, raises or takes
    longer than ``timeout`` seconds (keep it below the readiness probe's timeoutSeconds)."""
    app.extensions.setdefault("readiness_checks", []).append(Check(name, function, timeout))


def data_dir_writable(data_dir):
    """True without a data directory, or when it is writable."""
    return not data_dir or os.access(data_dir, os.W_OK)


def run_checks(checks):
    """{name: None if it passed, else why it failed}, each check in its own thread at once."""
    results = {check.name: "timed out" for check in checks}

    def run(check):
        try:
            results[check.name] = None if check.function() else "returned false"
        except Exception as error:  # a failing dependency must fail readiness, not the probe
            results[check.name] = f"{type(error).__name__}: {error}"

    started = time.monotonic()
    runs = [(check, threading.Thread(target=run, args=(check,), daemon=True)) for check in checks]
    for _, thread in runs:
        thread.start()
    for check, thread in runs:
        thread.join(max(0.0, started + check.timeout - time.monotonic()))
    # A check still running when its time is up has failed, whatever it returns later.
    return {check.name: "timed out" if thread.is_alive() else results[check.name] for check, thread in runs}


@bp.get("/livez")
def livez():
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    results = run_checks(current_app.extensions.get("readiness_checks", []))
    failed = sorted(name for name, reason in results.items() if reason)
    for name in failed:
        current_app.logger.warning("readiness check failed", extra={"check": name, "reason": results[name]})
    if failed:
        return jsonify(status="unavailable", failed=failed), 503
    return jsonify(status="ready")
