"""The project's one lock program: pipenv as the image build runs it, for this project.

    python3 scripts/lock.py lock                 lock source/Pipfile into source/Pipfile.lock
    python3 scripts/lock.py install [--python P] pipenv install --dev --deploy into source/.venv
    python3 scripts/lock.py run COMMAND [ARG...] run COMMAND with source/.venv/bin first on PATH

`make lock`, `make install`, `make update`, `make test`, `make run` and the template's
post-generation hook all call it; it ships with the template (releases update it), so a fix
of the lock reaches every project. Standard library only, Python 3.9 or newer: it runs
before anything is installed.

What it reads from the project: the Python of source/Pipfile's [requires], and the pipenv of
the Dockerfile's `ARG PIPENV_VERSION=`: the image build is what must accept the lock
(`pipenv install --deploy`), so the lock is made with the pipenv the image installs, from
the one line that says which. That pipenv is installed once, with the project's Python, into
${XDG_CACHE_HOME:-~/.cache}/flask-appstack/pipenv-<version>-py<X.Y> (never half-built; a
read-only cache that holds it is used as it is, nothing written there).

The rules pipenv runs with (the Dockerfile's pipenv step follows the same ones):
- pip's settings of how to reach an index reach pipenv; which index to use does not
  (NETWORK_SETTINGS, INDEX_VARIABLES). pip's certificate also goes to pipenv's own HTTP
  client (REQUESTS_CA_BUNDLE), which reads no pip setting;
- a private temporary directory, removed however pipenv ends: pipenv writes files there
  that hold the index URL with PYPI_USER and PYPI_TOKEN expanded;
- pipenv in a process group of its own, ended whole (resolvers included) on a time limit
  (APPSTACK_LOCK_TIMEOUT seconds), Ctrl-C, SIGTERM, SIGHUP, SIGQUIT, or when the program
  that started this one is gone; then source/.venv is removed when the lock made it, and a
  Pipfile.lock that pipenv left half-written is put back as it was;
- killed outright (SIGKILL), this program cleans up nothing itself: pipenv dies with it
  (Linux's parent-death signal), and a watcher in a session of its own ends pipenv's group
  (the resolver) and removes the private temporary directory (Watcher).

Exit status: 0 done; 1 with one message (stderr) that names the cause and the fix (a full
disk, a hash of Pipfile.lock that the index's file does not match, an index refusing the
credentials: each said as such); 128 + N after signal N.
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
LOCK_TIMEOUT = 900  # seconds; a resolver that needs longer is stuck on the network
INSTALL_TIMEOUT = 600  # seconds for the one-time pipenv install into the cache
TIMEOUT_VARIABLE = "APPSTACK_LOCK_TIMEOUT"  # seconds, for each step
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name)
)

# One rule for which pip settings reach pipenv: how to reach an index (certificate, proxy,
# trusted host, timeouts) does; which index to use (index-url, extra-index-url, find-links,
# no-index) does not. pipenv counts pip's index settings as sources of a Pipfile without
# [[source]], so they would change the lock's hash, and the image, which builds without them,
# would refuse the lock (--deploy). The index a project uses is the Pipfile's [[source]].
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


class MachineProblem(LockError):
    """What this machine cannot do with any Python (a full disk, a directory it cannot
    write): nothing is tried again."""


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


def project_pipenv_version(project):
    """The pipenv the image installs: the Dockerfile's `ARG PIPENV_VERSION=<version>`."""
    dockerfile = project / "Dockerfile"
    found = re.search(r"^ARG PIPENV_VERSION=(\S+)\s*$", dockerfile.read_text(encoding="utf-8"), re.MULTILINE)
    if not found:
        raise LockError(f"{dockerfile} has no `ARG PIPENV_VERSION=<version>` line: put it back (make update)")
    return found[1]


# ---- pip's configuration ----------------------------------------------------------------

PIP_CONFIG_LINE = re.compile(r"^(?P<scope>:env:|global|install)\.index-url='(?P<url>[^']*)'$", re.MULTILINE)


