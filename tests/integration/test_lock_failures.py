"""The lock on an unlucky machine: whatever goes wrong there, nothing is left half-done.

The lock is the project's scripts/lock.py, run two ways, as users do (WAYS): by the
post-generation hook in a bake with cookiecutter's own command line, and by `make lock` in a
generated project. Each test makes the machine unlucky on purpose: a cache it cannot write, a
full disk, a pipenv that does not install, a package index that never answers, Ctrl-C,
SIGTERM, SIGHUP or SIGQUIT in the middle of the lock, the caller killed alone, a private index
that needs a token. The bake ends with exit status 0 (cookiecutter deletes the project when
the post-generation hook fails), the project kept without a lock, and one warning with the
cause, the fix and the commands that lock later; `make lock` ends non-zero with lock.py's one
message. Both leave nothing behind: no source/.venv, no Pipfile.lock, no process, no file
holding the token.
"""

import contextlib
import json
import os
import re
import secrets
import shlex
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jobs import interruptible
from releases import cookiecutter_config, make_template_repo

from tools.net import silent_server
from tools.private_index import PrivateIndex, index_wheels
from tools.project import (
    DEFAULTS,
    REPO,
    cached_pipenv,
    pipfile_requirements,
    unpinned_pipenv_file,
)

APP = "unlucky"
HOW_TO_LOCK = "Lock before the first push"


def cookiecutter(output, *answers, env=None, **popen):
    """`cookiecutter --no-input <template> -o output app_name=unlucky answers...` as a process."""
    argv = [
        sys.executable,
        "-m",
        "cookiecutter",
        "--no-input",
        str(REPO),
        "-o",
        str(output),
        f"app_name={APP}",
        "lock_dependencies=true",
        *answers,
    ]
    return subprocess.Popen(
        argv,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=interruptible,
        **popen,
    )


def bake(output, *answers, env=None):
    process = cookiecutter(output, *answers, env=env)
    out = process.communicate(timeout=900)[0]
    return process.returncode, out, output / APP


# The two ways a lock runs: the bake's post-generation hook, and `make lock` in the project.
WAYS = ["bake", "make-lock"]


def start_lock(way, output, *answers, env=None, **popen):
    """The lock as a user starts it, as a process whose output is readable: the bake, or a
    bake without the lock and then `make lock` in the project."""
    if way == "bake":
        return cookiecutter(output, *answers, env=env, **popen)
    status, out, project = bake(output, *answers, "lock_dependencies=false", env=env)
    assert status == 0, out
    return subprocess.Popen(
        ["make", "lock"],
        cwd=project,
        env={**os.environ, **(env or {})},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=interruptible,
        **popen,
    )


def lock(way, output, *answers, env=None):
    process = start_lock(way, output, *answers, env=env)
    out = process.communicate(timeout=900)[0]
    return process.returncode, out, output / APP


def assert_not_locked(way, status, out, project, reason):
    """No lock and nothing left behind; the reason said: in the bake's warning (the project
    kept, exit 0), or as lock.py's one message (make fails)."""
    if way == "bake":
        assert_kept_without_lock(status, out, project)
        assert f"Reason: {reason}" in out
    else:
        assert status != 0, out
        assert f"lock.py lock: {reason}" in out
        assert not (project / "source" / "Pipfile.lock").exists() and not (project / "source" / ".venv").exists()
    assert "Traceback" not in out
    assert processes_in(project) == []


def assert_kept_without_lock(status, out, project):
    assert status == 0, out
    assert (project / "README.md").is_file() and (project / "source" / "Pipfile").is_file(), out
    assert not (project / "source" / "Pipfile.lock").exists()
    assert not (project / "source" / ".venv").exists()
    assert "The project was generated and kept; only the lock is missing." in out
    assert HOW_TO_LOCK in out and f"cd {project} && make lock" in out
    assert "Traceback" not in out


