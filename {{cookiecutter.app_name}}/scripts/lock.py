"""The project's lock runner: pipenv as the image build runs it, for this project.

    python3 scripts/lock.py lock                  lock source/Pipfile into source/Pipfile.lock
    python3 scripts/lock.py install [--python P]  pipenv install --dev --deploy into source/.venv

`make lock`, `make install`, `make update` and the template's post-generation hook call it; it
ships with the template (releases update it), so a fix of the lock reaches every project.
Standard library only, Python 3.9 or newer, Linux and macOS: it runs before anything is installed.

- The Python is source/Pipfile's [requires]; the pipenv is the Dockerfile's `ARG PIPENV_VERSION=`,
  since the image build must accept the lock (`pipenv install --deploy`). That pipenv is
  installed once, from scripts/pipenv-requirements.txt with hashes, into
  ${XDG_CACHE_HOME:-~/.cache}/flask-appstack/pipenv-<version>-py<X.Y>.
- pip's settings of how to reach an index reach pipenv (its `pip config list`); which index to
  use does not (NETWORK_SETTINGS, INDEX_VARIABLES): the Pipfile's [[source]] says that.
- pipenv runs in a session of its own with a private temporary folder (its files there hold the
  index URL with PYPI_USER and PYPI_TOKEN expanded), ended whole on a time limit
  (APPSTACK_LOCK_TIMEOUT seconds), a stop signal, or when whoever started this program is gone;
  then source/.venv goes when the step made it, and Pipfile.lock is put back as it was. Killed
  outright (SIGKILL), pipenv dies with it (Linux's parent-death signal), and a watcher ends
  pipenv's group (its resolver) and removes the private folder.

Exit status: 0 done; 1 with one message (stderr) that names the cause and the fix; 128 + N
after signal N.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROGRAM = "lock.py"
TIME_LIMIT = 900  # seconds for each step; a resolver that needs longer is stuck on the network
TIME_LIMIT_VARIABLE = "APPSTACK_LOCK_TIMEOUT"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
# pipenv and every package it needs, pinned with hashes: the only pipenv this program and the
# image install, since both install it where the token is.
PINS = "scripts/pipenv-requirements.txt"

# How to reach an index reaches pipenv; which index to use does not: pipenv would count pip's
# index settings as sources of a Pipfile without [[source]], so the lock's hash would change,
# and the image, which builds without them, would refuse the lock (--deploy).
NETWORK_SETTINGS = ("cert", "client-cert", "proxy", "trusted-host", "timeout", "default-timeout", "retries")
INDEX_VARIABLES = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIPENV_PYPI_MIRROR",
    "PIP_CONFIG_FILE",
)


class LockError(Exception):
    """A lock or install that could not be made; the message says why and what to do."""


class Interrupted(Exception):
    """A stop signal, or the program that started this one is gone."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


# ---- the project ------------------------------------------------------------------------


def project_python_version(project):
    """X.Y (or X.Y.Z) of source/Pipfile's [requires]: python_full_version, else python_version."""
    text = (project / "source" / "Pipfile").read_text(encoding="utf-8")
    requires = re.search(r"^\[requires\][ \t]*\n(.*?)(?=^\[|\Z)", text, flags=re.MULTILINE | re.DOTALL)
    found = dict(re.findall(r'^(python_(?:full_)?version)\s*=\s*"([0-9.]+)"', requires[1] if requires else "", re.M))
    version = found.get("python_full_version") or found.get("python_version")
    if not version:
        raise LockError('source/Pipfile has no [requires] python_version: add one, e.g. python_version = "3.13"')
    return version


def dockerfile_arg(project, name):
    """The default of the Dockerfile's `ARG <name>=<value>` ("" for none), or None without the line."""
    found = re.search(rf"^ARG {name}=(\S*)\s*$", (project / "Dockerfile").read_text(encoding="utf-8"), re.MULTILINE)
    return found[1] if found else None


def project_pipenv_version(project):
    """The pipenv the image installs: the Dockerfile's `ARG PIPENV_VERSION=<version>`."""
    version = dockerfile_arg(project, "PIPENV_VERSION")
    if not version:
        raise LockError(
            f"{project / 'Dockerfile'} has no `ARG PIPENV_VERSION=<version>` line: put it back (make update)"
        )
    return version