def configured_index_url(config_list, environ):
    """The index-url this machine's pip uses (extra indexes and find-links are not indexes
    of their own): PIP_INDEX_URL, else install.index-url, else global.index-url of
    `config_list` (pip_config_list's text). Empty when none is set."""
    if environ.get("PIP_INDEX_URL"):
        return environ["PIP_INDEX_URL"].strip()
    found = {match["scope"]: match["url"] for match in PIP_CONFIG_LINE.finditer(config_list)}
    return next((found[scope] for scope in (":env:", "install", "global") if found.get(scope)), "")


def pip_config_files(environ=os.environ, home=None):
    """pip's configuration files, in the order pip reads them (a later one wins): global,
    user (not when PIP_CONFIG_FILE names a file that exists), site (the running
    interpreter's), then PIP_CONFIG_FILE. None at all when it is os.devnull, as in pip."""
    own = environ.get("PIP_CONFIG_FILE")
    if own == os.devnull:
        return []
    home = Path(home or Path.home())
    if os.name == "nt":
        program_data = Path(environ.get("PROGRAMDATA", r"C:\ProgramData"))
        appdata = Path(environ.get("APPDATA", home / "AppData" / "Roaming"))
        system, user, name = (
            [program_data / "pip" / "pip.ini"],
            [home / "pip" / "pip.ini", appdata / "pip" / "pip.ini"],
            "pip.ini",
        )
    else:
        dirs = [path for path in (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep) if path]
        system = [Path(path) / "pip" / "pip.conf" for path in dirs] + [Path("/etc/pip.conf")]
        user = [home / ".pip" / "pip.conf"]
        if sys.platform == "darwin":
            user.append(home / "Library" / "Application Support" / "pip" / "pip.conf")
        user.append(Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf")
        name = "pip.conf"
    if own and Path(own).exists():
        user = []
    return system + user + [Path(sys.prefix) / name] + ([Path(own)] if own else [])


def pip_config_list(environ=os.environ, home=None):
    """What `pip config list` prints (`global.index-url='...'`, `:env:.cert='...'`), read
    here without starting pip (a second): the [global] and [install] settings of pip's
    configuration files, then its PIP_* environment variables."""
    import configparser

    settings = {}
    for path in pip_config_files(environ, home):
        parser = configparser.RawConfigParser()
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, OSError, UnicodeDecodeError):
            continue  # pip would refuse such a file; it decides nothing here
        for section in ("global", "install"):
            if parser.has_section(section):
                for key, value in parser.items(section):
                    settings[f"{section}.{key.replace('_', '-')}"] = " ".join(value.split())
    for variable, value in environ.items():
        if variable.startswith("PIP_") and value:
            settings[f":env:.{variable[4:].lower().replace('_', '-')}"] = value
    return "".join(f"{key}='{value}'\n" for key, value in sorted(settings.items()))


SAFE_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%+/-]*)?")


def unreachable_by_the_pipeline(url):
    """Why the pipeline's build agents cannot use an index at `url`, or "": a `file://` URL
    or a path (any scheme but http(s)) is on this machine's disk, and a loopback host
    (127.0.0.0/8, ::1, localhost) is this machine itself."""
    import ipaddress
    import urllib.parse

    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
    except ValueError:  # e.g. an unclosed [ in the host: not a URL that index_source writes
        return ""
    if parts.scheme not in ("http", "https"):
        return "it is not an http(s) URL (a file:// URL or a path is on this machine), so the pipeline cannot use it"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost" or host.endswith(".localhost")
    return "it is a loopback address, this machine itself, which the pipeline cannot reach" if loopback else ""


def index_source(url):
    """The Pipfile's [[source]] block for the machine's index URL, without credentials (or
    None, with why not). The post-generation hook writes it."""
    if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
        return None, "it holds credentials, which never go into a file"
    unreachable = unreachable_by_the_pipeline(url)
    if unreachable:
        return None, unreachable
    if not SAFE_URL.fullmatch(url):
        return None, "it is not a plain http(s) URL"
    block = (
        "# The package index this machine's pip used (its index-url) when the project was generated.\n"
        "[[source]]\n"
        'name = "pip-index"\n'
        f'url = "{url}"\n'
        f"verify_ssl = {'true' if url.startswith('https://') else 'false'}\n"
    )
    return block, ""


