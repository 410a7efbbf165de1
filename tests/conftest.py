"""Shared fixtures: one bake per combination of answers, shared by every test that needs it."""
import json
import os
import shutil
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tools/ and hooks/ are importable from the tests

from tools.venvs import cached_venv  # noqa: E402

DEFAULTS = json.loads((REPO / "cookiecutter.json").read_text())
# The fast tier never locks: the real lock has its own tests (test_lock.py).
NO_LOCK = {"lock_dependencies": False}


def combination_id(answers):
    """Readable test id for a combination of answers: key:value joined by '-'."""
    return "-".join(f"{key}:{value}" for key, value in answers.items()) or "defaults"


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url):
    """(status, body text) of a GET, whatever the status; OSError while nothing listens."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


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


def pipfile_requirements(project, sections=("packages", "dev-packages")):
    """The requirement strings of a baked project's Pipfile (name + version spec)."""
    pipfile = tomllib.loads((project / "source" / "Pipfile").read_text())
    return [
        name if spec == "*" else f"{name}{spec}"
        for section in sections
        for name, spec in pipfile.get(section, {}).items()
    ]


@pytest.fixture(scope="session")
def locked(bake):
    """(project, answers): the default project, locked by the post-generation hook. Tests that
    use it share the xdist group "default-lock", so that one worker locks it once."""
    answers = {"lock_dependencies": True}
    return bake(**answers), {**DEFAULTS, **answers}


def make_environment(answers, **changes):
    """The environment of `make` in a baked project: the pipenv the hook installed for these
    answers and helm 3 on PATH, the project's virtualenv in source/.venv, its Python."""
    from tools.helm import helm_binaries

    post = load_hook("post_gen_project")
    python, version = post.find_python(answers["python_version"])
    pipenv_bin = post.pipenv_venv_path(answers["pipenv_version"], version) / "bin"
    helm_dir = helm_binaries()["3.17"].parent
    path = os.pathsep.join([str(pipenv_bin), str(helm_dir), os.environ["PATH"]])
    return {**os.environ, "PIPENV_VENV_IN_PROJECT": "1", "PIPENV_PYTHON": str(python), "PATH": path, **changes}


@pytest.fixture(scope="session")
def installed(locked, tmp_path_factory):
    """(project, environment): a copy of the locked default project after `make install` (its
    packages in source/.venv) and `make tools` (its linters in .tools/). Copy it (with
    symlinks=True) before changing it."""
    project, answers = locked
    copy = tmp_path_factory.mktemp("installed") / project.name
    shutil.copytree(project, copy)
    environment = make_environment(answers)
    for target in ("install", "tools"):
        result = subprocess.run(["make", target], cwd=copy, env=environment, capture_output=True, text=True,
                                timeout=900)
        assert result.returncode == 0, f"make {target}: {result.stdout}{result.stderr}"
    return copy, environment


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


def load_hook(name):
    """hooks/<name>.py imported unrendered: its rules and helpers, without cookiecutter."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(f"hook_{name}", REPO / "hooks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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