def pipfile_sources(project):
    """[(url, url without credentials)] of source/Pipfile's [[source]] entries."""
    pipfile = (project / "source" / "Pipfile").read_text(encoding="utf-8")
    return [
        (url, re.sub(r"//[^/@]*@", "//", url)) for url in re.findall(r'^url\s*=\s*"([^"]+)"', pipfile, re.MULTILINE)
    ]


def check_pipfile_follows_the_answers(project, python):
    """source/Pipfile is the team's file; the Dockerfile and the pipeline are the template's,
    rendered from the answers. What both state must agree, or the image would refuse the lock or
    build from an index the lock does not name: the Pipfile's Python (`python`) is the base
    image's, and the Dockerfile's PACKAGE_INDEX (pipenv comes from it, with the token) is one of
    the Pipfile's sources. The one place to change either is the answer, which renders both."""
    image = re.search(r"python:([0-9]+\.[0-9]+)", dockerfile_arg(project, "BASE_IMAGE") or "")
    if image and image[1] != minor_version(python):
        raise LockError(
            f"source/Pipfile's [requires] says Python {python}, but the Dockerfile's base image is Python "
            f"{image[1]} (the python_version answer, which azure-pipelines.yaml's flask.python follows too): the "
            f'image would refuse this lock. Move the project with `make reconfigure ANSWERS="python_version={python}"` '
            f"(it changes all three), or put {image[1]} back in source/Pipfile"
        )
    index, sources = dockerfile_arg(project, "PACKAGE_INDEX"), [plain for _, plain in pipfile_sources(project)]
    if index and index not in sources:
        raise LockError(
            f"the Dockerfile installs from the package index {index} (the package_index answer), which is no "
            f"[[source]] of source/Pipfile ({', '.join(sources) or 'none'}): the image would build from an index "
            f'the lock does not name. Change the index with `make reconfigure ANSWERS="package_index=<URL>"` (it '
            "changes both), or put its [[source]] back in source/Pipfile"
        )


# ---- the project's Python ---------------------------------------------------------------


def minor_version(version):
    """X.Y of a version X.Y or X.Y.Z."""
    return ".".join(version.split(".")[:2])


def python_version(executable):
    """The X.Y.Z an executable reports, or None when it does not run."""
    try:
        result = subprocess.run(
            [str(executable), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    output = result.stdout.strip()
    return output if result.returncode == 0 and re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", output) else None


def find_python(version, environ=os.environ, home=None):
    """(executable, X.Y.Z) of Python `version` (X.Y or X.Y.Z), or None: pyenv's exact X.Y.Z,
    then pythonX.Y on PATH (CI runners' setup steps put theirs there; pyenv's shims are left
    out, as they fail slowly where their version is not selected), then pyenv's newest X.Y.Z."""
    minor = minor_version(version)
    versions = Path(environ.get("PYENV_ROOT") or Path(home or Path.home()) / ".pyenv") / "versions"
    patch = re.compile(rf"{re.escape(minor)}\.([0-9]+)")
    builds = sorted(
        (p for p in versions.glob(f"{minor}.*") if patch.fullmatch(p.name)),
        key=lambda p: -int(p.name[len(minor) + 1 :]),
    )
    candidates = [versions / version / "bin" / f"python{minor}"] if version.count(".") == 2 else []
    candidates += [
        Path(d) / f"python{minor}" for d in environ.get("PATH", "").split(os.pathsep) if d and Path(d).name != "shims"
    ]
    candidates += [build / "bin" / f"python{minor}" for build in builds]
    for candidate in dict.fromkeys(candidates):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            reported = python_version(candidate)
            if reported and minor_version(reported) == minor:
                return candidate, reported
    return None


def missing_python(version, step):
    minor = minor_version(version)
    other = {
        "install": f"name one with `make install PYTHON=/path/to/python{minor}`",
        "lock": "lock in the base image with `make lock-in-container`",
    }[step]
    where = f"Python {minor} (source/Pipfile) is not on this machine (PATH, pyenv)"
    return f"{where}: `make doctor` says how to install it; or {other}"


# ---- running a tool: bounded, stoppable, leaving nothing behind ---------------------------

PARENT = os.getppid()  # when it changes, whoever ran this program (make, the hook) is gone


def on_stop(signum, frame):
    """A stop signal: once. The cleanup that follows must finish, so further ones are ignored."""
    for each in STOP_SIGNALS:
        signal.signal(each, signal.SIG_IGN)
    raise Interrupted(signum)


def hold_stop_signals():
    """Block the stop signals until restore_signals; returns the mask to restore."""
    return signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))