def machine_index_url(environ=os.environ):
    """This machine's configured index-url, with pip's precedence (empty when none)."""
    return configured_index_url(pip_config_list(environ), environ)


def pip_network_settings(config_list):
    """pip's network settings from its configuration files, as PIP_* variables."""
    settings = {}
    for scope in ("global", "install"):  # install's settings win over global's, as in pip
        for match in re.finditer(rf"^{scope}\.([a-z-]+)='([^']*)'$", config_list, flags=re.MULTILINE):
            if match[1] in NETWORK_SETTINGS:
                settings["PIP_" + match[1].upper().replace("-", "_")] = match[2]
    return settings


def pipenv_environment(environ, config_list="", temp_dir=None, app_data=None):
    """pipenv's environment: the project's venv in source/.venv; no prompts, colours,
    spinners, .env files, active venv or pyenv installs; pip's network settings but not its
    index settings (NETWORK_SETTINGS). `temp_dir`: pipenv's private temporary directory;
    `app_data`: virtualenv's (default: in `temp_dir`)."""
    dropped = (
        "VIRTUAL_ENV",
        "PIPENV_PIPFILE",
        "PIPENV_PYTHON",
        "PIPENV_CUSTOM_VENV_NAME",
        "PIPENV_ACTIVE",
        "PYTHONHOME",
        "PYTHONPATH",
        *INDEX_VARIABLES,
    )
    env = {**pip_network_settings(config_list), **{k: v for k, v in environ.items() if k not in dropped}}
    if env.get("PIP_CERT") and not (env.get("REQUESTS_CA_BUNDLE") or env.get("CURL_CA_BUNDLE")):
        env["REQUESTS_CA_BUNDLE"] = env["PIP_CERT"]
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
        # virtualenv (which pipenv makes its venvs with) seeds them from a shared app-data
        # folder that any newer virtualenv on the machine updates: pipenv 2022 then gets a
        # setuptools without pkg_resources and fails. Its own bundled wheels, in private.
        app_data = app_data or Path(temp_dir) / "virtualenv"
        env.update(VIRTUALENV_OVERRIDE_APP_DATA=str(app_data), VIRTUALENV_NO_PERIODIC_UPDATE="1")
    return env


# ---- interpreters -----------------------------------------------------------------------


def minor_version(version):
    """X.Y of a version X.Y or X.Y.Z."""
    return ".".join(version.split(".")[:2])


def tool_caches(environ):
    """Where hosted CI runners keep their Pythons, as Python/X.Y.Z/x64/bin: setup-python's
    $RUNNER_TOOL_CACHE, Azure's $AGENT_TOOLSDIRECTORY, else the runner images' /opt/hostedtoolcache."""
    roots = [root for root in (environ.get("RUNNER_TOOL_CACHE"), environ.get("AGENT_TOOLSDIRECTORY")) if root]
    return [Path(root) / "Python" for root in dict.fromkeys(roots or ["/opt/hostedtoolcache"])]


def newest_first(folders, minor):
    """The X.Y.Z folders of Python `minor` among `folders`, the newest patch first (not 3.13.0t)."""
    patches = [path for path in folders if re.fullmatch(rf"{re.escape(minor)}\.[0-9]+", path.name)]
    return sorted(patches, key=lambda path: int(path.name.rsplit(".", 1)[1]), reverse=True)


def interpreter_candidates(version, environ, home):
    """Executables that may be Python `version` (X.Y or X.Y.Z): pyenv's exact X.Y.Z first,
    then pythonX.Y on PATH, then the CI runners' tool caches and pyenv, newest first. Not
    pyenv's shims on PATH: one costs a fifth of a second to fail where its version is not
    selected, and pyenv's versions are looked at anyway."""
    minor = minor_version(version)
    pyenv = Path(environ.get("PYENV_ROOT") or Path(home) / ".pyenv") / "versions"
    found = [pyenv / version / "bin" / f"python{minor}"] if version.count(".") == 2 else []
    folders = [folder for folder in environ.get("PATH", "").split(os.pathsep) if folder]
    found += [Path(folder) / f"python{minor}" for folder in folders if Path(folder).name != "shims"]
    for cache in tool_caches(environ):
        found += [path / "x64" / "bin" / f"python{minor}" for path in newest_first(cache.glob(f"{minor}.*"), minor)]
    found += [path / "bin" / f"python{minor}" for path in newest_first(pyenv.glob(f"{minor}.*"), minor)]
    return list(dict.fromkeys(found))