def processes_in(directory):
    """Processes whose working directory is inside `directory` (pipenv and its resolver; the
    hook, lock.py and make work in the project's root)."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(directory) in os.readlink(entry / "cwd"):
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def sudo():
    """[] as root, ["sudo", "-n"] where sudo needs no password (hosted CI runners), else None."""
    if os.geteuid() == 0:
        return []
    if shutil.which("sudo") and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0:
        return ["sudo", "-n"]
    return None


@contextlib.contextmanager
def tmpfs(path, options):
    """A tmpfs mounted at `path` for the block (a small or read-only file system)."""
    prefix = sudo()
    if prefix is None:
        pytest.skip("mounting a small file system needs root or password-less sudo, and this user has neither")
    path.mkdir()
    subprocess.run([*prefix, "mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], check=True)
    try:
        if "ro" not in options.split(","):
            subprocess.run([*prefix, "chmod", "1777", str(path)], check=True)
        yield path
    finally:
        subprocess.run([*prefix, "umount", str(path)], check=True)


@contextlib.contextmanager
def read_only_dir(path):
    """A directory this user cannot write: a read-only mount as root (whom permissions do
    not stop), a directory without write permission otherwise."""
    if os.geteuid() == 0:
        with tmpfs(path, "ro,size=1m"):
            yield path
        return
    path.mkdir()
    path.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        yield path
    finally:
        path.chmod(stat.S_IRWXU)


@contextlib.contextmanager
def silent_index(connections=None):
    """The URL of an index on 127.0.0.1 that accepts connections and never answers; each
    connection it accepted is appended to ``connections``."""
    with silent_server(connections) as port:
        yield f"http://127.0.0.1:{port}/simple"


# ---- the machine -------------------------------------------------------------------------------


@pytest.mark.parametrize("way", WAYS)
def test_a_cache_it_cannot_write_names_xdg_cache_home(tmp_path, way):
    with read_only_dir(tmp_path / "cache") as cache:
        status, out, project = lock(way, tmp_path / "out", env={"XDG_CACHE_HOME": str(cache)})
    assert_not_locked(way, status, out, project, f"cannot write {cache}/flask-appstack: ")
    assert "set XDG_CACHE_HOME to a directory you can write" in out


@contextlib.contextmanager
def read_only_tree(path):
    """`path` and all below it read-only for the block: a read-only bind mount of it onto itself
    as root (whom permissions do not stop), no write permission anywhere in it otherwise."""
    if os.geteuid() == 0 or sudo() is not None:
        prefix = sudo()
        subprocess.run([*prefix, "mount", "--bind", str(path), str(path)], check=True)
        try:
            subprocess.run([*prefix, "mount", "-o", "remount,bind,ro", str(path)], check=True)
            yield path
        finally:
            subprocess.run([*prefix, "umount", str(path)], check=True)
        return
    subprocess.run(["chmod", "-R", "a-w", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=True)


@pytest.fixture(scope="module")
def pipenv_for_python_3_11():
    """The default pipenv for Python 3.11 (the private index's wheels are 3.11's), installed
    into lock.py's cache as a lock installs it."""
    cached = cached_pipenv("3.11")
    if cached is None:
        pytest.skip("no Python 3.11 on PATH or in pyenv")
    return cached[0]


@pytest.mark.parametrize("way", WAYS)
def test_a_read_only_cache_that_holds_pipenv_is_used_as_it_is(wheels, pipenv_for_python_3_11, tmp_path, way):
    """A cache shared read-only (a CI image's, a colleague's), with the pipenv lock.py would
    install: the lock uses it and writes nothing there."""
    cache = tmp_path / "cache"
    shutil.copytree(pipenv_for_python_3_11, cache / "flask-appstack" / pipenv_for_python_3_11.name, symlinks=True)
    token = secrets.token_urlsafe(24)
    env = {"XDG_CACHE_HOME": str(cache), "PYPI_USER": "team-user", "PYPI_TOKEN": token}
    with read_only_tree(cache), PrivateIndex(wheels, "team-user", token) as index:
        status, out, project = lock(way, tmp_path / "out", f"package_index={index.url}", "python_version=3.11", env=env)
    assert status == 0 and (project / "source" / "Pipfile.lock").is_file(), out
    assert "installing pipenv" not in out and "Read-only file system" not in out


@pytest.mark.parametrize("way", WAYS)
def test_a_full_disk_says_so(tmp_path, way):
    with tmpfs(tmp_path / "cache", "size=2m") as cache:
        status, out, project = lock(way, tmp_path / "out", env={"XDG_CACHE_HOME": str(cache)})
        assert not list(cache.glob("flask-appstack/pipenv-*/bin")), "a half-built pipenv venv was left in the cache"
    assert_not_locked(way, status, out, project, f"no space left on device in {cache}/flask-appstack: free some space")
    assert "installing pipenv" in out.split("no space left")[0]  # said before the long step started
    assert "ensurepip" not in out