def restore_signals(mask):
    """Unblock what hold_stop_signals blocked: a signal that came meanwhile arrives now."""
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def time_limit(environ):
    value = environ.get(TIME_LIMIT_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) > 0 else TIME_LIMIT


def signal_group(pgid, sig):
    """Send `sig` to a process group; False when nothing of it is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def end_process_group(process):
    """End a tool and everything it started (resolvers): SIGTERM, 5 s of grace, SIGKILL for
    whatever is left of its group, then wait (5 s at most) until the group is gone."""
    signal_group(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    signal_group(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 5
    while signal_group(process.pid, 0) and time.monotonic() < deadline:
        time.sleep(0.05)


# The watcher: a small process in a session of its own that reads, from a pipe, the groups to
# end and the folders to remove should this program be killed outright; when the pipe closes
# with some not done (this program has ended, however), it ends and removes them.
WATCHER_SOURCE = """
import json, os, shutil, signal, sys, time
signal.pthread_sigmask(signal.SIG_SETMASK, [])  # it starts while run_tool holds the stop signals
groups, folders = set(), set()
for line in sys.stdin:
    verb, what = json.loads(line)
    {"group": groups.add, "ended": groups.discard, "folder": folders.add, "removed": folders.discard}[verb](what)
for group in groups:
    try:
        os.killpg(group, signal.SIGKILL)
    except OSError:
        pass
deadline = time.monotonic() + 10
for group in groups:
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)
        except OSError:
            break
        time.sleep(0.05)
for folder in folders:
    shutil.rmtree(folder, ignore_errors=True)
"""


class Watcher:
    """The one watcher of this program, started with its first tool or private folder."""

    process = None

    @classmethod
    def tell(cls, verb, what):
        """`group <pgid>` to end, `ended <pgid>`; `folder <path>` to remove, `removed <path>`."""
        if cls.process is None:
            cls.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHER_SOURCE],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                text=True,
                start_new_session=True,  # neither Ctrl-C nor a SIGKILL of this program's group reaches it
            )
        with contextlib.suppress(OSError, ValueError):  # it has gone: nothing is left to watch
            cls.process.stdin.write(json.dumps([verb, what]) + "\n")
            cls.process.stdin.flush()


@contextlib.contextmanager
def private_folder(prefix):
    """A temporary folder only this user can read, removed afterwards, however this program ends."""
    folder = tempfile.mkdtemp(prefix=prefix)
    Watcher.tell("folder", folder)
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        Watcher.tell("removed", folder)


def prctl():
    """libc's prctl on Linux, found before any tool starts (a child must not load libraries), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None


PRCTL, PR_SET_PDEATHSIG = prctl(), 1


def start_tool(args, env, cwd=None, signal_mask=None):
    """Start a tool in a session of its own (its group holds whatever it starts), no input, its
    output captured, with `signal_mask` (restore_signals's argument). On Linux it gets SIGKILL
    when this program dies, even before the watcher knows of it (at once, when this program
    died before that was set)."""
    parent = os.getpid()

    def in_the_tool():
        if PRCTL is not None and PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0 and os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)
        if signal_mask is not None:
            restore_signals(signal_mask)

    return subprocess.Popen(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        errors="backslashreplace",
        start_new_session=True,
        preexec_fn=in_the_tool,
    )


def run_tool(args, what, env, timeout, cwd=None):
    """Run a tool within `timeout` seconds. On the time limit, a stop signal or its caller gone,
    its whole process group ends; the time limit is a LockError that says so. A stop signal
    while it starts is held back until its process is known (else it would be left running)."""
    held = hold_stop_signals()
    try:
        process = start_tool(args, env, cwd=cwd, signal_mask=held)
    except BaseException:
        restore_signals(held)
        raise
    Watcher.tell("group", process.pid)
    deadline = time.monotonic() + timeout
    try:
        restore_signals(held)  # a signal held meanwhile arrives here, where the tool is ended
        while True:
            try:
                stdout, stderr = process.communicate(timeout=max(0.01, min(0.5, deadline - time.monotonic())))
                break
            except subprocess.TimeoutExpired:
                if time.monotonic() >= deadline:
                    raise LockError(
                        f"{what} gave no result within {timeout} s: the package index did not answer in time "
                        f"(check the network, the proxy and the index URL; {TIME_LIMIT_VARIABLE} sets the limit)"
                    ) from None
                if os.getppid() != PARENT:
                    raise Interrupted(signal.SIGHUP) from None
    except BaseException:
        end_process_group(process)
        raise
    finally:
        Watcher.tell("ended", process.pid)
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