def python_version(executable):
    """The X.Y.Z an executable reports, or None when it does not run (e.g. a pyenv shim
    of a version that is not selected)."""
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
    """(executable, X.Y.Z) of an interpreter of Python `version` on this machine, or None."""
    minor = minor_version(version)
    for candidate in interpreter_candidates(version, environ, home or Path.home()):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            reported = python_version(candidate)
            if reported and minor_version(reported) == minor:
                return candidate, reported
    return None


def current_python():
    return Path(sys.executable), "%d.%d.%d" % sys.version_info[:3]


def missing_python(version):
    minor = minor_version(version)
    return (
        f"Python {minor} (source/Pipfile) is not on this machine (PATH, CI tool caches, pyenv): "
        f"run `pyenv install {minor}` or install the system packages python{minor} and python{minor}-venv, "
        f"or name one with `make install PYTHON=/path/to/python{minor}`"
    )


# ---- running tools: bounded, interruptible, never leaving a process behind -----------------

# The parent process when this program started: when it changes, whoever ran this program
# (make, the post-generation hook) is gone, and nobody would see or stop what runs here.
PARENT = os.getppid()


def on_stop(signum, frame):
    """A stop signal: once. The cleanup that follows must finish, so further ones wait."""
    for each in STOP_SIGNALS:
        signal.signal(each, signal.SIG_IGN)
    raise Interrupted(signum)


