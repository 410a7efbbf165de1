"""The real lock: the post-generation hook runs pipenv lock, and the result installs.

The default project is locked by the hook (pipenv 2026.10.3, Python 3.10 from this
machine: found as runners provide it, see `runner_python`), checked against its Pipfile, installed with the generated Makefile (`pipenv install --deploy`)
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
from pathlib import Path

import pytest

from conftest import DEFAULTS, LOCK_PYTHONS, free_port, http_get, load_hook

pytestmark = pytest.mark.slow

post = load_hook("post_gen_project")

PYTHONS = LOCK_PYTHONS


def tool_caches(environ=os.environ):
    """setup-python's (GitHub) and UsePythonVersion's (Azure) tool caches: $RUNNER_TOOL_CACHE,
    $AGENT_TOOLSDIRECTORY, and /opt/hostedtoolcache where hosted runners keep it."""
    roots = [environ.get("RUNNER_TOOL_CACHE"), environ.get("AGENT_TOOLSDIRECTORY"), "/opt/hostedtoolcache"]
    unique = []
    for root in filter(None, roots):
        if Path(root) not in unique:
            unique.append(Path(root))
    return unique


def python_candidates(minor, environ=os.environ, home=Path.home()):
    """(origin, executable) that may be Python `minor` (X.Y), in the order runners offer them:
    pythonX.Y on PATH (setup-python, UsePythonVersion, the image's own), the tool cache's
    Python/X.Y.Z/x64/bin (newest patch first), pyenv's versions/X.Y.Z/bin."""
    found = [("PATH", Path(directory) / f"python{minor}")
             for directory in environ.get("PATH", "").split(os.pathsep) if directory]

    def newest_first(paths):
        patches = [path for path in paths if re.fullmatch(rf"{re.escape(minor)}\.[0-9]+", path.name)]
        return sorted(patches, key=lambda path: int(path.name.rsplit(".", 1)[1]), reverse=True)

    for cache in tool_caches(environ):
        found += [("tool cache", path / "x64" / "bin" / f"python{minor}")
                  for path in newest_first((cache / "Python").glob(f"{minor}.*"))]
    pyenv = Path(environ.get("PYENV_ROOT") or Path(home) / ".pyenv") / "versions"
    found += [("pyenv", path / "bin" / f"python{minor}") for path in newest_first(pyenv.glob(f"{minor}.*"))]
    return found


def runner_python(minor, environ=os.environ, home=Path.home()):
    """(origin, executable, X.Y.Z) of the first candidate that runs and is Python `minor`
    (a pyenv shim of a version that is not selected does not run), or None."""
    for origin, candidate in python_candidates(minor, environ, home):
        try:
            usable = candidate.is_file() and os.access(candidate, os.X_OK)
        except OSError:  # e.g. a directory this user may not read
            usable = False
        reported = post.python_version(candidate) if usable else None
        if reported and reported.rsplit(".", 1)[0] == minor:
            return origin, candidate, reported
    return None


@pytest.fixture(scope="module", autouse=True)
def pythons():
    """The Pythons of PYTHONS, found as runners provide them, first on PATH while this module
    runs: the post-gen hook looks for pythonX.Y on PATH (and in pyenv), and so locks for
    the same interpreter these tests report."""
    found = {minor: runner_python(minor) for minor in PYTHONS}
    missing = [minor for minor, python in found.items() if python is None]
    if missing:
        pytest.skip(f"no Python {', '.join(missing)} on PATH, in a tool cache ({', '.join(map(str, tool_caches()))}) "
                    "or in pyenv: install it (e.g. actions/setup-python) to run the lock tests")
    directories = [str(python[1].parent) for python in found.values()]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PATH", os.pathsep.join([*directories, os.environ.get("PATH", "")]))
        yield found


@pytest.mark.parametrize("minor", PYTHONS)
def test_the_lock_tests_find_their_python_as_runners_provide_it(pythons, minor, record_property):
    origin, executable, version = pythons[minor]
    assert post.find_python(minor) == (executable, version), "the hook would lock for another interpreter"
    record_property("measurement", f"lock: Python {minor} is {version} from {origin} ({executable})")


def pipenv(project, answers, *args, timeout=900):
    """Run the pipenv the hook installed for these answers, in the project's source/."""
    _, runner_version = post.find_python(answers["python_version"])
    venv = post.pipenv_venv_path(answers["pipenv_version"], runner_version)
    env = post.pipenv_environment(os.environ, post.pip_config_list())
    return subprocess.run([str(post.venv_python(venv)), "-m", "pipenv", *args], cwd=project / "source",
                          env=env, capture_output=True, text=True, timeout=timeout)


# The tests of the default lock share one worker, so that the project is locked once.
same_worker = pytest.mark.xdist_group("default-lock")


@pytest.fixture(scope="module")
def locked(bake):
    answers = {"lock_dependencies": True}
    return bake(**answers), {**DEFAULTS, **answers}


@same_worker
def test_the_lock_resolves_for_the_chosen_python(locked):
    project, _ = locked
    lock = json.loads((project / "source" / "Pipfile.lock").read_text())
    assert lock["_meta"]["requires"] == {"python_version": "3.10"}
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
    pipfile.write_text(pipfile.read_text().replace('gunicorn = ">=23"', 'gunicorn = ">=23.1"'))
    assert pipenv(changed, answers, "verify").returncode != 0


@same_worker
def test_the_makefile_installs_tests_scans_and_serves_the_locked_project(locked, tmp_path):
    """The README's local development without a container: make install, test, scan, run."""
    project, answers = locked
    copy = tmp_path / "project"
    shutil.copytree(project, copy)
    python, version = post.find_python(answers["python_version"])
    pipenv_bin = post.pipenv_venv_path(answers["pipenv_version"], version) / "bin"
    env = {**post.pipenv_environment(os.environ, post.pip_config_list()),
           "PIPENV_PYTHON": str(python), "PATH": f"{pipenv_bin}{os.pathsep}{os.environ['PATH']}"}

    def make(target):
        return subprocess.run(["make", target], cwd=copy, env=env, capture_output=True, text=True, timeout=900)

    installed = make("install")  # pipenv install --dev --deploy
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert post.python_version(post.venv_python(copy / "source" / ".venv")) == version
    tested = make("test")
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Required test coverage of 90% reached" in tested.stdout
    scanned = make("scan")
    assert scanned.returncode == 0, scanned.stdout + scanned.stderr

    port = free_port()
    server = subprocess.Popen(["make", "run"], cwd=copy, env={**env, "PORT": str(port)}, start_new_session=True,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
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


def test_the_briefs_pipenv_locks_on_python_3_11(bake):
    answers = {**DEFAULTS, "python_version": "3.11", "pipenv_version": "2022.7.24", "lock_dependencies": True}
    project = bake(**{key: answers[key] for key in ("python_version", "pipenv_version", "lock_dependencies")})
    lock = json.loads((project / "source" / "Pipfile.lock").read_text())
    assert lock["_meta"]["requires"] == {"python_version": "3.11"}
    verified = pipenv(project, answers, "verify")
    assert verified.returncode == 0, verified.stdout + verified.stderr


def test_a_failing_lock_keeps_the_project_and_says_how_to_lock_later(cookies, capfd):
    index = f"http://127.0.0.1:{free_port()}/simple"  # nothing listens there
    result = cookies.bake(extra_context={"lock_dependencies": True, "package_index": index})
    out, err = capfd.readouterr()
    assert result.exit_code == 0, result.exception
    project = result.project_path
    assert (project / "README.md").is_file() and (project / "source" / "Pipfile").is_file()
    assert not (project / "source" / "Pipfile.lock").exists()
    assert not (project / "source" / ".venv").exists()
    assert "Pipfile.lock: NOT LOCKED" in out
    assert "WARNING: source/Pipfile.lock was NOT created: pipenv lock failed." in err
    assert "Reason: ERROR: No matching distribution found for" in err
    assert f"Hint: {index} cannot be reached" in err and "Connection refused" in err
    assert "The project was generated and kept" in err
    assert post.readme_lock_command(project) in err