# ---- why a step failed --------------------------------------------------------------------

LOW_SPACE = 64 * 2**20  # less free space than this where a tool failed: the full disk was why


def os_error_reason(error, environ):
    """One sentence for an OSError: what could not be done, and the fix."""
    where = str(error.filename or "a file")
    if error.errno == errno.ENOSPC:
        return f"no space left on device while writing {where}: free some space there and try again"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR):
        if where.startswith(str(cache_root(environ))):
            fix = "set XDG_CACHE_HOME to a directory you can write"
        elif where.startswith(tempfile.gettempdir()):
            fix = "set TMPDIR to a directory you can write"
        else:
            fix = "check that directory's owner and permissions"
        return f"cannot write {where}: {error.strerror}; {fix}"
    return f"{where}: {error.strerror}"


def tool_failure(output, where):
    """Why a tool that wrote into `where` failed: a full disk said plainly (raised: it is the
    whole message), else the tool's last error line."""
    try:
        full = shutil.disk_usage(where).free < LOW_SPACE
    except OSError:
        full = False
    if full or "No space left on device" in output or "[Errno 28]" in output:
        raise LockError(f"no space left on device in {where}: free some space there and try again")
    return last_error(output)


def last_error(output):
    """The most telling line of a tool's output: its last ERROR line, else its last line."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    errors = errors or [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1]


def hash_mismatch(output, where="source/Pipfile.lock"):
    """What happened and the fix when pip found a file that does not match its hash in
    `where` (pipenv itself says only that it could not install it); else ""."""
    if "DO NOT MATCH THE HASHES" not in output:
        return ""
    after = output.split("DO NOT MATCH THE HASHES", 1)[1]
    packages = list(dict.fromkeys(re.findall(r"^\s+([A-Za-z0-9._-]+==[^\s;]+) from ", after, flags=re.MULTILINE)))
    what = f"{', '.join(packages) or 'a package'}: the file the package index serves does not match its hash in {where}"
    if where != "source/Pipfile.lock":  # the template's pins: nothing to re-make here
        return (
            f"{what} (the file was edited, or the index serves another file under that version than the one the "
            f"template pinned): put it back (`git checkout {where}`), or ask who runs the index; never copy the "
            "index's hash into it"
        )
    return (
        f"{what} (Pipfile.lock was edited, or the index now serves another file under that version): put "
        "Pipfile.lock back (`git checkout source/Pipfile.lock`), or ask who runs the index before you re-lock "
        "(`make lock`) and commit the changed hash"
    )


def index_problems(project, environ, network):
    """What the Pipfile's indexes answer when asked as pipenv asks them, with the credentials of
    their URLs: [(kind, sentence)]. "refused": HTTP 401 or 403 (pip says only that nothing
    matched); "hint": credentials unset, or no answer."""
    import base64
    import ssl
    import urllib.error
    import urllib.parse
    import urllib.request

    cert = {**network, **environ}.get("PIP_CERT")
    context = ssl.create_default_context(cafile=cert) if cert and Path(cert).is_file() else None
    problems = []
    for url, plain in pipfile_sources(project):
        wants = re.findall(r"\$\{?(\w+)", url.split("//", 1)[-1].split("/", 1)[0])
        unset = [name for name in wants if not environ.get(name)]
        if unset:
            problems.append(
                ("hint", f"{plain} takes its credentials from {' and '.join(wants)}: set {' and '.join(unset)}")
            )
        # $VAR and ${VAR} expanded as pipenv expands a [[source]] URL (unset: kept)
        expanded = re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda found: environ.get(found[1] or found[2], found[0]), url)
        parts = urllib.parse.urlsplit(expanded)
        request = urllib.request.Request(plain)
        if parts.username is not None:
            user, password = (urllib.parse.unquote(part or "") for part in (parts.username, parts.password))
            basic = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_unredirected_header("Authorization", f"Basic {basic}")  # for this host only
        try:
            # The Pipfile's own index, an http(s) URL: B310 is moot.
            urllib.request.urlopen(request, timeout=10, context=context).close()  # nosec B310
        except urllib.error.HTTPError as error:
            if error.code in (401, 403) and not unset:
                problems.append(("refused", refusal(plain, error.code, parts.username is not None)))
        except (urllib.error.URLError, OSError, ValueError) as error:
            problems.append(("hint", f"{plain} cannot be reached ({getattr(error, 'reason', error)})"))
    return problems


def refusal(url, code, with_credentials):
    """One sentence for an index that answered `code` (401, 403): what happened, the fix."""
    status = f"HTTP {code} {'Unauthorized' if code == 401 else 'Forbidden'}"
    if not with_credentials:
        return (
            f"the package index {url} refused a request without credentials ({status}), and source/Pipfile's "
            "[[source]] URL holds none: write it as https://${PYPI_USER}:${PYPI_TOKEN}@<host>/<path> "
            '(docs/local-development.md, "Artifactory token")'
        )
    return (
        f"the package index {url} refused the credentials ({status}): the token (PYPI_TOKEN) is wrong, expired "
        "or revoked, or PYPI_USER is not the user it belongs to, or that user may not read the index; generate "
        'a new identity token (docs/local-development.md, "Artifactory token") and try again'
    )


def failure(what, result, project, environ, network=None):
    """The message of a failed pipenv step: its reason (an index refusing the credentials said
    as such), then what the indexes say (hints)."""
    output = result.stdout + result.stderr
    reason = tool_failure(output, project / "source")
    problems = index_problems(project, environ, network or {})
    refused = [sentence for kind, sentence in problems if kind == "refused"]
    hints = [f"  Hint: {sentence}" for kind, sentence in problems if kind == "hint"]
    return "\n".join([f"{what} failed: {hash_mismatch(output) or (refused or [reason])[0]}", *hints])


# ---- pipenv, installed once into the cache --------------------------------------------------


def cache_root(environ=os.environ, home=None):
    return Path(environ.get("XDG_CACHE_HOME") or Path(home or Path.home()) / ".cache") / "flask-appstack"


def pipenv_venv_path(version, python_version, environ=os.environ, home=None):
    return cache_root(environ, home) / f"pipenv-{version}-py{minor_version(python_version)}"


def venv_python(venv):
    return venv / "bin" / "python"


@contextlib.contextmanager
def exclusive(path):
    """An exclusive lock on the file `path` while a cached venv is built: parallel runs wait."""
    import fcntl

    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)  # released when the file closes
        yield


def pipenv_pins(path, version):
    """The text of the pins file at `path`, which must pin pipenv `version` with hashes."""
    text = Path(path).read_text(encoding="utf-8")
    if not re.search(rf"^pipenv=={re.escape(version)}[ ;\\]", text, flags=re.MULTILINE) or "--hash=" not in text:
        raise LockError(
            f"{PINS} pins no pipenv {version} with hashes, and pipenv is installed only from it: its first lines "
            "say which pipenv versions this template release pins; make the Dockerfile's PIPENV_VERSION one of "
            'them with `make reconfigure ANSWERS="pipenv_version=<version>"`'
        )
    return text


def venv_once(venv, marker, python, requirements, environ, announce, pins=None):
    """The venv at `venv`, made by `python` with pip's `requirements` (install's arguments) in it:
    built once under an exclusive lock (parallel runs wait for it), never half-built, marked
    complete with `marker`, then used as it is, even from a read-only cache; a venv marked
    otherwise (other requirements) is built again. `announce`: the line said before a build;
    `pins`: the requirements file, named in a hash mismatch."""

    def complete():
        with contextlib.suppress(OSError):
            return (venv / ".complete").read_text(encoding="utf-8") == marker
        return False

    if complete():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with exclusive(venv.parent / f"{venv.name}.lock"):
        if complete():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        with contextlib.suppress(OSError):  # a terminal that is gone costs nothing but the line
            print(announce, flush=True)
        pip = [venv_python(venv), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements]
        try:
            for step in ([python, "-m", "venv", venv], pip):
                what = f"`{' '.join(map(str, step[1:3]))} ...` with {python}"
                result = run_tool(step, what, environ, time_limit(environ))
                if result.returncode != 0:
                    output = result.stdout + result.stderr
                    reason = tool_failure(output, venv.parent)
                    raise LockError(f"{what} failed: {(pins and hash_mismatch(output, pins)) or reason}")
            (venv / ".complete").write_text(marker, encoding="utf-8")
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)
            raise
    return venv


def ensure_pipenv(version, python, python_version, environ=os.environ, pins=None):
    """The venv in which `python` runs pipenv `version`, installed once into the cache from
    `pins` (default: the pins file beside this program), with hashes and wheels only."""
    pins = Path(pins or Path(__file__).with_name(Path(PINS).name))
    # What .complete holds: a venv installed otherwise (before pins, or from other ones) is installed again.
    marker = f"pipenv {version} from pins sha256:{hashlib.sha256(pipenv_pins(pins, version).encode()).hexdigest()}\n"
    venv = pipenv_venv_path(version, python_version, environ)
    announce = (
        f"{PROGRAM}: installing pipenv {version} for Python {python_version} into {venv} "
        f"(once; at most {time_limit(environ)} s) ..."
    )
    requirements = ["--require-hashes", "--only-binary=:all:", "--requirement", pins]
    return venv_once(venv, marker, python, requirements, environ, announce, PINS)


def pip_network_settings(venv, environ):
    """pip's network settings from its configuration files, as PIP_* variables: what the
    pinned pipenv's own pip lists (`pip config list`), [install] winning over [global]."""
    listed = run_tool([venv_python(venv), "-m", "pip", "config", "list"], "`pip config list`", environ, 60).stdout
    settings = {}
    for scope in ("global", "install"):
        for key, quoted in re.findall(rf"^{scope}\.([a-z-]+)=(.*)$", listed, flags=re.MULTILINE):
            if key in NETWORK_SETTINGS:
                settings["PIP_" + key.upper().replace("-", "_")] = quoted[1:-1]  # pip prints repr(value)
    return settings


