"""The lock on an unlucky machine: whatever goes wrong there, the project is kept.

Each test bakes with cookiecutter's own command line, as a user would, into a machine made
unlucky on purpose: a cache it cannot write, a full disk, a package index that never
answers, Ctrl-C or SIGTERM in the middle of the lock, a helm that refuses the chart, a
private index that needs a token. Each ends with exit status 0 (cookiecutter deletes the
project when the post-generation hook fails), the project in place without a lock, one
warning that names the cause and the fix, the commands that lock later, and nothing left
behind: no source/.venv, no pipenv process, no file holding the token.
"""

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tools.private_index import PrivateIndex, index_wheels
from tools.project import DEFAULTS, REPO, pipfile_requirements

pytestmark = pytest.mark.slow

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


def interruptible():
    """In the child: SIGINT at its default, as a shell starts its foreground jobs. A suite
    started in the background from a script inherits SIGINT ignored, and Ctrl-C would then
    never reach cookiecutter or the hook."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def bake(output, *answers, env=None):
    process = cookiecutter(output, *answers, env=env)
    out = process.communicate(timeout=900)[0]
    return process.returncode, out, output / APP


def assert_kept_without_lock(status, out, project):
    assert status == 0, out
    assert (project / "README.md").is_file() and (project / "source" / "Pipfile").is_file(), out
    assert not (project / "source" / "Pipfile.lock").exists()
    assert not (project / "source" / ".venv").exists()
    assert "The project was generated and kept; only the lock is missing." in out
    assert HOW_TO_LOCK in out and f"cd {project} && make lock" in out
    assert "Traceback" not in out


def processes_in(directory):
    """Processes whose working directory is inside `directory` (pipenv and its resolver)."""
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
def silent_index():
    """The URL of an index on 127.0.0.1 that accepts connections and never answers."""
    server = socket.create_server(("127.0.0.1", 0))
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.getsockname()[1]}/simple"
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()


# ---- the machine -------------------------------------------------------------------------------


def test_a_cache_it_cannot_write_keeps_the_project_and_names_xdg_cache_home(tmp_path):
    with read_only_dir(tmp_path / "cache") as cache:
        status, out, project = bake(tmp_path / "out", env={"XDG_CACHE_HOME": str(cache)})
    assert_kept_without_lock(status, out, project)
    assert f"Reason: cannot write {cache}/flask-appstack: " in out
    assert "set XDG_CACHE_HOME to a directory you can write" in out


def test_a_full_disk_says_so_and_keeps_the_project(tmp_path):
    with tmpfs(tmp_path / "cache", "size=2m") as cache:
        status, out, project = bake(tmp_path / "out", env={"XDG_CACHE_HOME": str(cache)})
        assert not list(cache.glob("flask-appstack/pipenv-*/bin")), "a half-built pipenv venv was left in the cache"
    assert_kept_without_lock(status, out, project)
    assert "installing pipenv" in out.split(HOW_TO_LOCK)[0]  # said before the long step started
    assert f"Reason: no space left on device in {cache}/flask-appstack: free some space there" in out
    assert "ensurepip" not in out


def test_a_pipenv_that_does_not_install_keeps_the_project(tmp_path):
    status, out, project = bake(tmp_path / "out", "pipenv_version=2099.1.1")
    assert_kept_without_lock(status, out, project)
    assert "No matching distribution found for pipenv==2099.1.1" in out


def test_a_helm_that_refuses_the_chart_is_a_warning(tmp_path):
    """The user's own helm, of whatever version, refuses the chart: the project stays."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    helm = bin_dir / "helm"
    helm.write_text("#!/bin/sh\necho 'Error: chart.metadata.apiVersion is required' >&2\nexit 1\n")
    helm.chmod(0o755)
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}"}
    status, out, project = bake(tmp_path / "out", "lock_dependencies=false", env=env)
    assert status == 0, out
    assert (project / "chart" / "Chart.yaml").is_file()
    assert f"chart: WARNING: {helm} refuses the chart" in out
    assert f"{helm} refuses chart/ with values-prod.yaml: Error: chart.metadata.apiVersion is required" in out


# ---- an index that never answers: a time limit, Ctrl-C, SIGTERM -----------------------------


def test_a_lock_past_its_time_limit_ends_pipenv_and_everything_it_started(tmp_path):
    with silent_index() as index:
        status, out, project = bake(tmp_path / "out", f"package_index={index}", env={"APPSTACK_LOCK_TIMEOUT": "10"})
    assert_kept_without_lock(status, out, project)
    assert "Reason: `pipenv lock --python " in out
    assert "` gave no result within 10 s: the package index did not answer in time" in out
    assert processes_in(project) == []


