"""Fixtures only: one bake per combination of answers, shared by every test that needs it;
CI's rule that nothing skips; the measurements summary. What test modules share besides
fixtures is in tests/answers.py and tools/ (which the benchmarks use too)."""
import json
import os
from pathlib import Path

import pytest

from answers import NO_LOCK
from tools.project import pipfile_requirements
from tools.venvs import cached_venv


@pytest.fixture(scope="session")
def bake(cookies_session):
    """bake(**answers) -> Path of the generated project; each combination is baked once."""
    baked = {}

    def _bake(**answers):
        context = {**NO_LOCK, **answers}
        key = json.dumps(context, sort_keys=True)
        if key not in baked:
            result = cookies_session.bake(extra_context=context)
            assert result.exit_code == 0, f"bake failed for {context}: {result.exception}"
            baked[key] = Path(result.project_path)
        return baked[key]

    return _bake


@pytest.fixture(scope="session")
def default_project(bake):
    return bake()


@pytest.fixture(scope="session")
def project_venv(default_project):
    """A cached venv with the default project's Pipfile packages (dev included)."""
    return cached_venv(pipfile_requirements(default_project))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI=true) a skipped test is a failure: every tool must be there."""
    report = yield
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every check must run: {reason}"
    return report


# ---- measurements: what a test measured, printed at the end of the run -------------------------
# A test calls record_property("measurement", "image size: 183 MB"); the line is printed in the
# terminal summary, also under pytest-xdist (user_properties travel with the reports).
MEASUREMENTS = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        MEASUREMENTS.extend(value for name, value in report.user_properties if name == "measurement")


def pytest_terminal_summary(terminalreporter):
    if MEASUREMENTS:
        terminalreporter.section("measurements")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)
