"""The project's lock program, scripts/lock.py, called directly: imported unrendered from the
template (it holds no Jinja), as the post-generation hook and `make lock` run it. Its real runs
(pipenv, an index, signals during a lock) are in test_lock.py and test_lock_failures.py."""

import ast
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.pipenv_pins import pipenv_requirements
from tools.project import (
    DEFAULTS,
    LOCK_PROGRAM,
    PIPENV_PINS,
    REPO,
    lock_program,
    pinned_pipenvs,
    unpinned_pipenv_file,
)

lock = lock_program()
PIP_INDEX = "https://mirror.example.com/pypi/simple"
MINOR = ".".join(DEFAULTS["python_version"].split(".")[:2])

# pip's network settings from its files, as pip_network_settings returns them.
NETWORK = {"PIP_CERT": "/etc/pip/ca.pem", "PIP_PROXY": "http://proxy.example.com:3128"}


# ---- the hook keeps none of it ------------------------------------------------------------------


def test_the_post_generation_hook_starts_no_pipenv():
    """No name or command word of the hook's code says pipenv (messages may): the lock is the
    project's scripts/lock.py, which the hook only runs. (No line count: the hook is written to
    read well, not to fit a number.)"""
    source = (REPO / "hooks" / "post_gen_project.py").read_text()
    words = [
        node.id if isinstance(node, ast.Name) else node.attr if isinstance(node, ast.Attribute) else node.value
        for node in ast.walk(ast.parse(source))
        if isinstance(node, (ast.Name, ast.Attribute))
        or (isinstance(node, ast.Constant) and isinstance(node.value, str) and " " not in node.value)
    ]
    assert [word for word in words if "pipenv" in word.lower()] == []
    assert "scripts/lock.py" in words


# ---- what it reads from the project ---------------------------------------------------------


def test_the_generated_lock_program_is_the_templates_file(default_project):
    """No Jinja in it: what the tests import is what every project runs."""
    assert (default_project / "scripts" / "lock.py").read_bytes() == LOCK_PROGRAM.read_bytes()


def test_the_python_comes_from_the_pipfile_and_the_pipenv_from_the_dockerfile(default_project):
    assert lock.project_python_version(default_project) == MINOR
    assert lock.project_pipenv_version(default_project) == DEFAULTS["pipenv_version"]


def test_a_full_python_version_in_the_pipfile_wins(tmp_path):
    (tmp_path / "source").mkdir()
    pipfile = tmp_path / "source" / "Pipfile"
    pipfile.write_text(
        '[packages]\nflask = "*"\n\n[requires]\npython_version = "3.12"\npython_full_version = "3.12.4"\n'
    )
    assert lock.project_python_version(tmp_path) == "3.12.4"
    pipfile.write_text('[packages]\npython_version = "3.1"\n')
    with pytest.raises(lock.LockError, match=r"no \[requires\] python_version"):
        lock.project_python_version(tmp_path)


def test_a_pipfile_python_other_than_the_base_images_is_refused_with_the_command_that_moves_the_project(tmp_path):
    """source/Pipfile is the team's file, the Dockerfile's base image and the pipeline the
    template's: a Python the team changes in the Pipfile alone would be locked for a Python the
    image does not run. The answer is the one place to change it."""
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "Pipfile").write_text('[requires]\npython_version = "3.12"\n')
    dockerfile = tmp_path / "Dockerfile"
    dockerfile.write_text("ARG BASE_IMAGE=registry.example.com/library/python:3.13-slim\nARG PACKAGE_INDEX=\n")
    assert lock.project_python_version(tmp_path) == "3.12"  # reading it is no check (make doctor reads it)
    with pytest.raises(lock.LockError) as refused:
        lock.check_pipfile_follows_the_answers(tmp_path, "3.12")
    assert "source/Pipfile's [requires] says Python 3.12, but the Dockerfile's base image is Python 3.13" in str(
        refused.value
    )
    assert 'make reconfigure ANSWERS="python_version=3.12"' in str(refused.value)
    lock.check_pipfile_follows_the_answers(tmp_path, "3.13.1")  # the same minor release: agreed