def pipenv_environment(environ, network=None, temp_dir=None, app_data=None):
    """pipenv's environment: the project's venv in source/.venv; no prompts, colours, spinners,
    .env files, active venv or pyenv installs; pip's `network` settings (PIP_* variables) but
    not its index settings; `temp_dir`: its private temporary folder; `app_data`: virtualenv's."""
    dropped = ("VIRTUAL_ENV", "PIPENV_PIPFILE", "PIPENV_PYTHON", "PIPENV_CUSTOM_VENV_NAME", "PIPENV_ACTIVE")
    dropped += ("PYTHONHOME", "PYTHONPATH", *INDEX_VARIABLES)
    env = {**(network or {}), **{k: v for k, v in environ.items() if k not in dropped}}  # the environment wins
    if env.get("PIP_CERT") and not (env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")):
        env["REQUESTS_CA_BUNDLE"] = env["PIP_CERT"]  # pipenv's own HTTP client reads no pip setting
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIPENV_VENV_IN_PROJECT="1",
        PIPENV_IGNORE_VIRTUALENVS="1",
        PIPENV_YES="1",
        PIPENV_NOSPIN="1",
        PIPENV_DONT_USE_PYENV="1",
        PIPENV_DONT_USE_ASDF="1",
        PIPENV_DONT_LOAD_ENV="1",
        PIPENV_HIDE_EMOJIS="1",
        PIPENV_COLORBLIND="1",
        NO_COLOR="1",
        TERM="dumb",
        COLUMNS="200",
        PYTHONDONTWRITEBYTECODE="1",
    )
    if temp_dir:
        env.update(TMPDIR=str(temp_dir), TEMP=str(temp_dir), TMP=str(temp_dir))
        # virtualenv seeds venvs from a shared app-data folder that any newer virtualenv on the
        # machine updates: pipenv 2022 then gets a setuptools without pkg_resources. A private one.
        env.update(VIRTUALENV_OVERRIDE_APP_DATA=str(app_data or Path(temp_dir) / "virtualenv"))
        env.update(VIRTUALENV_NO_PERIODIC_UPDATE="1")
    return env