def hold_stop_signals():
    """Block the stop signals until restore_signals; returns the mask to restore (None where
    there are no signal masks)."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, set(STOP_SIGNALS))


def restore_signals(mask):
    """Unblock what hold_stop_signals blocked: a signal that came meanwhile arrives now."""
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def signal_group(pgid, sig):
    """Send `sig` to a process group; False when nothing of it is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def end_process_group(process):
    """Stop a tool started in a session of its own, and everything it started (resolvers):
    SIGTERM, 5 s of grace, SIGKILL for whatever is left of its group, then wait (5 s at
    most) until the group is gone."""
    if not hasattr(os, "killpg"):  # Windows: no process groups to end
        process.kill()
        process.wait()
        return
    signal_group(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        pass
    signal_group(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + 5
    while signal_group(process.pid, 0) and time.monotonic() < deadline:
        time.sleep(0.05)


def timeouts(environ):
    """(install, lock) time limits in seconds: APPSTACK_LOCK_TIMEOUT for both."""
    value = environ.get(TIMEOUT_VARIABLE, "")
    return (int(value),) * 2 if value.isdigit() and int(value) > 0 else (INSTALL_TIMEOUT, LOCK_TIMEOUT)


# ---- what outlives this program when it is killed outright (SIGKILL) -----------------------
#
# A stop signal is caught, and the tool's group ended; SIGKILL is not. Two things then still end
# the tool: the kernel sends it SIGKILL when this program dies (Linux's parent-death signal, set
# in the tool before it starts), and a watcher, a small process in a session of its own that
# reads this program's instructions from a pipe: it ends the groups it was told of (the tool's
# own children, pipenv's resolver among them, which no parent-death signal reaches) and removes
# the folders it was told of (pipenv's private temporary folder, whose files hold the token)
# when the pipe closes without their being done, which is when this program has ended, however.

WATCHER_SOURCE = """
import json, os, shutil, signal, sys, time
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
    """The one watcher of this program, started with its first tool (not on Windows)."""

    process = None

    @classmethod
    def start(cls):
        if cls.process is None and hasattr(os, "killpg"):
            cls.process = subprocess.Popen(
                [sys.executable, "-I", "-S", "-c", WATCHER_SOURCE],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                text=True,
                start_new_session=True,  # neither Ctrl-C nor a SIGKILL of this program's group reaches it
            )

    @classmethod
    def tell(cls, verb, what):
        """`group <pgid>` to end, `ended <pgid>`; `folder <path>` to remove, `removed <path>`."""
        if cls.process is None:
            return
        try:
            cls.process.stdin.write(json.dumps([verb, what]) + "\n")
            cls.process.stdin.flush()
        except (OSError, ValueError):  # it has gone: nothing is left to watch
            pass


@contextlib.contextmanager
def private_folder(prefix):
    """A temporary folder only this user can read, removed afterwards, and removed by the
    watcher when this program is killed outright."""
    Watcher.start()
    folder = tempfile.mkdtemp(prefix=prefix)
    Watcher.tell("folder", folder)
    try:
        yield Path(folder)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        Watcher.tell("removed", folder)


def parent_death_signal(parent):
    """In a tool about to start (preexec_fn): SIGKILL when its `parent` dies (Linux's
    PR_SET_PDEATHSIG); at once, when it died before that was set."""
    if PRCTL is not None and PRCTL(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0 and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGKILL)


def prctl():
    """libc's prctl, found before any tool starts (a child must not load libraries), or None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        return ctypes.CDLL(None, use_errno=True).prctl
    except (ImportError, OSError, AttributeError):
        return None


PRCTL, PR_SET_PDEATHSIG = prctl(), 1


def start_tool(args, env, cwd=None, signal_mask=None):
    """Start a tool in a session (and process group) of its own, with no input and its
    output captured; it starts with `signal_mask` (restore_signals's argument) and dies with
    this program (parent_death_signal)."""

    parent = os.getpid()

    def in_the_tool():
        parent_death_signal(parent)
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


def wait_for(process, timeout):
    """communicate() within `timeout` seconds, checking twice a second that whoever started
    this program still runs (else: Interrupted, as by SIGHUP)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return process.communicate(timeout=max(0.01, min(0.5, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            if time.monotonic() >= deadline:
                raise
            if os.getppid() != PARENT:
                raise Interrupted(getattr(signal, "SIGHUP", signal.SIGTERM)) from None


def run_tool(args, what, env, timeout, cwd=None):
    """Run a tool in its own session with a time limit. On a timeout, a stop signal or the
    caller gone, its whole process group ends; a timeout becomes a LockError that says so.

    A stop signal while the tool starts is held back until its process is known (else the
    tool would be left running); the tool itself starts with none blocked. When this program
    is killed outright, the watcher ends the tool's group."""
    Watcher.start()
    held = hold_stop_signals()
    try:
        process = start_tool(args, env, cwd=cwd, signal_mask=held)
    except BaseException:
        restore_signals(held)
        raise
    Watcher.tell("group", process.pid)
    try:
        restore_signals(held)
        stdout, stderr = wait_for(process, timeout)
    except subprocess.TimeoutExpired:
        end_process_group(process)
        raise LockError(
            f"{what} gave no result within {timeout} s: the package index did not answer "
            f"in time (check the network, the proxy and the index URL; {TIMEOUT_VARIABLE} sets the limit)"
        ) from None
    except BaseException:
        end_process_group(process)
        raise
    finally:
        Watcher.tell("ended", process.pid)
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


# ---- why a step failed --------------------------------------------------------------------

# Less free space than this where a tool failed, and the failure was the full disk (venv's
# ensurepip, for one, only says that it failed).
LOW_SPACE = 64 * 2**20


def os_error_reason(error, environ):
    """One sentence for an OSError: what could not be done, and the fix."""
    where = error.filename or "a file"
    cache, temp = str(cache_root(environ)), tempfile.gettempdir()
    if error.errno == errno.ENOSPC:
        return f"no space left on device while writing {where}: free some space there and try again"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR):
        if str(where).startswith(cache):
            fix = "set XDG_CACHE_HOME to a directory you can write"
        elif str(where).startswith(temp):
            fix = "set TMPDIR to a directory you can write"
        else:
            fix = "check that directory's owner and permissions"
        return f"cannot write {where}: {error.strerror}; {fix}"
    return f"{where}: {error.strerror}"


def tool_failure(output, where):
    """Why a tool that wrote into `where` failed: a full disk said plainly (raised as a
    MachineProblem), else the tool's last error line."""
    try:
        full = shutil.disk_usage(where).free < LOW_SPACE
    except OSError:
        full = False
    if full or "No space left on device" in output or "[Errno 28]" in output:
        raise MachineProblem(f"no space left on device in {where}: free some space there and try again")
    return last_error(output)


def last_error(output):
    """The most telling line of a tool's output: its last ERROR line, else its last line."""
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", output).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    errors = errors or [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1]


def hash_mismatch(output, where="source/Pipfile.lock"):
    """One sentence, what happened and the fix, when pip found a package whose file does not
    match its hash in `where` (pipenv itself then says only that it could not install it);
    else ""."""
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


def expand_variables(text, environ):
    """$VAR and ${VAR} of `text` from `environ`, as pipenv expands a [[source]] URL (unset: kept)."""
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda found: environ.get(found[1] or found[2], found[0]), text)