PYTHON = "3.13"


def test_a_package_index_the_pipfile_no_longer_names_is_refused_with_the_command_that_changes_both(tmp_path):
    """The Dockerfile's PACKAGE_INDEX (the answer; the image installs pipenv from it, with the
    token) must stay a [[source]] of source/Pipfile, the team's file."""
    (tmp_path / "source").mkdir()
    pipfile, dockerfile = tmp_path / "source" / "Pipfile", tmp_path / "Dockerfile"
    image = "ARG BASE_IMAGE=registry.example.com/library/python:3.13-slim\n"
    dockerfile.write_text(image + "ARG PACKAGE_INDEX=\n")
    pipfile.write_text('[packages]\nflask = "*"\n')
    lock.check_pipfile_follows_the_answers(tmp_path, PYTHON)  # no index answered: the machine's, or the default one
    dockerfile.write_text(image + "ARG PACKAGE_INDEX=https://pkgs.example.org/simple\n")
    private = '[[source]]\nname = "private"\nurl = "https://${PYPI_USER}:${PYPI_TOKEN}@pkgs.example.org/simple"\n'
    pipfile.write_text(private + '\n[packages]\nflask = "*"\n')
    lock.check_pipfile_follows_the_answers(tmp_path, PYTHON)
    pipfile.write_text(
        private.replace("${PYPI_USER}:${PYPI_TOKEN}", "$PYPI_USER:$PYPI_TOKEN")
    )  # as pipenv reads it too
    lock.check_pipfile_follows_the_answers(tmp_path, PYTHON)
    pipfile.write_text('[[source]]\nname = "pypi"\nurl = "https://pypi.example.net/simple"\n')
    with pytest.raises(lock.LockError) as refused:
        lock.check_pipfile_follows_the_answers(tmp_path, PYTHON)
    message = str(refused.value)
    assert "package index https://pkgs.example.org/simple (the package_index answer), which is no [[source]]" in message
    assert (
        "(https://pypi.example.net/simple)" in message and 'make reconfigure ANSWERS="package_index=<URL>"' in message
    )


def project_copy(default_project, tmp_path):
    copy = tmp_path / "project"
    for relative in ("Dockerfile", "source/Pipfile"):
        (copy / relative).parent.mkdir(parents=True, exist_ok=True)
        (copy / relative).write_bytes((default_project / relative).read_bytes())
    return copy


@pytest.mark.parametrize(
    "step, other",
    [
        ("install", f"name one with `make install PYTHON=/path/to/python{MINOR}`"),
        ("lock", "lock in the base image with `make lock-in-container`"),  # not for another Python
    ],
)
def test_without_the_projects_python_it_says_how_to_get_it(default_project, tmp_path, capsys, step, other):
    """No pythonX.Y on PATH or in pyenv: one message, exit 1, nothing made."""
    project = project_copy(default_project, tmp_path)
    nowhere = {"PATH": str(tmp_path), "PYENV_ROOT": str(tmp_path)}
    assert lock.main([step], project=project, environ=nowhere) == 1
    assert capsys.readouterr().err == (
        f"lock.py {step}: Python {MINOR} (source/Pipfile) is not on this machine (PATH, pyenv): `make doctor` says "
        f"how to install it; or {other}\n"
    )
    assert sorted(path.name for path in (project / "source").iterdir()) == ["Pipfile"]


def held_and_sent(signum):
    """For a child, before it runs its program: `signum` blocked, and sent, so it waits for the
    program to take it (as a Ctrl-C while update.py starts lock.py with the stop signals held)."""

    def hold():
        signal.pthread_sigmask(signal.SIG_BLOCK, {signum})
        os.kill(os.getpid(), signum)

    return hold