def run_pipenv(venv, args, project, environ, network):
    """pipenv `args` in source/, in a private temporary folder removed afterwards."""
    with private_folder("flask-appstack-pipenv-") as temp_dir:
        # virtualenv's app-data beside the pipenv it belongs to, unpacked once rather than at
        # every lock; in the private folder when the cache is read-only.
        app_data = venv / "virtualenv-app-data"
        writable = os.access(app_data if app_data.is_dir() else venv, os.W_OK)
        env = pipenv_environment(environ, network, temp_dir, app_data if writable else None)
        what = f"`pipenv {' '.join(map(str, args))}`"
        return run_tool([venv_python(venv), "-m", "pipenv", *args], what, env, time_limit(environ), project / "source")


# ---- the commands -----------------------------------------------------------------------


def say(line):
    """A line of progress; a terminal that is gone (SIGHUP) costs nothing but the line."""
    with contextlib.suppress(OSError):
        print(f"{PROGRAM}: {line}", flush=True)


class Guard:
    """What a lock or install leaves when it fails or is interrupted: source/.venv removed
    when it made it; Pipfile.lock as it was before."""

    def __init__(self, project):
        self.venv, self.lock = project / "source" / ".venv", project / "source" / "Pipfile.lock"
        self.venv_was_there = self.venv.exists()
        self.lock_before = self.lock.read_bytes() if self.lock.is_file() else None

    def undo(self):
        if not self.venv_was_there:
            shutil.rmtree(self.venv, ignore_errors=True)
        if self.lock_before is None:
            self.lock.unlink(missing_ok=True)
        elif not self.lock.is_file() or self.lock.read_bytes() != self.lock_before:
            self.lock.write_bytes(self.lock_before)


