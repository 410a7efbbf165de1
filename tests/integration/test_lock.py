"""The real lock: the post-generation hook runs pipenv lock, and the result installs.

The default project is locked by the hook (the default pipenv and Python, 3.13, from this
machine, found as CI runners provide it: see `pythons`), checked against its Pipfile,
installed with the generated Makefile (`pipenv install --deploy`)
into a fresh virtualenv of that Python; its tests (with the coverage gate) and scan pass
there, and `make run` serves it.
A lock against an index nobody listens on fails, and the project is kept.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time

import pytest
from answers import LOCK_PYTHONS

from tools.net import free_port, http_get
from tools.project import DEFAULTS, lock_program

lock = lock_program()


PYTHONS = LOCK_PYTHONS


def origin(executable):
    """Where a Python comes from, as runners provide them."""
    if ".pyenv" in executable.parts or os.environ.get("PYENV_ROOT", "/nowhere") in str(executable):
        return "pyenv"
    return "PATH"


@pytest.fixture(scope="module", autouse=True)
def pythons():
    """The Pythons of PYTHONS as scripts/lock.py finds them: pythonX.Y on PATH (where the CI
    runners' setup-python and UsePythonVersion put them), pyenv."""
    found = {minor: lock.find_python(minor) for minor in PYTHONS}
    missing = [minor for minor, python in found.items() if python is None]
    if missing:
        pytest.skip(
            f"no Python {', '.join(missing)} on PATH or in pyenv: "
            "install it (e.g. actions/setup-python) to run the lock tests"
        )
    return found


@pytest.mark.parametrize("minor", PYTHONS)
def test_the_lock_tests_report_which_python_they_use(pythons, minor, record_property):
    executable, version = pythons[minor]
    assert version.startswith(f"{minor}.") and lock.python_version(executable) == version
    record_property("measurement", f"lock: Python {minor} is {version} from {origin(executable)} ({executable})")


def pipenv(project, answers, *args, timeout=900):
    """Run the pipenv the hook installed for these answers, in the project's source/."""
    _, runner_version = lock.find_python(answers["python_version"])
    venv = lock.pipenv_venv_path(answers["pipenv_version"], runner_version)
    env = lock.pipenv_environment(os.environ, lock.pip_network_settings(venv, os.environ))
    return subprocess.run(
        [str(lock.venv_python(venv)), "-m", "pipenv", *args],
        cwd=project / "source",
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


# The tests of the default lock share one worker, so that the project is locked once
# (the `locked` fixture of conftest.py).
same_worker = pytest.mark.xdist_group("default-lock")


@same_worker
def test_the_lock_resolves_for_the_chosen_python(locked):
    project, _ = locked
    lock = json.loads((project / "source" / "Pipfile.lock").read_text())
    assert lock["_meta"]["requires"] == {"python_version": ".".join(DEFAULTS["python_version"].split(".")[:2])}
    assert {"flask", "gunicorn"} <= set(lock["default"])
    assert {"pytest", "pytest-cov", "bandit"} <= set(lock["develop"])
    for name, entry in {**lock["default"], **lock["develop"]}.items():
        assert entry["version"].startswith("=="), name
        assert entry["hashes"], name


@same_worker
def test_the_lock_matches_the_pipfile_and_a_changed_pipfile_does_not(locked, tmp_path):
    project, answers = locked
    verified = pipenv(project, answers, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr
    changed = tmp_path / "changed"
    shutil.copytree(project, changed)
    pipfile = changed / "source" / "Pipfile"
    pipfile.write_text(pipfile.read_text().replace('gunicorn = ">=27"', 'gunicorn = ">=27.0.1"'))
    assert pipenv(changed, answers, "verify").returncode != 0


@same_worker
def test_the_makefile_installs_and_serves_the_locked_project(installed_copy, locked):
    """The README's local development without a container: make install (the `installed`
    fixture: in a shell that exports pip index settings, which reach neither the install nor
    the lock; the image build, which runs without them, accepts both), then make run. `make
    test` and `make scan` run as gates of `make check` (test_quality_gates.py), on the same
    installed project."""
    copy, env = installed_copy
    _, version = lock.find_python(locked[1]["python_version"])
    assert lock.python_version(lock.venv_python(copy / "source" / ".venv")) == version

    port = free_port()
    server = subprocess.Popen(
        ["make", "run"],
        cwd=copy,
        env={**env, "PORT": str(port)},
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        for _ in range(300):
            try:
                if http_get(f"http://127.0.0.1:{port}/livez")[0] == 200:
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                time.sleep(0.1)
        assert http_get(f"http://127.0.0.1:{port}/readyz")[0] == 200
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=60)


@same_worker
def test_a_team_target_runs_in_the_projects_venv_as_team_mk_shows(installed_copy, tmp_path):
    """team.mk's example (and the CHANGELOG's "By hand" for `lock.py run`): `.venv/bin/python -m`,
    the project's venv whatever other one is activated."""
    copy, env = installed_copy
    example = re.search(r"^#   \tcd source && \.venv/bin/python -m api\.seed$", (copy / "team.mk").read_text(), re.M)
    assert example, "team.mk's example changed: follow it here"
    team = copy / "team.mk"
    before = team.read_text()
    try:
        team.write_text(before + "where:\n\tcd source && .venv/bin/python -c 'import flask, sys; print(sys.prefix)'\n")
        ran = subprocess.run(
            ["make", "--no-print-directory", "where"],
            cwd=copy,
            capture_output=True,
            text=True,
            env={**env, "VIRTUAL_ENV": str(tmp_path / "another-venv")},
        )
    finally:
        team.write_text(before)
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.splitlines()[-1] == str(copy / "source" / ".venv")


@same_worker
def test_make_lock_with_pip_index_settings_exported_writes_the_lock_the_image_accepts(
    locked, make_environment, tmp_path
):
    project, answers = locked
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    env = make_environment(answers, exporting_indexes=True)
    (copy / "source" / "Pipfile.lock").unlink()
    relocked = subprocess.run(["make", "lock"], cwd=copy, env=env, capture_output=True, text=True, timeout=900)
    assert relocked.returncode == 0, relocked.stdout + relocked.stderr

    def pipfile_hash(root):
        return json.loads((root / "source" / "Pipfile.lock").read_text())["_meta"]["hash"]

    assert pipfile_hash(copy) == pipfile_hash(project)
    verified = pipenv(copy, answers, "verify")  # as the image build checks it: without those settings
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert not (copy / "source" / ".venv").exists()


# Where pip's configuration holds the certificate of a TLS-inspecting proxy, and nothing else
# does (no REQUESTS_CA_BUNDLE), pipenv 2022's own requests for hashes must get it too.
CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "PIP_CERT", "SSL_CERT_FILE", "SSL_CERT_DIR")


def test_the_pipenv_the_platform_documents_locks_on_python_3_11_with_the_ca_only_in_pips_config(cookies, monkeypatch):
    for variable in CA_VARIABLES:
        monkeypatch.delenv(variable, raising=False)
    answers = {**DEFAULTS, "python_version": "3.11", "pipenv_version": "2022.7.24", "lock_dependencies": True}
    result = cookies.bake(
        extra_context={key: answers[key] for key in ("python_version", "pipenv_version", "lock_dependencies")}
    )
    project = result.project_path
    assert (project / "source" / "Pipfile.lock").is_file(), "not locked: see the captured output"
    lock = json.loads((project / "source" / "Pipfile.lock").read_text())
    assert lock["_meta"]["requires"] == {"python_version": "3.11"}
    verified = pipenv(project, answers, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_failing_lock_keeps_the_project_and_says_how_to_lock_later(cookies, capfd, monkeypatch):
    index = f"http://127.0.0.1:{free_port()}/simple"  # nothing listens there
    # pip's retries reach pipenv (a network setting): none, rather than five with backoff (8 s).
    monkeypatch.setenv("PIP_RETRIES", "0")
    result = cookies.bake(extra_context={"lock_dependencies": True, "package_index": index})
    out, err = capfd.readouterr()
    assert result.exit_code == 0, result.exception
    project = result.project_path
    assert (project / "README.md").is_file() and (project / "source" / "Pipfile").is_file()
    assert not (project / "source" / "Pipfile.lock").exists()
    assert not (project / "source" / ".venv").exists()
    assert "Pipfile.lock: NOT LOCKED" in out
    assert "WARNING: source/Pipfile.lock was NOT created: pipenv lock failed." in err
    assert "Reason: pipenv lock failed: ERROR: No matching distribution found for" in err
    assert f"Hint: {index} cannot be reached" in err and "Connection refused" in err
    assert "The project was generated and kept" in err
    assert f"cd {project} && make lock-in-container" in err