def test_a_stop_held_while_the_lock_program_starts_is_its_own_interruption_not_a_traceback(default_project, tmp_path):
    """A Ctrl-C while a Python starts up is the interpreter's traceback; update.py starts lock.py
    with the stop signals held, and lock.py takes one that came meanwhile once it can: its one
    message, nothing done (here, without it, it would go on and fail for want of Python)."""
    project = project_copy(default_project, tmp_path)
    (project / "scripts").mkdir()
    (project / "scripts" / "lock.py").write_bytes((default_project / "scripts" / "lock.py").read_bytes())
    result = subprocess.run(
        [sys.executable, project / "scripts" / "lock.py", "lock"],
        env={"PATH": str(tmp_path), "PYENV_ROOT": str(tmp_path)},
        preexec_fn=held_and_sent(signal.SIGINT),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (result.returncode, result.stderr) == (
        128 + signal.SIGINT,
        "lock.py lock: interrupted (SIGINT); nothing was changed: run it again\n",
    )
    assert sorted(path.name for path in (project / "source").iterdir()) == ["Pipfile"]


def test_a_failed_lock_puts_back_the_old_lock_and_keeps_a_venv_it_did_not_make(tmp_path):
    (tmp_path / "source" / ".venv").mkdir(parents=True)
    old = tmp_path / "source" / "Pipfile.lock"
    old.write_text('{"old": true}')
    guard = lock.Guard(tmp_path)
    old.write_text('{"half')
    guard.undo()
    assert old.read_text() == '{"old": true}' and (tmp_path / "source" / ".venv").is_dir()


def test_a_failed_first_lock_leaves_neither_lock_nor_venv(tmp_path):
    (tmp_path / "source").mkdir()
    guard = lock.Guard(tmp_path)
    (tmp_path / "source" / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / "source" / "Pipfile.lock").write_text("{}")
    guard.undo()
    assert list((tmp_path / "source").iterdir()) == []


# ---- pip's settings --------------------------------------------------------------------------


def test_pipenv_keeps_pips_network_settings_but_not_its_indexes():
    env = lock.pipenv_environment(
        {"PIP_INDEX_URL": PIP_INDEX, "PIP_FIND_LINKS": "/wheels", "VIRTUAL_ENV": "/venv", "PIP_CERT": "/mine.pem"},
        NETWORK,
    )
    assert env["PIP_CONFIG_FILE"] == os.devnull
    assert env["PIP_CERT"] == "/mine.pem"  # the environment wins over pip's files, as in pip
    assert env["PIP_PROXY"] == "http://proxy.example.com:3128"
    assert not {"PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "VIRTUAL_ENV"} & set(env)
    assert env["PIPENV_VENV_IN_PROJECT"] == "1"


def test_pipenv_gets_pips_certificate_for_its_own_requests():
    env = lock.pipenv_environment({}, NETWORK)
    assert env["PIP_CERT"] == env["REQUESTS_CA_BUNDLE"] == "/etc/pip/ca.pem"
    mine = lock.pipenv_environment({"REQUESTS_CA_BUNDLE": "/mine.pem"}, NETWORK)
    assert mine["REQUESTS_CA_BUNDLE"] == "/mine.pem"
    assert "REQUESTS_CA_BUNDLE" not in lock.pipenv_environment({}, {})


def test_pipenv_gets_a_private_temporary_directory_and_virtualenv_app_data(tmp_path):
    env = lock.pipenv_environment({"TMPDIR": "/tmp"}, {}, tmp_path)
    assert env["TMPDIR"] == env["TEMP"] == env["TMP"] == str(tmp_path)
    assert env["VIRTUALENV_OVERRIDE_APP_DATA"] == str(tmp_path / "virtualenv")
    assert env["VIRTUALENV_NO_PERIODIC_UPDATE"] == "1"


def test_pips_network_settings_are_what_pip_itself_lists_install_winning_over_global(tmp_path):
    """Read by the pinned pipenv's own pip (`pip config list`): its files, as pip finds them."""
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\nindex-url = https://mirror.example.com/simple\nproxy = http://proxy.example.com:3128\n"
        "cert = /etc/global.pem\n[install]\ncert = /etc/pip/ca.pem\nfind-links = /wheels\n"
    )
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)  # a Python with pip, as the pipenv venv is
    environ = {**os.environ, "PIP_CONFIG_FILE": str(config)}
    assert lock.pip_network_settings(venv, environ) == NETWORK