def start_locking(tmp_path, index):
    """cookiecutter in a session of its own (as a terminal's foreground job), once it locks."""
    process = cookiecutter(tmp_path / "out", f"package_index={index}", start_new_session=True)
    lines = []
    for line in process.stdout:
        lines.append(line)
        if "locking source/Pipfile" in line:
            break
    for _ in range(100):  # pipenv starts right after the line
        if processes_in(tmp_path / "out" / APP):
            return process, lines
        time.sleep(0.1)
    raise AssertionError("pipenv did not start: " + "".join(lines))


def hook_process(cookiecutter_pid):
    """The post-generation hook: the child process of cookiecutter."""
    children = Path(f"/proc/{cookiecutter_pid}/task/{cookiecutter_pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def test_ctrl_c_during_the_lock_keeps_the_project_and_leaves_nothing_behind(tmp_path):
    with silent_index() as index:
        process, lines = start_locking(tmp_path, index)
        os.killpg(process.pid, signal.SIGINT)  # what a terminal does on Ctrl-C
        out = "".join(lines) + process.stdout.read()  # until the hook, too, has closed it
        process.wait(timeout=60)
    project = tmp_path / "out" / APP
    assert_kept_without_lock(0, out, project)
    assert "source/Pipfile.lock was NOT created: the lock was interrupted." in out
    assert processes_in(project) == []


def test_sigterm_to_the_hook_during_the_lock_keeps_the_project(tmp_path):
    with silent_index() as index:
        process, lines = start_locking(tmp_path, index)
        os.kill(hook_process(process.pid), signal.SIGTERM)
        out = "".join(lines) + process.communicate(timeout=60)[0]
    project = tmp_path / "out" / APP
    assert_kept_without_lock(process.returncode, out, project)
    assert "Pipfile.lock: NOT LOCKED, the lock was interrupted." in out
    assert processes_in(project) == []


# SIGTERM the moment the tool has started (before the hook holds it): the hook must still end it.
SIGTERM_AS_THE_TOOL_STARTS = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from hooks import post_gen_project as post

signal.signal(signal.SIGTERM, post.on_sigterm)
start = post.start_tool


def start_then_sigterm(*args, **kwargs):
    process = start(*args, **kwargs)
    status = open(f"/proc/{process.pid}/status").read()
    print(process.pid, [line for line in status.splitlines() if line.startswith("SigBlk:")][0], flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    return process


post.start_tool = start_then_sigterm
try:
    post.run_tool(["sleep", "60"], "sleep", dict(os.environ), timeout=120)
except post.Interrupted:
    print("interrupted", flush=True)
"""


def test_sigterm_as_the_tool_starts_ends_the_tool_too():
    result = subprocess.run(
        [sys.executable, "-c", SIGTERM_AS_THE_TOOL_STARTS, str(REPO)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    pid, blocked = result.stdout.split("\n")[0].split(" ", 1)
    alive = Path(f"/proc/{pid}").exists()
    if alive:
        os.kill(int(pid), signal.SIGKILL)
    assert not alive and result.stdout.split("\n")[1] == "interrupted", result.stdout + result.stderr
    assert blocked.split() == ["SigBlk:", "0000000000000000"]  # the tool itself can be stopped


# ---- credentials -------------------------------------------------------------------------------


def files_holding(token, *roots):
    """Every file under `roots` whose bytes hold `token`."""
    return [
        path
        for root in roots
        for path in Path(root).rglob("*")
        if path.is_file() and not path.is_symlink() and token.encode() in path.read_bytes()
    ]


@pytest.fixture(scope="module")
def wheels(default_project):
    """What the default Pipfile needs, for the Python 3.11 the locks below resolve for."""
    return index_wheels(pipfile_requirements(default_project), "3.11")


@pytest.mark.parametrize("accepted", [True, False], ids=["index-accepts-the-token", "index-refuses-it"])
def test_the_token_is_in_no_file_whether_the_lock_works_or_not(wheels, tmp_path, accepted):
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
        status, out, project = bake(tmp_path / "out", f"package_index={index.url}", "python_version=3.11", env=env)
    assert status == 0, out
    assert (project / "source" / "Pipfile.lock").is_file() == accepted, out
    assert index.served > 0 if accepted else (index.refused > 0 and index.served == 0)
    venv = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flask-appstack"
    pipenv_venvs = sorted(venv.glob(f"pipenv-{DEFAULTS['pipenv_version']}-py3.11"))
    assert files_holding(token, temp, pipenv_cache, pip_cache, project, *pipenv_venvs) == []
    assert token not in out
    # Only cookiecutter's rendered hook scripts (tmp*.py), which cookiecutter leaves, are left.
    assert [path.name for path in temp.iterdir() if not re.fullmatch(r"tmp\w+\.py", path.name)] == []
