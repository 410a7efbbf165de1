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


# How many runs of one check may hang at once, timed out and still going, in a worker: while
# that many hang, /readyz fails the check without starting another. A dependency that hangs
# for good costs at most this many threads per check and worker, however often /readyz is
# called; one that recovers is ready again at the next call after it does.
MAX_HUNG_RUNS = 3


class Run:
    """One run of a check, in a thread of its own; every /readyz that comes while it runs waits
    for it rather than starting another."""

    def __init__(self, check):
        self.deadline = time.monotonic() + check.timeout
        self.done = threading.Event()
        self.outcome = None  # None if the check passed, else why it failed
        self.hung = False  # timed out while still going: counted in check.hung
        self.thread = threading.Thread(target=check.run, args=(self,), daemon=True)


class Check:
    """A readiness check: its function, its timeout, and its run in progress, if any.

    A call starts a run, or joins the one in progress: concurrent /readyz calls share it, and
    get the same answer. A run that outlasts its timeout fails the check; it is then left to
    finish in its thread (a thread cannot be stopped), counted as hung until it does, and the
    next call starts another run, so that a dependency that hung once is ready again as soon as
    it answers. At most MAX_HUNG_RUNS runs of a check hang at once."""

    def __init__(self, name, function, timeout):
        self.name, self.function, self.timeout = name, function, timeout
        self.lock = threading.Lock()
        self.current = None  # the latest Run
        self.hung = 0  # runs that timed out and are still going

    def start(self):
        """The run to wait for: the one in progress, or a new one; or why the check fails
        without one (too many runs hang)."""
        with self.lock:
            run = self.current
            if run is None or run.done.is_set() or run.hung:
                if self.hung >= MAX_HUNG_RUNS:
                    return f"{self.hung} earlier runs still hang"
                run = self.current = Run(self)
                run.thread.start()
            return run

    def wait(self, run):
        """None if ``run`` passed, else why the check failed."""
        if isinstance(run, str):
            return run
        run.done.wait(max(0.0, run.deadline - time.monotonic()))
        with self.lock:
            if run.done.is_set():
                return run.outcome
            if not run.hung:  # the first caller to see it time out leaves it hanging
                run.hung = True
                self.hung += 1
        return "timed out"

    def run(self, run):
        try:
            outcome = None if self.function() else "returned false"
        except Exception as error:  # a failing dependency must fail readiness, not the probe
            outcome = f"{type(error).__name__}: {error}"
        with self.lock:
            run.outcome = outcome
            run.done.set()
            if run.hung:
                self.hung -= 1


def add_check(app, name, function, timeout=1.0):
    """Make /readyz call ``function()``; it fails when that returns false, raises or takes
    longer than ``timeout`` seconds (keep it below the readiness probe's timeoutSeconds)."""
    app.extensions.setdefault("readiness_checks", []).append(Check(name, function, timeout))


def data_dir_writable(data_dir):
    """True without a data directory, or when it is writable."""
    return not data_dir or os.access(data_dir, os.W_OK)


def run_checks(checks):
    """{name: None if it passed, else why it failed}, the checks running at once."""
    runs = [(check, check.start()) for check in checks]
    return {check.name: check.wait(run) for check, run in runs}


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