def test_a_pipenv_the_template_does_not_pin_is_not_installed_and_says_what_to_do(tmp_path):
    """A project made when any pipenv was taken (the pre-generation rule refuses an unpinned one
    now): its pins file says there are none, as it renders for it, and make lock refuses."""
    status, out, project = bake(tmp_path / "out", "lock_dependencies=false")
    assert status == 0, out
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(
        dockerfile.read_text().replace(f"PIPENV_VERSION={DEFAULTS['pipenv_version']}", "PIPENV_VERSION=2099.1.1")
    )
    (project / "scripts" / "pipenv-requirements.txt").write_text(unpinned_pipenv_file("2099.1.1"))
    made = subprocess.run(["make", "lock"], cwd=project, capture_output=True, text=True, timeout=900)
    out = made.stdout + made.stderr
    reason = "scripts/pipenv-requirements.txt pins no pipenv 2099.1.1 with hashes, and pipenv is installed only from it"
    assert_not_locked("make-lock", made.returncode, out, project, reason)
    assert 'make reconfigure ANSWERS="pipenv_version=<version>"' in out and "installing pipenv" not in out


def test_pipenv_is_installed_only_with_the_hashes_of_its_pins(tmp_path):
    """pipenv, installed into the cache where the token is (in the environment), is checked
    against the hashes of scripts/pipenv-requirements.txt: a wheel that does not match is not
    installed."""
    status, out, project = bake(tmp_path / "out", "lock_dependencies=false")
    assert status == 0, out
    pins = project / "scripts" / "pipenv-requirements.txt"
    version = DEFAULTS["pipenv_version"]
    entry = re.search(rf"^pipenv=={re.escape(version)} \\\n(\s+--hash=.*\n)+", pins.read_text(), re.M)[0]
    tampered = re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, entry)  # as if the index served another wheel
    pins.write_text(pins.read_text().replace(entry, tampered))
    cache = tmp_path / "cache"
    env = {**os.environ, "XDG_CACHE_HOME": str(cache), "PYPI_USER": "team-user", "PYPI_TOKEN": "a-token"}
    made = subprocess.run(["make", "lock"], cwd=project, env=env, capture_output=True, text=True, timeout=900)
    out = made.stdout + made.stderr
    assert made.returncode != 0, out
    mismatch = (
        f"pipenv=={version}: the file the package index serves does not match its hash in {pins.relative_to(project)}"
    )
    assert mismatch in out and "`git checkout scripts/pipenv-requirements.txt`" in out, out
    assert list(cache.glob("flask-appstack/pipenv-*/bin")) == [] and not (project / "source" / "Pipfile.lock").exists()


def test_a_helm_that_refuses_the_chart_is_a_warning(tmp_path):
    """The user's own helm, of whatever version, refuses the chart: the project stays."""
    helm = fake_helm(tmp_path, "echo 'Error: chart.metadata.apiVersion is required' >&2\nexit 1")
    env = {"PATH": f"{helm.parent}{os.pathsep}{os.environ['PATH']}"}
    status, out, project = bake(tmp_path / "out", "lock_dependencies=false", env=env)
    assert status == 0, out
    assert (project / "chart" / "Chart.yaml").is_file()
    assert f"chart: WARNING: {helm} refuses the chart" in out
    assert f"{helm} refuses chart/ with values-prod.yaml: Error: chart.metadata.apiVersion is required" in out


def fake_helm(tmp_path, script):
    """A `helm` that runs `script` (sh)."""
    helm = tmp_path / "bin" / "helm"
    helm.parent.mkdir()
    helm.write_text(f"#!/bin/sh\n{script}\n")
    helm.chmod(0o755)
    return helm


def test_sigterm_during_the_chart_lint_keeps_the_project_and_says_how_to_lock(tmp_path):
    started = tmp_path / "helm-started"
    helm = fake_helm(tmp_path, f"touch {started}\nexec sleep 60")
    process = cookiecutter(tmp_path / "out", env={"PATH": f"{helm.parent}{os.pathsep}{os.environ['PATH']}"})
    deadline = time.monotonic() + 60
    while not started.exists():
        assert time.monotonic() < deadline and process.poll() is None, process.stdout.read()
        time.sleep(0.05)
    os.kill(hook_process(process.pid), signal.SIGTERM)
    out = process.communicate(timeout=60)[0]
    project = tmp_path / "out" / APP
    assert_kept_without_lock(process.returncode, out, project)
    assert "chart: not linted (interrupted); `make helm-lint` does it." in out
    assert "source/Pipfile.lock was NOT created: the lock was interrupted." in out and "By: SIGTERM" in out
    assert processes_in(project) == [] and not [pid for pid in processes_in(tmp_path) if "sleep" in cmdline(pid)]


