"""Kubernetes probes: liveness says the process serves, readiness that it can work.

/readyz runs every check registered with ``add_check``: one per dependency the service
cannot work without. The platform registers the data directory's (DATA_DIR); a team
registers its own with ``scale.add_check`` in ``api.create_app``. The answer names the
failed checks only; why they failed goes to the log, not to whoever asks.
"""

import os
import threading
import time

from flask import Blueprint, current_app, jsonify

bp = Blueprint("scale_health", __name__)


class Check:
    """A readiness check and its run in progress. One run at a time: while a run is still going
    (a dependency that hangs), /readyz reports the check as failing and starts no other, so
    hanging checks hold at most one thread each, however often /readyz is called."""

    def __init__(self, name, function, timeout):
        self.name, self.function, self.timeout = name, function, timeout
        self.lock = threading.Lock()
        self.running = None  # the thread of the run in progress

    def start(self):
        """A new run as (thread, result: a list that gets the outcome), or None while one is going."""
        with self.lock:
            if self.running is not None and self.running.is_alive():
                return None
            result = []
            self.running = threading.Thread(target=self.run, args=(result,), daemon=True)
            self.running.start()
            return self.running, result

    def run(self, result):
        try:
            result.append(None if self.function() else "returned false")
        except Exception as error:  # a failing dependency must fail readiness, not the probe
            result.append(f"{type(error).__name__}: {error}")


def add_check(app, name, function, timeout=1.0):
    """Make /readyz call ``function()``; it fails when that returns false, raises or takes
    longer than ``timeout`` seconds (keep it below the readiness probe's timeoutSeconds)."""
    app.extensions.setdefault("readiness_checks", []).append(Check(name, function, timeout))


def data_dir_writable(data_dir):
    """True without a data directory, or when it is writable."""
    return not data_dir or os.access(data_dir, os.W_OK)


def run_checks(checks):
    """{name: None if it passed, else why it failed}, the checks running at once."""
    started = time.monotonic()
    runs = [(check, check.start()) for check in checks]
    results = {}
    for check, run in runs:
        if run is None:
            results[check.name] = "still running since an earlier call"
            continue
        thread, result = run
        thread.join(max(0.0, started + check.timeout - time.monotonic()))
        # A check still running when its time is up has failed, whatever it returns later.
        results[check.name] = result[0] if result else "timed out"
    return results


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