def pipenv_step(project, environ, python, args, saying):
    """Run pipenv `args` (`--python` added) with the project's pipenv on `python`, or on the
    Pipfile's Python; undone (Guard) when it fails or is interrupted. Returns the Guard and
    what ran ("with pipenv V for Python X.Y.Z")."""
    version = project_pipenv_version(project)
    wanted = project_python_version(project)
    check_pipfile_follows_the_answers(project, wanted)
    target = (Path(python), python_version(python)) if python else find_python(wanted, environ)
    if target is None or target[1] is None:
        raise LockError(f"{python} does not run" if python else missing_python(wanted, args[0]))
    venv = ensure_pipenv(version, target[0], target[1], environ, project / PINS)
    network = pip_network_settings(venv, environ)
    guard = Guard(project)
    try:
        done = f"with pipenv {version} for Python {target[1]}"
        say(f"{saying} {done} ...")
        result = run_pipenv(venv, [*args, "--python", target[0]], project, environ, network)
        if result.returncode != 0 or not guard.lock.is_file():
            raise LockError(failure(f"pipenv {args[0]}", result, project, environ, network))
    except BaseException:
        guard.undo()
        raise
    return guard, done


def lock(project, environ):
    """pipenv lock; source/.venv (pipenv resolves in it) removed afterwards when the lock made
    it. No `pipenv verify`: a fresh lock matches its Pipfile."""
    guard, done = pipenv_step(project, environ, None, ["lock"], "locking source/Pipfile")
    if not guard.venv_was_there:
        shutil.rmtree(guard.venv, ignore_errors=True)
    say(f"locked source/Pipfile.lock {done}.")


def install(project, environ, python=None):
    """pipenv install --dev --deploy into source/.venv."""
    saying = "installing source/Pipfile.lock into source/.venv"
    pipenv_step(project, environ, python, ["install", "--dev", "--deploy"], saying)
    say("installed: `make test` and `make run` use source/.venv.")


def arguments(argv):
    parser = argparse.ArgumentParser(prog="scripts/lock.py", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("lock", help="lock source/Pipfile into source/Pipfile.lock")
    install_parser = commands.add_parser("install", help="pipenv install --dev --deploy into source/.venv")
    install_parser.add_argument("--python", help="the interpreter of source/.venv (default: the Pipfile's)")
    return parser.parse_args(argv)


def main(argv=None, project=None, environ=os.environ):
    args = arguments(sys.argv[1:] if argv is None else argv)
    project = Path(project or Path(__file__).resolve().parents[1])
    for each in STOP_SIGNALS:
        signal.signal(each, on_stop)
    try:
        # A caller may start this program with the stop signals held (update.py does), so that a
        # Ctrl-C while its Python starts is not the interpreter's traceback: taken here, once
        # they are this program's to handle.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, set(STOP_SIGNALS))
        if args.command == "lock":
            lock(project, environ)
        else:
            install(project, environ, args.python)
    except Interrupted as stop:
        name = signal.Signals(stop.signum).name
        complain(f"{PROGRAM} {args.command}: interrupted ({name}); nothing was changed: run it again")
        return 128 + stop.signum
    except (LockError, OSError) as error:
        reason = os_error_reason(error, environ) if isinstance(error, OSError) else str(error)
        complain(f"{PROGRAM} {args.command}: {reason}")
        return 1
    return 0


def complain(message):
    """The one message of a failure, on stderr; a terminal that is gone costs nothing."""
    with contextlib.suppress(OSError):
        print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    sys.exit(main())