# ---- a bake stopped before the post-generation hook holds its signals ---------------------------

INCOMPLETE = "GENERATION-INCOMPLETE.txt"  # hooks/pre_gen_project.py's mark
# When the stop comes: cookiecutter running the pre-gen hook, writing the project's files (the
# pre-gen hook done, the post-gen one not started: 1.3 to 1.9 s into a bake), starting the post-gen hook.
MOMENTS = ["pre-gen hook", "writing files", "post-gen hook"]


@pytest.fixture(scope="module")
def complete_bake(tmp_path_factory):
    """The files of the bake the tests below stop, when nothing stops it."""
    status, out, project = bake(tmp_path_factory.mktemp("complete"), "lock_dependencies=false")
    assert status == 0, out
    return sorted(path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file())


def files_of(project):
    return sorted(path.relative_to(project).as_posix() for path in project.rglob("*") if path.is_file())


def children(pid):
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


def freeze_at(moment, process, project, complete, generator=None):
    """Stop cookiecutter's whole job (SIGSTOP, as Ctrl-Z) at `moment`; returns once it is there.
    `generator`: the pid of the program that runs the hooks, when it is not `process` (cruft, under tasks.py)."""
    deadline = time.monotonic() + 120
    while True:
        assert process.poll() is None and time.monotonic() < deadline, f"no {moment}: " + process.stdout.read()
        hook, written = children(generator or process.pid), len(files_of(project)) if project.is_dir() else 0
        wanted = {
            "pre-gen hook": hook and written <= 1,  # 1: its mark
            "writing files": not hook and 10 <= written < len(complete) - 10,
            "post-gen hook": hook and written >= len(complete) - 3,  # all but the hostspaces' values
        }[moment]
        if wanted:
            os.killpg(process.pid, signal.SIGSTOP)
            if children(generator or process.pid) == hook and len(files_of(project)) == written:
                return
            os.killpg(process.pid, signal.SIGCONT)  # it moved on meanwhile: try again
        time.sleep(0.002)