def index_problems(project, environ):
    """What the Pipfile's indexes say when asked as pipenv asks them, with the credentials of
    their URLs: [(kind, sentence)]. "refused": the index answers HTTP 401 or 403 (the reason of
    the failure, with its fix; pip only says that nothing matched); "hint": unset credentials,
    no answer."""
    import base64
    import ssl
    import urllib.error  # here, not at the top: only a failed lock needs it
    import urllib.parse
    import urllib.request

    pipfile = (project / "source" / "Pipfile").read_text(encoding="utf-8")
    cert = {**pip_network_settings(pip_config_list(environ)), **environ}.get("PIP_CERT")
    context = ssl.create_default_context(cafile=cert) if cert and Path(cert).is_file() else None
    problems = []
    for url in re.findall(r'^url = "([^"]+)"', pipfile, flags=re.MULTILINE):
        plain = re.sub(r"//[^/@]*@", "//", url)
        wants = re.findall(r"\$\{?(\w+)", url.split("//", 1)[-1].split("/", 1)[0])
        unset = [name for name in wants if not environ.get(name)]
        if unset:
            problems.append(
                ("hint", f"{plain} takes its credentials from {' and '.join(wants)}: set {' and '.join(unset)}")
            )
        parts = urllib.parse.urlsplit(expand_variables(url, environ))
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


def failure(what, result, project, environ):
    """The message of a failed pipenv step: the full disk, a hash that does not match or an
    index refusing the credentials said plainly, each with its fix; else the tool's last error
    line and what the indexes say (hints)."""
    output = result.stdout + result.stderr
    reason = tool_failure(output, project / "source")
    problems = index_problems(project, environ)
    refused = [sentence for kind, sentence in problems if kind == "refused"]
    hints = [f"  Hint: {sentence}" for kind, sentence in problems if kind == "hint"]
    return "\n".join([f"{what} failed: {hash_mismatch(output) or (refused or [reason])[0]}", *hints])


# ---- pipenv, installed once into the cache --------------------------------------------------


def cache_root(environ=os.environ, home=None):
    return Path(environ.get("XDG_CACHE_HOME") or Path(home or Path.home()) / ".cache") / "flask-appstack"


def pipenv_requirements(version):
    """pipenv and what it needs beside it: pipenv releases of 2022 break with virtualenv
    newer than 20.16.2 (seen with 2022.7.24 on Python 3.11), and import pkg_resources, which
    setuptools 82 no longer has. What scripts/pipenv-requirements.txt pins is made from these."""
    requirements = [f"pipenv=={version}"]
    if int(version.split(".")[0]) < 2023:
        requirements += ["virtualenv==20.16.2", "setuptools<82"]
    return requirements


def pipenv_venv_path(version, runner_version, environ=os.environ, home=None):
    return cache_root(environ, home) / f"pipenv-{version}-py{minor_version(runner_version)}"


def venv_python(venv):
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