# ---- interpreters and pipenv -----------------------------------------------------------------


def test_interpreters_are_looked_for_in_pyenv_exactly_then_on_path_then_pyenvs_newest(tmp_path):
    """pyenv's shims on PATH are passed over: they are slow to fail where their version is not selected."""
    minor = "%d.%d" % sys.version_info[:2]
    versions, path = tmp_path / "pyenv" / "versions", tmp_path / "bin"
    for build in (f"{minor}.2", f"{minor}.13", f"{minor}.13t"):
        (versions / build / "bin").mkdir(parents=True)
        (versions / build / "bin" / f"python{minor}").symlink_to(sys.executable)
    (tmp_path / "pyenv" / "shims").mkdir()
    (tmp_path / "pyenv" / "shims" / f"python{minor}").symlink_to(sys.executable)
    environ = {"PYENV_ROOT": str(tmp_path / "pyenv"), "PATH": str(tmp_path / "pyenv" / "shims")}
    found = versions / f"{minor}.13" / "bin" / f"python{minor}"  # the newest build, not the shim, not 3.X.13t
    assert lock.find_python(minor, environ)[0] == found
    assert lock.find_python(f"{minor}.2", environ)[0] == versions / f"{minor}.2" / "bin" / f"python{minor}"
    path.mkdir()
    (path / f"python{minor}").symlink_to(sys.executable)
    environ["PATH"] += os.pathsep + str(path)
    assert lock.find_python(minor, environ)[0] == path / f"python{minor}"


def test_a_pyenv_build_is_found_without_python_on_path(tmp_path):
    """A pyenv machine has no pythonX.Y on PATH (its shims run only where selected)."""
    minor = "%d.%d" % sys.version_info[:2]
    versions = tmp_path / "pyenv" / "versions"
    for build in (f"{minor}.1", f"{minor}.4", f"{minor}.4t", "3.99.0"):
        (versions / build / "bin").mkdir(parents=True)
        (versions / build / "bin" / f"python{minor}").symlink_to(sys.executable)
    environ = {"PATH": str(tmp_path), "PYENV_ROOT": str(tmp_path / "pyenv")}
    found = lock.find_python(minor, environ)
    assert found == (versions / f"{minor}.4" / "bin" / f"python{minor}", "%d.%d.%d" % sys.version_info[:3])


def test_find_python_runs_the_interpreter_it_reports():
    minor = "%d.%d" % sys.version_info[:2]
    executable, version = lock.find_python(minor)
    assert version.startswith(minor + ".")
    assert lock.python_version(executable) == version
    assert lock.find_python("3.99") is None


# ---- pipenv, pinned with hashes ------------------------------------------------------------------

PINS = PIPENV_PINS


def pinned_requirements(text):
    """{requirement line: its hashes} of a pip requirements file in hash-checking form."""
    entries, current = {}, None
    for line in text.splitlines():
        if re.match(r"[A-Za-z0-9]", line):
            current = line.rstrip(" \\").strip()
            entries[current] = []
        elif line.strip().startswith("--hash=") and current:
            entries[current].append(line.strip().rstrip(" \\"))
    return entries


def test_old_pipenv_is_pinned_with_the_virtualenv_and_setuptools_it_needs():
    assert pipenv_requirements("2022.7.24") == ["pipenv==2022.7.24", "virtualenv==20.16.2", "setuptools<82"]
    assert pipenv_requirements("2026.10.3") == ["pipenv==2026.10.3"]


def test_the_default_pipenv_and_the_one_the_platform_documents_are_pinned():
    assert {DEFAULTS["pipenv_version"], "2022.7.24"} <= set(pinned_pipenvs())