def assert_no_project_or_one_marked_with_its_command(project, complete, out):
    """No project (no directory, or an empty one, which any generation with -f takes), or one
    whose mark says it is incomplete, with the command that completes it; or, once the post-gen
    hook held its signals, the complete project."""
    written = files_of(project) if project.is_dir() else []
    if not written:
        return "none"
    if INCOMPLETE not in written:
        assert written == complete, out
        return "complete"
    notice = (project / INCOMPLETE).read_text()
    assert notice.startswith(f"flask-appstack: {project} is NOT a complete project: generating it was interrupted")
    command = shlex.split(notice.splitlines()[-1])
    assert command[:3] == ["cookiecutter", "--no-input", "--overwrite-if-exists"]
    path = f"{os.path.dirname(sys.executable)}{os.pathsep}{os.environ['PATH']}"
    again = subprocess.run(command, env={**os.environ, "PATH": path}, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stdout + again.stderr
    assert files_of(project) == complete
    return "marked"


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
@pytest.mark.parametrize("moment", MOMENTS)
def test_a_bake_stopped_at_any_moment_leaves_no_project_or_one_marked_with_the_command(
    tmp_path, complete_bake, moment, stop
):
    """SIGTERM or Ctrl-C 1.3 to 1.9 s into a bake left 15 to 76 of its 78 files, unmarked."""
    project, temporary = tmp_path / "out" / APP, tmp_path / "tmp"
    temporary.mkdir()  # cookiecutter stopped before a hook runs leaves its copy of it: here, not in the machine's
    env = {"TMPDIR": str(temporary)}
    process = cookiecutter(tmp_path / "out", "lock_dependencies=false", env=env, start_new_session=True)
    freeze_at(moment, process, project, complete_bake)
    if stop == "ctrl-c":
        os.killpg(process.pid, signal.SIGINT)  # the terminal's, to the whole job
    else:
        os.kill(process.pid, signal.SIGTERM)  # `kill <cookiecutter>`
    os.killpg(process.pid, signal.SIGCONT)
    out = process.communicate(timeout=60)[0]
    deadline = time.monotonic() + 30  # a hook that outlives cookiecutter finishes its work
    while processes_in(project) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = assert_no_project_or_one_marked_with_its_command(project, complete_bake, out)
    if moment == "writing files":
        assert left == "marked" and "Traceback" not in out, out


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """A clone of the template as it is in this working tree, released, with its tools (.venv):
    what `python3 tasks.py generate` generates from."""
    template = make_template_repo(tmp_path_factory.mktemp("quickstart") / "flask-appstack")
    (template / ".venv").symlink_to(REPO / ".venv")
    return template


@pytest.mark.parametrize("stop", ["ctrl-c", "sigterm"])
def test_the_quickstart_stopped_while_writing_prints_the_mark_and_its_command_completes_the_project(
    tmp_path, quickstart, complete_bake, stop
):
    """`python3 tasks.py generate` (cruft create) stopped while the files are written: one message,
    the project's mark, no traceback, nothing left in the temporary folder (cruft's clone of the
    template, cookiecutter's copies of the hooks); its command (-f) completes the project, .cruft.json too."""
    out, env, temporary = tmp_path / "out", cookiecutter_config(tmp_path), tmp_path / "tmp"
    temporary.mkdir()
    env = {**env, "TMPDIR": str(temporary)}
    argv = [sys.executable, quickstart / "tasks.py", "generate", "--no-input", "-o", out, f"app_name={APP}"]
    process = subprocess.Popen(
        [*argv, "lock_dependencies=false"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=interruptible,
    )
    deadline = time.monotonic() + 120
    while not children(process.pid):  # cruft
        assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
        time.sleep(0.01)
    freeze_at("writing files", process, out / APP, complete_bake, generator=int(children(process.pid)[0]))
    signum = signal.SIGINT if stop == "ctrl-c" else signal.SIGTERM
    if stop == "ctrl-c":
        os.killpg(process.pid, signum)
    else:
        os.kill(process.pid, signum)  # tasks.py alone: it passes the signal on
    os.killpg(process.pid, signal.SIGCONT)
    err = process.communicate(timeout=120)[1]
    assert process.returncode == 128 + signum, err
    notice = (out / APP / INCOMPLETE).read_text()
    # Where it generates from, said first; then the mark's notice alone, without a traceback.
    assert err.startswith("tasks.py: ") and err.split("\n", 1)[1] == notice and "Traceback" not in err
    assert list(temporary.iterdir()) == []
    words = shlex.split(notice.splitlines()[-1])
    assert words[:5] == ["python3", str(quickstart / "tasks.py"), "generate", "--no-input", "-f"]
    again = subprocess.run([sys.executable, *words[1:]], env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert files_of(out / APP) == sorted([*complete_bake, ".cruft.json"])


# ---- an index that never answers: a time limit, stop signals, the caller gone -------------------


@pytest.fixture(scope="module")
def pipenv_in_the_cache():
    """The default pipenv, installed into lock.py's cache as a lock installs it (once per machine):
    a test's time limit then falls on the lock, not on that install."""
    cached = cached_pipenv()
    if cached is None:
        pytest.skip(f"no Python {DEFAULTS['python_version']} on PATH or in pyenv")
    return cached[0]


@pytest.mark.parametrize("way", WAYS)
def test_a_lock_past_its_time_limit_ends_pipenv_and_everything_it_started(tmp_path, way, pipenv_in_the_cache):
    asked = []
    with silent_index(asked) as index:
        env = {"APPSTACK_LOCK_TIMEOUT": "6"}
        status, out, project = lock(way, tmp_path / "out", f"package_index={index}", env=env)
    assert asked, "pipenv never reached the index within the time limit"
    assert_not_locked(way, status, out, project, "`pipenv lock --python ")
    assert "` gave no result within 6 s: the package index did not answer in time" in out


def start_locking(way, tmp_path, index, env):
    """The lock in a session of its own (as a terminal's foreground job), once pipenv runs."""
    process = start_lock(way, tmp_path / "out", f"package_index={index}", env=env, start_new_session=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "locking source/Pipfile" in line:
            break
    for _ in range(100):  # pipenv starts right after the line
        if processes_in(tmp_path / "out" / APP / "source"):
            return process, lines
        time.sleep(0.1)
    raise AssertionError("pipenv did not start: " + "".join(lines))


def hook_process(cookiecutter_pid):
    """The post-generation hook: the child process of cookiecutter."""
    [hook] = children(cookiecutter_pid)
    return int(hook)


def cmdline(pid):
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().replace("\0", " ")
    except OSError:
        return ""


def lock_program_process(project):
    """lock.py under make: of the processes with its command line, the one that is no child of
    another (a child lock.py forks has that command line until it runs its own program)."""
    found = [pid for pid in processes_in(project) if "scripts/lock.py lock" in cmdline(pid)]
    forked = {int(child) for pid in found for child in children(pid)}
    [pid] = [pid for pid in found if pid not in forked]
    return pid


def signalled(process, way, kind, project):
    """Send the stop of `kind`: a terminal's to the whole foreground job (Ctrl-C, a hang-up,
    Ctrl-\\), `kill` to the program that locks (the hook, or lock.py under make), or `kill` to
    the caller alone (cookiecutter, or make)."""
    if kind in ("ctrl-c", "sighup", "sigquit"):
        os.killpg(process.pid, {"ctrl-c": signal.SIGINT, "sighup": signal.SIGHUP, "sigquit": signal.SIGQUIT}[kind])
    elif kind == "sigterm":
        os.kill(hook_process(process.pid) if way == "bake" else lock_program_process(project), signal.SIGTERM)
    else:  # the caller alone
        os.kill(process.pid, signal.SIGTERM)


STOPS = ["ctrl-c", "sigterm", "sighup", "sigquit", "caller-killed-alone"]


def with_a_token(tmp_path):
    """(token, temporary folder, environment, project) of a lock run with PYPI_USER and a fresh
    PYPI_TOKEN, its temporary files in a folder of its own, to search for the token after."""
    token = secrets.token_urlsafe(24)
    temp = tmp_path / "tmp"
    temp.mkdir()
    return token, temp, {"PYPI_USER": "team-user", "PYPI_TOKEN": token, "TMPDIR": str(temp)}, tmp_path / "out" / APP


@pytest.mark.parametrize("kind", STOPS)
@pytest.mark.parametrize("way", WAYS)
def test_a_stop_during_the_lock_leaves_no_process_and_no_token(tmp_path, way, kind):
    token, temp, env, project = with_a_token(tmp_path)
    with silent_index() as index:
        process, lines = start_locking(way, tmp_path, index, env)
        signalled(process, way, kind, project)
        out = "".join(lines) + process.stdout.read()  # until the hook and lock.py, too, have closed it
        process.wait(timeout=60)
    deadline = time.monotonic() + 30  # the caller alone killed: its children end on their own
    while processes_in(project) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_in(project) == [], out
    assert not (project / "source" / "Pipfile.lock").exists() and not (project / "source" / ".venv").exists()
    assert "Traceback" not in out
    if way == "bake":
        assert "source/Pipfile.lock was NOT created: the lock was interrupted." in out
        assert "The project was generated and kept; only the lock is missing." in out
        assert HOW_TO_LOCK in out and f"cd {project} && make lock" in out
    else:
        assert process.returncode != 0
        assert "lock.py lock: interrupted (" in out or kind == "caller-killed-alone"
    assert files_holding(token, temp, project) == []
    assert list(temp.iterdir()) == []  # the hooks remove cookiecutter's copies of them, too


# SIGKILL cannot be caught: lock.py (and the hook, make, cookiecutter) end at once, cleaning up
# nothing themselves. What pipenv runs with, and writes, holds the token.
@pytest.mark.parametrize("way", WAYS)
def test_sigkill_to_the_locks_process_group_leaves_no_process_and_no_token(tmp_path, way):
    token, temp, env, project = with_a_token(tmp_path)
    with silent_index() as index:
        process, lines = start_locking(way, tmp_path, index, env)
        deadline = time.monotonic() + 60  # pipenv writes the token into its temporary files, then asks
        while not files_holding(token, temp) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert files_holding(token, temp), "pipenv wrote no file holding the token: " + "".join(lines)
        assert processes_holding(token), "no process holds the token in its environment"
        os.killpg(process.pid, signal.SIGKILL)  # the lock's whole process group: make or cookiecutter, and below
        process.wait(timeout=60)
        deadline = time.monotonic() + 30
        while (processes_holding(token) or files_holding(token, temp)) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = [cmdline(pid) for pid in processes_holding(token)]
    assert left == [] and processes_in(project) == []
    assert files_holding(token, temp, project) == []
    assert list(temp.iterdir()) == []  # the hooks remove cookiecutter's copies of them, too


def processes_holding(token):
    """Processes (not zombies) whose environment holds `token`: pipenv and its resolver get it."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and token.encode() in (entry / "environ").read_bytes():
                found.append(int(entry.name))
        except OSError:
            pass
    return found


def files_holding(token, *roots):
    """Every file under `roots` whose bytes hold `token`."""
    return [
        path
        for root in roots
        for path in Path(root).rglob("*")
        if path.is_file() and not path.is_symlink() and token.encode() in path.read_bytes()
    ]


# ---- credentials -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheels(default_project):
    """What the default Pipfile needs, for the Python 3.11 the locks below resolve for."""
    return index_wheels(pipfile_requirements(default_project), "3.11")


@pytest.mark.parametrize("accepted", [True, False], ids=["index-accepts-the-token", "index-refuses-it"])
@pytest.mark.parametrize("way", WAYS)
def test_the_token_is_in_no_file_whether_the_lock_works_or_not(wheels, tmp_path, way, accepted):
    token = secrets.token_urlsafe(24)
    temp, pipenv_cache, pip_cache = (tmp_path / name for name in ("tmp", "pipenv-cache", "pip-cache"))
    temp.mkdir()
    env = {
        "PYPI_USER": "team-user",
        "PYPI_TOKEN": token,
        "TMPDIR": str(temp),
        "PIPENV_CACHE_DIR": str(pipenv_cache),
        "PIP_CACHE_DIR": str(pip_cache),
    }
    expected = token if accepted else secrets.token_urlsafe(24)
    with PrivateIndex(wheels, "team-user", expected) as index:
        status, out, project = lock(way, tmp_path / "out", f"package_index={index.url}", "python_version=3.11", env=env)
    assert status == (0 if way == "bake" or accepted else 2), out
    assert (project / "source" / "Pipfile.lock").is_file() == accepted, out
    assert index.served > 0 if accepted else (index.refused > 0 and index.served == 0)
    if not accepted:  # said as what it is, with the fix; not pip's "No matching distribution found"
        refused = f"pipenv lock failed: the package index {index.url} refused the credentials (HTTP 401 Unauthorized)"
        assert refused in out and "generate a new identity token" in out, out
    venv = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flask-appstack"
    pipenv_venvs = sorted(venv.glob(f"pipenv-{DEFAULTS['pipenv_version']}-py3.11"))
    assert files_holding(token, temp, pipenv_cache, pip_cache, project, *pipenv_venvs) == []
    assert token not in out
    assert list(temp.iterdir()) == []  # the hooks remove cookiecutter's copies of them, too


def test_a_tampered_hash_in_the_lock_is_said_as_such_with_the_fix(wheels, tmp_path):
    """A hash of Pipfile.lock that no longer matches what the index serves: `make install`
    names the package and says what to do, not pip's "Couldn't install package(s)"."""
    token = secrets.token_urlsafe(24)
    env = {"PYPI_USER": "team-user", "PYPI_TOKEN": token}
    with PrivateIndex(wheels, "team-user", token) as index:
        status, out, project = lock(
            "make-lock", tmp_path / "out", f"package_index={index.url}", "python_version=3.11", env=env
        )
        assert status == 0, out
        lock_file = project / "source" / "Pipfile.lock"
        locked = json.loads(lock_file.read_text())
        locked["default"]["blinker"]["hashes"] = ["sha256:" + "0" * 64]
        lock_file.write_text(json.dumps(locked, indent=4) + "\n")
        installed = subprocess.run(
            ["make", "install"], cwd=project, env={**os.environ, **env}, capture_output=True, text=True, timeout=900
        )
    out = installed.stdout + installed.stderr
    assert installed.returncode != 0, out
    version = locked["default"]["blinker"]["version"]
    assert (
        f"lock.py install: pipenv install failed: blinker{version}: the file the package index serves does not " in out
    )
    assert "match its hash in source/Pipfile.lock" in out and "git checkout source/Pipfile.lock" in out
    assert "Couldn't install" not in out and "Traceback" not in out
    assert not (project / "source" / ".venv").exists()