class FileLock:
    """An exclusive lock on a file while a cached venv is built (parallel locks share it)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.handle = open(self.path, "a")
        try:
            import fcntl

            fcntl.flock(self.handle, fcntl.LOCK_EX)
        except ImportError:  # Windows: no concurrent locks to guard against
            pass
        return self

    def __exit__(self, *exc):
        self.handle.close()  # closing releases the lock


# pipenv and every package it needs, pinned with hashes: lock.py and the image build install
# pipenv only from this file (the template's, one per pipenv it pins), since both install it
# where the token is. What stays trusted: the index the template's maintainers made it from,
# when they made it, and the pip of the Python that installs it.
PINS = "scripts/pipenv-requirements.txt"


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


def pins_marker(version, pins_text):
    """What .complete holds for a venv installed from these pins: a venv installed otherwise
    (before pins, or from other ones) is installed again."""
    return f"pipenv {version} from pins sha256:{hashlib.sha256(pins_text.encode()).hexdigest()}\n"


def complete(venv, marker):
    try:
        return (venv / ".complete").read_text(encoding="utf-8") == marker
    except OSError:
        return False


def ensure_pipenv(version, runner, runner_version, environ=os.environ, pins=None):
    """The venv (built once, then reused) in which `runner` runs pipenv `version`, installed
    from `pins` (default: the pins file beside this program) with pip's --require-hashes."""
    pins = Path(pins or Path(__file__).with_name(Path(PINS).name))
    marker = pins_marker(version, pipenv_pins(pins, version))
    venv = pipenv_venv_path(version, runner_version, environ)
    if complete(venv, marker):  # never changed once complete: used as it is, even read-only
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(venv.parent / f"{venv.name}.lock"):
        if complete(venv, marker):
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        limit = timeouts(environ)[0]
        say(f"installing pipenv {version} for Python {runner_version} into {venv} (once; at most {limit} s) ...")
        pip = [venv_python(venv), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        pinned = ["--require-hashes", "--only-binary=:all:", "--requirement", pins]
        try:
            for step in ([runner, "-m", "venv", venv], [*pip, *pinned]):
                what = f"`{' '.join(map(str, step[1:3]))} ...` with Python {runner_version}"
                result = run_tool(step, what, environ, limit)
                if result.returncode != 0:
                    output = result.stdout + result.stderr
                    reason = tool_failure(output, venv.parent)
                    raise LockError(f"{what} failed: {hash_mismatch(output, PINS) or reason}")
            (venv / ".complete").write_text(marker, encoding="utf-8")
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)  # never a half-built venv in the cache
            raise
    return venv


def installed_pipenv(version, target, environ, pins=None):
    """The venv of pipenv `version`: on the project's Python, else (recent pipenv needs a
    recent Python) on the one running this program, with a note."""
    pipenv_pins(pins or Path(__file__).with_name(Path(PINS).name), version)  # whatever the Python: said once
    runners = [target] + ([current_python()] if current_python()[1] != target[1] else [])
    failures = []
    for runner, runner_version in runners:
        try:
            venv = ensure_pipenv(version, runner, runner_version, environ, pins)
        except MachineProblem:
            raise
        except LockError as error:
            failures.append(str(error))
            continue
        if failures:
            say(
                f"note: pipenv {version} did not install on Python {target[1]} ({failures[0]}), so it runs "
                f"on Python {runner_version}. The image installs pipenv on Python {target[1]}: make sure it can."
            )
        return venv
    raise LockError("; ".join(failures))


def run_pipenv(venv, args, project, environ, timeout):
    """pipenv `args` in source/, in a private temporary directory removed afterwards."""
    with private_folder("flask-appstack-pipenv-") as temp_dir:
        # virtualenv's app-data beside the pipenv it belongs to: private, and unpacked once
        # rather than at every lock; in the private folder when the cache is read-only.
        app_data = venv / "virtualenv-app-data"
        writable = os.access(app_data if app_data.is_dir() else venv, os.W_OK)
        env = pipenv_environment(environ, pip_config_list(environ), temp_dir, app_data if writable else None)
        what = f"`pipenv {' '.join(map(str, args))}`"
        return run_tool([venv_python(venv), "-m", "pipenv", *args], what, env, timeout, cwd=project / "source")


# ---- the commands -----------------------------------------------------------------------


def say(line):
    """A line of progress; a terminal that is gone (SIGHUP) costs nothing but the line."""
    try:
        print(f"{PROGRAM}: {line}", flush=True)
    except OSError:
        pass


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