@pytest.mark.parametrize("version", pinned_pipenvs())
def test_every_pipenv_the_template_names_is_pinned_with_hashes(version):
    """Each pinned pipenv's file (templates/pipenv/): every requirement in it pinned to one version (per Python: a marker) with the sha256 of its wheels, made from
    pipenv_requirements (its header says so)."""
    text = (PINS / f"{version}.txt").read_text()
    entries = pinned_requirements(text)
    assert f"pipenv=={version}" in entries
    assert f"made from `{' '.join(pipenv_requirements(version))}`" in text
    for requirement, hashes in entries.items():
        assert re.fullmatch(r"[a-z0-9-]+==[0-9][0-9a-z.]*( ; python_full_version [<>]=? '[0-9.]+')?", requirement)
        assert hashes and all(re.fullmatch(r"--hash=sha256:[0-9a-f]{64}", each) for each in hashes), requirement
    assert lock.pipenv_pins(PINS / f"{version}.txt", version) == text


def test_a_project_gets_the_pins_of_its_pipenv_or_a_file_that_says_there_are_none(bake, tmp_path):
    default = bake()
    pins = (default / "scripts" / "pipenv-requirements.txt").read_text()
    assert pins == (PINS / f"{DEFAULTS['pipenv_version']}.txt").read_text()
    # A project made before its pipenv had to be pinned (the pre-generation rule now refuses any
    # other), rendered as the file renders for it: it says so, and the lock program refuses it.
    text = unpinned_pipenv_file("2025.0.4")
    assert text.startswith("# No pipenv 2025.0.4 here: ") and "--hash" not in text
    # It names every pinned release (the files beside it), and the newest in the command.
    assert "\n# " + " ".join(pinned_pipenvs()) + "\n" in text
    assert f'ANSWERS="pipenv_version={pinned_pipenvs()[-1]}"' in text
    unpinned = tmp_path / "pipenv-requirements.txt"
    unpinned.write_text(text)
    with pytest.raises(lock.LockError, match=r"pins no pipenv 2025\.0\.4 with hashes, and pipenv is installed only"):
        lock.pipenv_pins(unpinned, "2025.0.4")


def test_the_cache_installs_pipenv_from_its_pins_with_hashes_only(tmp_path, monkeypatch):
    """Every pip step of the install checks hashes; a venv installed otherwise (before pins, or
    from other ones) is installed again."""
    steps = []

    def run_tool(args, what, env, timeout, cwd=None):
        steps.append([str(arg) for arg in args])
        if args[1:3] == ["-m", "venv"]:
            (Path(args[3]) / "bin").mkdir(parents=True)
        return subprocess.CompletedProcess(args, 0, "", "")

    monkeypatch.setattr(lock, "run_tool", run_tool)
    version, pins = DEFAULTS["pipenv_version"], PINS / f"{DEFAULTS['pipenv_version']}.txt"
    environ = {"XDG_CACHE_HOME": str(tmp_path)}
    venv = lock.ensure_pipenv(version, sys.executable, "3.13.1", environ, pins)
    pip = [step for step in steps if step[1:3] == ["-m", "pip"]]
    assert pip and all("--require-hashes" in step and "--only-binary=:all:" in step for step in pip)
    assert pip[0][-2:] == ["--requirement", str(pins)]
    assert lock.ensure_pipenv(version, sys.executable, "3.13.1", environ, pins) == venv and len(steps) == 2
    (venv / ".complete").write_text(f"pipenv=={version}\n")  # as lock.py marked it before pins
    lock.ensure_pipenv(version, sys.executable, "3.13.1", environ, pins)
    assert len(steps) == 4


def test_the_image_installs_pipenv_from_the_pins_with_hashes_only(default_project):
    dockerfile = (default_project / "Dockerfile").read_text()
    step = dockerfile.split("python3 -m venv /opt/pipenv;", 1)[1].split("python3 -m venv --without-pip", 1)[0]
    assert "pip install --quiet --require-hashes --only-binary=:all: -r /tmp/pipenv-requirements.txt" in step
    assert "pipenv==" not in step
    assert "source=scripts/pipenv-requirements.txt,target=/tmp/pipenv-requirements.txt" in dockerfile
    assert "!scripts/pipenv-requirements.txt" in (default_project / ".dockerignore").read_text().splitlines()