def lock(project, environ, pipenv_version=None):
    """pipenv lock for the project's Python; source/.venv (pipenv resolves in it) removed
    afterwards when the lock made it. No `pipenv verify`: a fresh lock matches its Pipfile."""
    version = pipenv_version or project_pipenv_version(project)
    wanted = project_python_version(project)
    target = find_python(wanted, environ)
    if target is None:
        target = current_python()
        say(
            f"note: Python {minor_version(wanted)} is not on this machine (PATH, CI tool caches, pyenv): locking for "
            f"Python {target[1]} instead; markers may differ from the image's. Install Python {minor_version(wanted)} "
            "and lock again to lock for it."
        )
    venv = installed_pipenv(version, target, environ, project / PINS)
    guard = Guard(project)
    try:
        say(f"locking source/Pipfile with pipenv {version} for Python {target[1]} ...")
        result = run_pipenv(venv, ["lock", "--python", target[0]], project, environ, timeouts(environ)[1])
        if result.returncode != 0 or not guard.lock.is_file():
            raise LockError(failure("pipenv lock", result, project, environ))
    except BaseException:
        guard.undo()
        raise
    if not guard.venv_was_there:
        shutil.rmtree(guard.venv, ignore_errors=True)
    say(f"locked source/Pipfile.lock with pipenv {version} for Python {target[1]}.")


def install(project, environ, python=None, pipenv_version=None):
    """pipenv install --dev --deploy into source/.venv, with the project's Python."""
    version = pipenv_version or project_pipenv_version(project)
    wanted = project_python_version(project)
    target = (Path(python), python_version(python)) if python else find_python(wanted, environ)
    if target is None or target[1] is None:
        raise LockError(f"{python} does not run" if python else missing_python(wanted))
    venv = installed_pipenv(version, target, environ, project / PINS)
    guard = Guard(project)
    try:
        say(f"installing source/Pipfile.lock into source/.venv with pipenv {version} for Python {target[1]} ...")
        args = ["install", "--dev", "--deploy", "--python", target[0]]
        result = run_pipenv(venv, args, project, environ, timeouts(environ)[1])
        if result.returncode != 0:
            raise LockError(failure("pipenv install", result, project, environ))
    except BaseException:
        guard.undo()
        raise
    say("installed: `make test` and `make run` use source/.venv.")


def run(project, command, environ):
    """Replace this program with `command`, source/.venv's bin first on PATH: the project's own
    virtualenv, whatever other project's one is activated in the shell."""
    venv = project / "source" / ".venv"
    bin_dir = venv_python(venv).parent
    if not command:
        raise LockError("run needs a command, e.g. `run pytest`")
    if not venv_python(venv).is_file():
        raise LockError("source/.venv does not exist: run `make install` first")
    env = {k: v for k, v in environ.items() if k not in ("PYTHONHOME", "PIPENV_ACTIVE")}
    env.update(VIRTUAL_ENV=str(venv), PATH=os.pathsep.join([str(bin_dir), environ.get("PATH", os.defpath)]))
    try:
        # The caller's own command (make test, make run), replacing this program: B606 is moot.
        os.execvpe(command[0], command, env)  # nosec B606
    except FileNotFoundError:
        raise LockError(f"{command[0]} is not in source/.venv: run `make install` first") from None


def arguments(argv):
    parser = argparse.ArgumentParser(prog="scripts/lock.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipenv", help="pipenv version (default: the Dockerfile's ARG PIPENV_VERSION)")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("lock", help="lock source/Pipfile into source/Pipfile.lock")
    install_parser = commands.add_parser("install", help="pipenv install --dev --deploy into source/.venv")
    install_parser.add_argument("--python", help="the interpreter of source/.venv (default: the Pipfile's)")
    run_parser = commands.add_parser("run", help="run a command with source/.venv/bin first on PATH")
    run_parser.add_argument("words", nargs=argparse.REMAINDER)
    return parser.parse_args(argv)


def main(argv=None, project=None, environ=os.environ):
    args = arguments(sys.argv[1:] if argv is None else argv)
    project = Path(project or Path(__file__).resolve().parents[1])
    for each in STOP_SIGNALS:
        signal.signal(each, on_stop)
    try:
        if args.command == "lock":
            lock(project, environ, args.pipenv)
        elif args.command == "install":
            install(project, environ, args.python, args.pipenv)
        else:
            run(project, args.words, environ)
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
    try:
        print(message, file=sys.stderr, flush=True)
    except OSError:
        pass


if __name__ == "__main__":
    sys.exit(main())