def test_the_pipenv_cache_honours_xdg_cache_home(tmp_path):
    path = lock.pipenv_venv_path("2026.10.3", "3.10.13", {"XDG_CACHE_HOME": str(tmp_path)}, Path("/nowhere"))
    assert path == tmp_path / "flask-appstack" / "pipenv-2026.10.3-py3.10"


def test_the_reason_of_a_failure_is_pips_error_line():
    output = (
        "Resolving...\n\x1b[31mERROR: No matching distribution found for flask\x1b[0m\nTraceback...\nValueError: x\n"
    )
    assert lock.last_error(output) == "ERROR: No matching distribution found for flask"


def test_a_cache_it_cannot_write_names_xdg_cache_home(tmp_path):
    error = PermissionError(13, "Permission denied", str(tmp_path / "flask-appstack"))
    reason = lock.os_error_reason(error, {"XDG_CACHE_HOME": str(tmp_path)})
    assert reason.endswith("; set XDG_CACHE_HOME to a directory you can write")


# ---- stopping: the tool's whole group ends, whatever stops the program ------------------------

# SIGTERM the moment the tool has started (before run_tool holds it): the tool must still end.
# Prints its own blocked signals first (whatever ran the suite may block some: `perf record`
# blocks SIGWINCH), then the tool's pid and its blocked signals, then how run_tool ended.
SIGTERM_AS_THE_TOOL_STARTS = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
from tools.project import lock_program

print([line for line in open("/proc/self/status").read().splitlines() if line.startswith("SigBlk:")][0], flush=True)

lock = lock_program()
signal.signal(signal.SIGTERM, lock.on_stop)
start = lock.start_tool


def start_then_sigterm(*args, **kwargs):
    process = start(*args, **kwargs)
    status = open(f"/proc/{process.pid}/status").read()
    print(process.pid, [line for line in status.splitlines() if line.startswith("SigBlk:")][0], flush=True)
    os.kill(os.getpid(), signal.SIGTERM)
    return process


lock.start_tool = start_then_sigterm
try:
    lock.run_tool(["sleep", "60"], "sleep", dict(os.environ), timeout=120)
except lock.Interrupted as stop:
    print("interrupted", stop.signum, flush=True)
"""


def test_sigterm_as_the_tool_starts_ends_the_tool_too():
    result = subprocess.run(
        [sys.executable, "-c", SIGTERM_AS_THE_TOOL_STARTS, str(REPO)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    callers, started, ended = result.stdout.split("\n")[:3]
    pid, blocked = started.split(" ", 1)
    alive = Path(f"/proc/{pid}").exists()
    if alive:
        os.kill(int(pid), signal.SIGKILL)
    assert not alive and ended == f"interrupted {int(signal.SIGTERM)}", result.stdout
    # The tool can be stopped: it blocks what its caller blocked before run_tool held the stop signals.
    assert blocked.split() == callers.split()
    mask = int(blocked.split()[1], 16)
    assert [signum for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP) if mask & 1 << signum - 1] == []


# The lock program's first tool, its handlers in place as in main(); then the watcher's blocked signals.
WATCHER_AFTER_A_TOOL = """
import os, signal, sys, time
sys.path.insert(0, sys.argv[1])
from tools.project import lock_program

lock = lock_program()
for each in lock.STOP_SIGNALS:
    signal.signal(each, lock.on_stop)
lock.run_tool([sys.executable, "-c", "pass"], "python", dict(os.environ), timeout=60)
deadline = time.monotonic() + 10  # until it has started its own code
while time.monotonic() < deadline:
    status = open(f"/proc/{lock.Watcher.process.pid}/status").read()
    blocked = [line for line in status.splitlines() if line.startswith("SigBlk:")][0]
    if blocked.split()[1] == "0000000000000000":
        break
    time.sleep(0.05)
print(blocked, flush=True)
"""


def test_the_watcher_can_be_stopped_although_it_starts_while_a_tool_starts():
    """run_tool holds the stop signals while it starts a tool and tells the watcher of it (the
    watcher's first start); the watcher does not keep them held (a `kill` must end it)."""
    result = subprocess.run(
        [sys.executable, "-c", WATCHER_AFTER_A_TOOL, str(REPO)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["SigBlk:", "0000000000000000"]


# The lock program's stand-in: runs a tool that sleeps, in a session of its own, as lock.py runs
# pipenv; prints the tool's pid and how it ended.
ORPHAN = """
import os, sys
sys.path.insert(0, sys.argv[1])
from tools.project import lock_program

lock = lock_program()
lock.PARENT = os.getppid()
sleeper = [sys.executable, "-c", "import os, time; print(os.getpid(), flush=True); time.sleep(60)"]
try:
    lock.run_tool(sleeper, "sleeper", dict(os.environ), timeout=120)
except lock.Interrupted as stop:
    print("interrupted", stop.signum, flush=True)
"""
# Its parent, as cookiecutter or make killed alone: starts it, and is gone before it ends.
PARENT = """
import subprocess, sys, time
subprocess.Popen([sys.executable, sys.argv[1], sys.argv[2]], stdout=open(sys.argv[3], "w"))
time.sleep(1)
"""


def test_a_program_whose_caller_is_gone_ends_its_tool(tmp_path):
    (tmp_path / "orphan.py").write_text(ORPHAN)
    out = tmp_path / "out"
    subprocess.run([sys.executable, "-c", PARENT, str(tmp_path / "orphan.py"), str(REPO), str(out)], check=True)
    deadline = time.monotonic() + 30
    while "interrupted" not in out.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert out.read_text().splitlines()[-1] == f"interrupted {int(signal.SIGHUP)}", out.read_text()


def test_the_image_builds_with_the_same_rule_for_pips_settings(default_project):
    """The Dockerfile's pipenv step (it runs without lock.py, in the base image) keeps out every
    index setting the build can receive, and pip's configuration files, as lock.py does."""
    dockerfile = (default_project / "Dockerfile").read_text()
    build_args = {line.split()[1].split("=")[0] for line in dockerfile.splitlines() if line.startswith("ARG ")}
    step = dockerfile.split("env -u", 1)[1].split("pipenv install", 1)[0]
    unset = set(re.findall(r"-u (\w+)", "-u" + step))
    assert build_args & set(lock.INDEX_VARIABLES) <= unset
    assert "PIP_CONFIG_FILE=/dev/null" in step


# A program killed outright (SIGKILL: nothing of it runs any more) with a tool running in a
# private folder: the tool started a child of its own (as pipenv starts its resolver), in its
# group, which no parent-death signal reaches.
KILLED_OUTRIGHT = """
import os, sys
sys.path.insert(0, sys.argv[1])
from tools.project import lock_program

lock = lock_program()
child = "import os, subprocess, sys, time; subprocess.Popen(['sleep', '60']); time.sleep(60)"
with lock.private_folder("killed-outright-") as folder:
    (folder / "pipenv-netrc").write_text("machine index login user password token")
    print(folder, flush=True)
    lock.run_tool([sys.executable, "-c", child], "tool", dict(os.environ), timeout=120)
"""


def test_a_program_killed_outright_leaves_no_tool_no_child_of_it_and_no_private_folder(tmp_path):
    program = subprocess.Popen(
        [sys.executable, "-c", KILLED_OUTRIGHT, str(REPO)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    folder = Path(program.stdout.readline().strip())
    deadline = time.monotonic() + 30
    while len(tool_processes(program.pid)) < 2:  # the tool and its child
        assert time.monotonic() < deadline and program.poll() is None
        time.sleep(0.05)
    tools = tool_processes(program.pid)
    assert folder.is_dir()
    os.killpg(program.pid, signal.SIGKILL)  # the program's own group: its tool has a session of its own
    program.wait()
    deadline = time.monotonic() + 15
    while (alive(tools) or folder.exists()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert alive(tools) == [] and not folder.exists()


def tool_processes(parent):
    """The processes of the group whose leader `parent` started (the tool's)."""
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text().split()
    groups = {int(pid) for pid in children if os.getpgid(int(pid)) == int(pid)}
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getpgid(int(entry.name)) in groups:
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def alive(pids):
    """Those of `pids` still running (a zombie has ended)."""
    running = []
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                running.append(pid)
        except OSError:
            pass
    return running


# ---- why a step failed: each cause said as what it is, with its fix ---------------------------

PIP_HASH_MISMATCH = """\
Collecting blinker==1.9.0 (from -r /tmp/x/pipenv-hashed-reqs.txt (line 1))
ERROR: THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE. If you have updated the package versions, \
please update the hashes. Otherwise, examine the package contents carefully; someone
may have tampered with them.
    blinker==1.9.0 from http://127.0.0.1:1/files/blinker-1.9.0-py3-none-any.whl#sha256=ba0e (from -r /tmp/x (line 1)):
        Expected sha256 0000000000000000000000000000000000000000000000000000000000000000
             Got        ba0efaa9080b619ff2f3459d1d500c57bddea4a6b424b60a91141db6fd2f08bc
ERROR: Couldn't install package(s): blinker==1.9.0 --hash=sha256:0000, click==8.5.1 --hash=sha256:8bb5
"""


def test_a_hash_mismatch_names_the_package_and_the_fix():
    reason = lock.hash_mismatch(PIP_HASH_MISMATCH)
    assert reason.startswith("blinker==1.9.0: the file the package index serves does not match its hash in ")
    assert "git checkout source/Pipfile.lock" in reason and "\n" not in reason
    assert lock.hash_mismatch("ERROR: Couldn't install package(s): blinker==1.9.0") == ""


@pytest.fixture
def refusing_index(tmp_path):
    """The URL of an index on 127.0.0.1 that answers every request with HTTP 401, and the
    Authorization headers it got."""
    import threading
    from http.server import BaseHTTPRequestHandler, HTTPServer

    seen = []

    class Refusing(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.headers.get("Authorization"))
            self.send_response(401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Refusing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("credentials", ["${PYPI_USER}:${PYPI_TOKEN}@", ""], ids=["with", "without"])
def test_an_index_refusing_the_credentials_is_the_reason_with_its_fix(tmp_path, refusing_index, credentials):
    host, seen = refusing_index
    (tmp_path / "source").mkdir()
    (tmp_path / "source" / "Pipfile").write_text(f'[[source]]\nname = "a"\nurl = "http://{credentials}{host}/simple"\n')
    environ = {"PYPI_USER": "team-user", "PYPI_TOKEN": "s3cret"}
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found for flask<4,>=3.1\n")
    message = lock.failure("pipenv lock", failed, tmp_path, environ)
    assert message.startswith(f"pipenv lock failed: the package index http://{host}/simple refused ")
    assert "HTTP 401 Unauthorized" in message and "\n" not in message and "s3cret" not in message
    if credentials:
        assert "generate a new identity token" in message
        assert seen == ["Basic dGVhbS11c2VyOnMzY3JldA=="]  # the Pipfile's credentials, expanded as pipenv does
    else:
        assert "${PYPI_USER}:${PYPI_TOKEN}@" in message and seen == [None]


def test_unset_credentials_and_an_index_nobody_answers_at_stay_hints(tmp_path):
    (tmp_path / "source").mkdir()
    url = "http://${PYPI_USER}:${PYPI_TOKEN}@127.0.0.1:9/simple"  # the discard port: nothing listens
    (tmp_path / "source" / "Pipfile").write_text(f'[[source]]\nname = "a"\nurl = "{url}"\n')
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: No matching distribution found for flask\n")
    message = lock.failure("pipenv lock", failed, tmp_path, {"PYPI_USER": "me"}).splitlines()
    assert message == [
        "pipenv lock failed: ERROR: No matching distribution found for flask",
        "  Hint: http://127.0.0.1:9/simple takes its credentials from PYPI_USER and PYPI_TOKEN: set PYPI_TOKEN",
        message[2],
    ]
    assert message[2].startswith("  Hint: http://127.0.0.1:9/simple cannot be reached (")
