"""Post-generation: finish the project cookiecutter wrote (runs inside it, cwd = project).

In order:
1. split chart/values-hostspaces.yaml into one values-<hostspace>.yaml per hostspace;
2. point source/Pipfile at this machine's package index when no package_index was given;
3. check that every YAML and JSON file parses, and lint the chart when helm is on PATH;
4. lock the dependencies (`pipenv lock` in source/, the chosen pipenv in a cached venv,
   the chosen Python when this machine has it), unless lock_dependencies is false or
   APPSTACK_SKIP_LOCK=1; then check that Pipfile.lock matches the Pipfile;
5. print the next steps. It never runs `git init` (cruft update works on the project
   as the user committed it).
Files that were in the directory before the bake (listed by the pre-generation hook, only
with APPSTACK_OVERWRITE=1) are never rewritten; with --skip-if-file-exists, the team's copies
of the files cookiecutter copies without rendering are put back (`restore_originals`).

Exit status: 1 only when a generated file does not parse (a template bug; cookiecutter
then deletes the project unless --keep-project-on-failure). Everything this machine can
get wrong ends with exit 0, the project kept, one warning that names the cause and the fix,
and the commands that lock later: a cache or temp directory it cannot write, a full disk,
pipenv that does not install, a missing Python, an index that does not answer within
APPSTACK_LOCK_TIMEOUT, Ctrl-C or SIGTERM during the lock (pipenv's whole process group is
ended, source/.venv removed), a helm on PATH that refuses the chart (a warning).

pipenv runs with one rule for pip's settings (NETWORK_SETTINGS: how to reach an index, yes;
which index, no), in a private temporary directory removed afterwards: pipenv writes files
there that hold the index URL with PYPI_USER and PYPI_TOKEN expanded.

Like pre_gen_project.py, only main() holds Jinja (the answers, as JSON data); the rest is
plain Python that the tests import unrendered. Standard library plus PyYAML, which
cookiecutter itself depends on. Nothing is written outside the project directory except
the cached pipenv under ${XDG_CACHE_HOME:-~/.cache}/flask-appstack and pipenv's own caches.
"""

# {% raw %}  (Jinja leaves everything down to the closing tag alone)
from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import namedtuple
from pathlib import Path

HOSTSPACE_VALUES = Path("chart/values-hostspaces.yaml")
HEADER = re.compile(r"^# (values-[a-z0-9-]+\.yaml)\b", re.MULTILINE)
SKIP_LOCK_VARIABLE = "APPSTACK_SKIP_LOCK"
LOCK_TIMEOUT = 900  # seconds; a resolver that needs longer is stuck on the network
INSTALL_TIMEOUT = 600  # seconds for the one-time pipenv install into the cache
TIMEOUT_VARIABLE = "APPSTACK_LOCK_TIMEOUT"  # seconds, for each of the two
# Written by the pre-generation hook when the directory already held files (only with
# APPSTACK_OVERWRITE=1): those files are never rewritten here.
PREEXISTING = Path(".flask-appstack-preexisting.json")
# The pre-generation hook's copies of the team's originals of the files cookiecutter copies
# without rendering, and its probe: still PROBE_TEXT when cookiecutter skipped existing files.
ORIGINALS = Path(".flask-appstack-originals")
SKIP_PROBE = Path(".flask-appstack-skip-probe")
PROBE_TEXT = "written by the pre-generation hook\n"


def split_hostspace_values(text):
    """Split the rendered multi-document hostspace values into {file name: content}.

    Each document starts with a comment line naming its file, e.g. `# values-dev.yaml: ...`.
    """
    files = {}
    for document in re.split(r"^---[ \t]*$\n?", text, flags=re.MULTILINE):
        match = HEADER.search(document)
        if match:
            files[match.group(1)] = document.strip("\n") + "\n"
    return files


def write_hostspace_values(project, kept=()):
    """Write values-<hostspace>.yaml files, except those that were there before the bake."""
    combined = project / HOSTSPACE_VALUES
    if not combined.exists():
        return
    for name, content in split_hostspace_values(combined.read_text()).items():
        if f"chart/{name}" not in kept:
            (combined.parent / name).write_text(content)
    combined.unlink()


def preexisting_files(project):
    """The files the directory held before the bake (the pre-generation hook's list), once."""
    manifest = project / PREEXISTING
    if not manifest.is_file():
        return frozenset()
    kept = frozenset(json.loads(manifest.read_text(encoding="utf-8")))
    manifest.unlink()
    return kept


def restore_originals(project):
    """Remove the probe; when it shows that cookiecutter skipped existing files, put the
    team's originals from ORIGINALS back over cookiecutter's copies. Returns their names."""
    probe, aside = project / SKIP_PROBE, project / ORIGINALS
    skipped = probe.is_file() and probe.read_text(encoding="utf-8") == PROBE_TEXT
    probe.unlink(missing_ok=True)
    if not aside.is_dir():
        return []
    put_back = []
    if skipped:
        for copy in sorted(path for path in aside.rglob("*") if path.is_file()):
            name = copy.relative_to(aside)
            os.replace(copy, project / name)
            put_back.append(name.as_posix())
    shutil.rmtree(aside)
    return put_back


def hostspaces(answers):
    return [name.strip() for name in answers["hostspaces"].split(",")]


# ---- the package index ---------------------------------------------------------------

PIP_CONFIG_LINE = re.compile(r"^(?P<scope>:env:|global|install)\.index-url='(?P<url>[^']*)'$", re.MULTILINE)
SAFE_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%+/-]*)?")


def configured_index_url(pip_config_list, environ):
    """The index-url this machine's pip uses (extra indexes and find-links are not
    indexes of their own): PIP_INDEX_URL, else `pip config list`'s install.index-url,
    else its global.index-url. Empty when none is set."""
    if environ.get("PIP_INDEX_URL"):
        return environ["PIP_INDEX_URL"].strip()
    found = {match["scope"]: match["url"] for match in PIP_CONFIG_LINE.finditer(pip_config_list)}
    return next((found[scope] for scope in (":env:", "install", "global") if found.get(scope)), "")


def pip_config_files(environ=os.environ, home=None):
    """pip's configuration files, in the order pip reads them (a later one wins): global,
    user (not when PIP_CONFIG_FILE names a file that exists), site (the interpreter running
    this hook), then PIP_CONFIG_FILE. None at all when it is os.devnull, as in pip."""
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
    here without starting pip: the [global] and [install] settings of pip's configuration
    files, then its PIP_* environment variables."""
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


def index_source(url):
    """The [[source]] block for an index URL, without credentials (or None, with why not)."""
    if "@" in url.split("://", 1)[-1].split("/", 1)[0]:
        return None, "it holds credentials, which never go into a file"
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


def use_machine_index(project, answers, environ, config_list=None, kept=()):
    """Without a package_index answer, write the machine's index into source/Pipfile.

    When pip has no index-url, the Pipfile keeps no [[source]]: pipenv then uses its
    default index (and records it in Pipfile.lock). Returns a line for the summary."""
    if answers["package_index"]:
        return f"Pipfile: the package index is {answers['package_index']} (package_index)."
    if "source/Pipfile" in kept:
        return "Pipfile: kept as it was before this bake."
    url = configured_index_url(pip_config_list() if config_list is None else config_list, environ)
    if not url:
        return "Pipfile: no [[source]]: this machine's pip has no index-url, so pipenv uses its default index."
    block, why_not = index_source(url)
    pipfile = project / "source" / "Pipfile"
    if block is None:
        return f"Pipfile: this machine's index-url was not written ({why_not}); pipenv uses its default index."
    pipfile.write_text(block + "\n" + pipfile.read_text().lstrip("\n"))
    origin = "PIP_INDEX_URL" if environ.get("PIP_INDEX_URL") else "pip's configured index-url"
    return (
        f"Pipfile: the package index is {url}, from this machine's {origin}; it stays in "
        "source/Pipfile's [[source]] for good: edit that block (then `make lock`) to use another."
    )


# ---- interpreters --------------------------------------------------------------------


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
    then pythonX.Y on PATH, then the CI runners' tool caches and pyenv, newest first."""
    minor = minor_version(version)
    pyenv = Path(environ.get("PYENV_ROOT") or Path(home) / ".pyenv") / "versions"
    found = [pyenv / version / "bin" / f"python{minor}"] if version.count(".") == 2 else []
    found += [
        Path(directory) / f"python{minor}" for directory in environ.get("PATH", "").split(os.pathsep) if directory
    ]
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
            if reported and reported.rsplit(".", 1)[0] == minor:
                return candidate, reported
    return None


# ---- running tools: bounded, interruptible, and never leaving a process behind ---------


class LockError(Exception):
    """A lock that could not be made; the message says why and what to do."""


class MachineProblem(LockError):
    """A lock that this machine cannot make (disk full, a directory it cannot write), with
    any Python: nothing is tried again."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM while the lock ran."""


def on_sigterm(signum, frame):
    raise Interrupted()


def end_process_group(process):
    """Stop a tool started in a session of its own, and everything it started (resolvers):
    SIGTERM, 5 s of grace for the tool, SIGKILL for whatever is left of its group, then wait
    (5 s at most) until the group is gone."""
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


def signal_group(pgid, sig):
    """Send `sig` to a process group; False when nothing of it is left."""
    try:
        os.killpg(pgid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def timeouts(environ):
    """(pipenv install, pipenv lock) time limits in seconds: APPSTACK_LOCK_TIMEOUT for both."""
    value = environ.get(TIMEOUT_VARIABLE, "")
    return (int(value),) * 2 if value.isdigit() and int(value) > 0 else (INSTALL_TIMEOUT, LOCK_TIMEOUT)


def hold_stop_signals():
    """Block Ctrl-C and SIGTERM until restore_signals; returns the mask to restore (None where
    there are no signal masks)."""
    if not hasattr(signal, "pthread_sigmask"):
        return None
    return signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})


def restore_signals(mask):
    """Unblock what hold_stop_signals blocked: a signal that came meanwhile arrives now."""
    if mask is not None:
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)


def start_tool(args, env, cwd=None, session=False, stderr=subprocess.PIPE, signal_mask=None):
    """Start a tool with no input and its output captured as text; `session`: in a session
    (and process group) of its own, which end_process_group can end whole; `signal_mask`:
    the signal mask the tool starts with (restore_signals's argument)."""
    return subprocess.Popen(
        [str(arg) for arg in args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        errors="backslashreplace",
        start_new_session=session,
        preexec_fn=None if signal_mask is None else (lambda: restore_signals(signal_mask)),
    )


def run_tool(args, what, env, timeout, cwd=None):
    """Run a tool in its own session with a time limit. On a timeout, Ctrl-C or SIGTERM its
    whole process group ends; a timeout becomes a LockError that says so.

    Ctrl-C or SIGTERM while the tool starts is held back until its process is known (else
    the tool would be left running); the tool itself starts with neither blocked."""
    held = hold_stop_signals()
    try:
        process = start_tool(args, env, cwd=cwd, session=True, signal_mask=held)
    except BaseException:
        restore_signals(held)
        raise
    try:
        restore_signals(held)
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        end_process_group(process)
        raise LockError(
            f"{what} gave no result within {timeout} s: the package index did not answer "
            "in time (check the network, the proxy and the index URL)"
        ) from None
    except BaseException:
        end_process_group(process)
        raise
    return subprocess.CompletedProcess(args, process.returncode, stdout, stderr)


def os_error_reason(error, environ):
    """One sentence for an OSError of the lock: what could not be done, and the fix."""
    where = error.filename or "a file"
    cache, temp = str(cache_root(environ)), tempfile.gettempdir()
    if error.errno == errno.ENOSPC:
        return f"no space left on device while writing {where}: free some space there and lock again"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR):
        if str(where).startswith(cache):
            fix = "set XDG_CACHE_HOME to a directory you can write"
        elif str(where).startswith(temp):
            fix = "set TMPDIR to a directory you can write"
        else:
            fix = "check that directory's owner and permissions"
        return f"cannot write {where}: {error.strerror}; {fix}"
    return f"{where}: {error.strerror}"


# Less free space than this where a tool failed, and the failure was the full disk (venv's
# ensurepip, for one, only says that it failed).
LOW_SPACE = 64 * 2**20


def tool_failure(output, where):
    """The reason a tool that wrote into `where` failed: a full disk said plainly (and
    raised as a MachineProblem), else the tool's last error line."""
    try:
        full = shutil.disk_usage(where).free < LOW_SPACE
    except OSError:
        full = False
    if full or "No space left on device" in output or "[Errno 28]" in output:
        raise MachineProblem(f"no space left on device in {where}: free some space there and lock again")
    return last_error(output)


def last_error(output):
    """The most telling line of a tool's output: its last ERROR line, else its last line."""
    lines = [line.strip() for line in strip_ansi(output).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    errors = errors or [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1]


def strip_ansi(text):
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


# ---- pipenv in a cached venv ---------------------------------------------------------


def cache_root(environ=os.environ, home=None):
    return Path(environ.get("XDG_CACHE_HOME") or Path(home or Path.home()) / ".cache") / "flask-appstack"


def pipenv_requirements(version):
    """pipenv and what it needs beside it: pipenv releases of 2022 break with virtualenv
    newer than 20.16.2 (seen with 2022.7.24 on Python 3.11)."""
    requirements = [f"pipenv=={version}"]
    if int(version.split(".")[0]) < 2023:
        requirements.append("virtualenv==20.16.2")
    return requirements


def pipenv_venv_path(version, runner_version, environ=os.environ, home=None):
    minor = minor_version(runner_version)
    return cache_root(environ, home) / f"pipenv-{version}-py{minor}"


def venv_python(venv):
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


class _FileLock:
    """An exclusive lock on a file while a cached venv is built (parallel bakes share it).

    tools/cache.py has the same for the test tooling; a hook cannot import it (it runs
    from a temporary copy, on the user's machine, with the standard library only)."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.handle = open(self.path, "a")
        try:
            import fcntl

            fcntl.flock(self.handle, fcntl.LOCK_EX)
        except ImportError:  # Windows: no concurrent bakes to guard against
            pass
        return self

    def __exit__(self, *exc):
        self.handle.close()  # closing releases the lock


def ensure_pipenv(version, runner, runner_version, environ=os.environ):
    """The venv (built once, then reused) in which `runner` runs pipenv `version`."""
    venv = pipenv_venv_path(version, runner_version, environ)
    venv.parent.mkdir(parents=True, exist_ok=True)
    with _FileLock(venv.parent / f"{venv.name}.lock"):
        if (venv / ".complete").exists():
            return venv
        shutil.rmtree(venv, ignore_errors=True)
        print(
            f"flask-appstack: installing pipenv {version} for Python {runner_version} into {venv} "
            f"(once; at most {timeouts(environ)[0]} s) ...",
            flush=True,
        )
        steps = [
            [runner, "-m", "venv", venv],
            [
                venv_python(venv),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *pipenv_requirements(version),
            ],
        ]
        try:
            for step in steps:
                what = f"`{' '.join(map(str, step[1:3]))} ...` with Python {runner_version}"
                result = run_tool(step, what, environ, timeouts(environ)[0])
                if result.returncode != 0:
                    raise LockError(f"{what} failed: {tool_failure(result.stdout + result.stderr, venv.parent)}")
            (venv / ".complete").write_text("\n".join(pipenv_requirements(version)) + "\n")
        except BaseException:
            shutil.rmtree(venv, ignore_errors=True)  # never a half-built venv in the cache
            raise
    return venv


# One rule for which pip settings reach pipenv, here, in the generated Makefile and in the
# image build: how to reach an index (certificate, proxy, trusted host, timeouts) does; which
# index to use (index-url, extra-index-url, find-links, no-index) does not. pipenv counts pip's
# index settings as sources of a Pipfile without [[source]], so they would change the lock's
# hash, and the image, which builds without them, would refuse the lock (--deploy). The index
# a project needs is the Pipfile's [[source]].
NETWORK_SETTINGS = ("cert", "client-cert", "proxy", "trusted-host", "timeout", "default-timeout", "retries")
# The variables that choose an index, pip's and pipenv's (scripts/pipenv.sh unsets the same
# ones and points PIP_CONFIG_FILE at /dev/null; a test keeps the two lists equal).
INDEX_VARIABLES = (
    "PIP_INDEX_URL",
    "PIP_EXTRA_INDEX_URL",
    "PIP_FIND_LINKS",
    "PIP_NO_INDEX",
    "PIPENV_PYPI_MIRROR",
    "PIP_CONFIG_FILE",
)


def pip_network_settings(pip_config_list):
    """pip's network settings from its configuration files, as PIP_* variables."""
    settings = {}
    for scope in ("global", "install"):  # install's settings win over global's, as in pip
        for match in re.finditer(rf"^{scope}\.([a-z-]+)='([^']*)'$", pip_config_list, flags=re.MULTILINE):
            if match[1] in NETWORK_SETTINGS:
                settings["PIP_" + match[1].upper().replace("-", "_")] = match[2]
    return settings


def pipenv_environment(environ, pip_config_list="", temp_dir=None):
    """pipenv's environment for lock and verify.

    The project's venv goes inside it (removed after the lock); no prompts, colours,
    spinners, .env files, active venv or pyenv installs; pip's network settings but not its
    index settings (see NETWORK_SETTINGS). pipenv's own HTTP client reads no pip setting:
    it gets pip's certificate as REQUESTS_CA_BUNDLE unless the user set one. `temp_dir` is
    pipenv's private temporary directory: pipenv writes request files there that hold the
    index URL with the credentials expanded."""
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
    env = {
        **pip_network_settings(pip_config_list),
        **{key: value for key, value in environ.items() if key not in dropped},
    }
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
        env.update(VIRTUALENV_OVERRIDE_APP_DATA=str(Path(temp_dir) / "virtualenv"), VIRTUALENV_NO_PERIODIC_UPDATE="1")
    return env


def run_pipenv(venv, args, source, env, timeout=LOCK_TIMEOUT):
    return run_tool([venv_python(venv), "-m", "pipenv", *args], f"`pipenv {' '.join(args)}`", env, timeout, cwd=source)


# status: locked, skipped, failed or interrupted; summary: one line for the summary;
# detail: why it failed, and how to lock later
Lock = namedtuple("Lock", "status summary detail", defaults=("",))


def skip_reason(answers, environ, kept=()):
    if not answers["lock_dependencies"]:
        return "lock_dependencies is false"
    if environ.get(SKIP_LOCK_VARIABLE, "").lower() in ("1", "true", "yes"):
        return f"{SKIP_LOCK_VARIABLE} is set"
    if "source/Pipfile.lock" in kept:
        return "source/Pipfile.lock was there before and is kept"
    return ""


def choose_runner(answers, environ):
    """Interpreters to run pipenv with, in order of preference, and notes for the summary.

    The chosen Python first: the image installs pipenv on it too, and the lock then
    resolves for exactly that version. If pipenv does not install there (recent pipenv
    needs Python ≥ 3.10), the interpreter running this hook is the fallback."""
    notes = []
    target = find_python(answers["python_version"], environ)
    current = (Path(sys.executable), "%d.%d.%d" % sys.version_info[:3])
    if target is None:
        notes.append(
            f"Python {answers['python_version']} is not on this machine (PATH, pyenv): "
            f"locked for Python {current[1]} instead; markers may differ from the image's. "
            f"Install Python {answers['python_version']} and run `make lock` to lock for it."
        )
        return [current], current, notes
    runners = [target] + ([current] if current[1] != target[1] else [])
    return runners, target, notes


def installed_pipenv(version, runners, target, environ, notes):
    """The venv of pipenv `version`, on the first runner it installs on."""
    failures = []
    for runner, runner_version in runners:
        try:
            venv = ensure_pipenv(version, runner, runner_version, environ)
        except MachineProblem:
            raise
        except LockError as error:
            failures.append(str(error))
            continue
        if failures:
            notes.append(
                f"pipenv {version} did not install on Python {target[1]} ({failures[0]}), "
                f"so it ran on Python {runner_version}. The image installs pipenv on Python "
                f"{target[1]}: make sure it can."
            )
        return venv
    raise LockError("; ".join(failures))


def lock_with_pipenv(project, answers, environ, notes, config_list=""):
    """pipenv lock, then verify, in a private temporary directory that is removed after."""
    source = project / "source"
    version = answers["pipenv_version"]
    runners, target, more_notes = choose_runner(answers, environ)
    notes += more_notes
    venv = installed_pipenv(version, runners, target, environ, notes)
    temp_dir = tempfile.mkdtemp(prefix="flask-appstack-pipenv-")
    try:
        env = pipenv_environment(environ, config_list, temp_dir)
        print(f"flask-appstack: locking source/Pipfile with pipenv {version} for Python {target[1]} ...", flush=True)
        result = run_pipenv(venv, ["lock", "--python", str(target[0])], source, env, timeouts(environ)[1])
        if result.returncode != 0 or not (source / "Pipfile.lock").is_file():
            raise LockError(tool_failure(result.stdout + result.stderr, source))
        verified = run_pipenv(venv, ["verify"], source, env, timeout=120)
        if verified.returncode != 0:
            raise LockError(f"Pipfile.lock does not match the Pipfile: {last_error(verified.stdout + verified.stderr)}")
    finally:
        shutil.rmtree(temp_dir, ignore_errors=True)
    return f"Pipfile.lock: locked with pipenv {version} for Python {target[1]}; it matches the Pipfile."


def lock_dependencies(project, answers, environ, kept=(), config_list=""):
    """Lock source/Pipfile. Nothing here fails the generation: a lock that cannot be made,
    for whatever reason of this machine's, leaves the project without Pipfile.lock and
    says why and how to lock later."""
    reason = skip_reason(answers, environ, kept)
    if reason:
        return Lock("skipped", f"Pipfile.lock: not locked ({reason}).", how_to_lock(project, answers))
    source, notes = project / "source", []
    try:
        summary = lock_with_pipenv(project, answers, environ, notes, config_list)
    except (LockError, OSError) as error:
        reason = os_error_reason(error, environ) if isinstance(error, OSError) else str(error)
        (source / "Pipfile.lock").unlink(missing_ok=True)  # a half-made lock is worse than none
        return Lock(
            "failed",
            "Pipfile.lock: NOT LOCKED, pipenv lock failed (see below).",
            failure_message(project, answers, reason, environ),
        )
    except (KeyboardInterrupt, Interrupted):
        (source / "Pipfile.lock").unlink(missing_ok=True)
        return Lock(
            "interrupted",
            "Pipfile.lock: NOT LOCKED, the lock was interrupted.",
            lock_warning(project, answers, "the lock was interrupted"),
        )
    finally:
        shutil.rmtree(source / ".venv", ignore_errors=True)  # the venv pipenv made to resolve in
    return Lock("locked", " ".join([summary, *notes]))


def index_hint(project, environ):
    """Why the Pipfile's index may be out of reach: unset credentials, or no answer."""
    import urllib.error  # here, not at the top: most bakes never need it, and it costs 50 ms
    import urllib.request

    pipfile = (project / "source" / "Pipfile").read_text()
    hints = []
    for url in re.findall(r'^url = "([^"]+)"', pipfile, flags=re.MULTILINE):
        plain = re.sub(r"//[^/@]*@", "//", url)
        if "${PYPI_USER}" in url and not (environ.get("PYPI_USER") and environ.get("PYPI_TOKEN")):
            hints.append(f"{plain} takes its credentials from PYPI_USER and PYPI_TOKEN, which are not set")
        try:
            # The URL is the Pipfile's own index, an http(s) URL (pre-gen checks it): B310 is moot.
            urllib.request.urlopen(plain, timeout=10).close()  # nosec B310
        except urllib.error.HTTPError:
            pass  # it answers; maybe only with credentials
        except (urllib.error.URLError, OSError, ValueError) as error:
            hints.append(f"{plain} cannot be reached ({getattr(error, 'reason', error)})")
    return hints


def how_to_lock(project, answers):
    return "\n".join(
        [
            "Lock before the first push (the image build refuses a missing or stale lock):",
            f"  with pipenv {answers['pipenv_version']} installed:  cd {project} && make lock",
            f'  or in the base image, with Docker (README.md, "Build locally"):  cd {project} && make lock-in-container',
        ]
    )


BAR = "!" * 78


def lock_warning(project, answers, what_happened, details=()):
    """The loud warning of a lock that was not made: what happened, the details, the project
    kept, and how to lock later."""
    return "\n".join(
        [
            BAR,
            f"flask-appstack: WARNING: source/Pipfile.lock was NOT created: {what_happened}.",
            *details,
            "The project was generated and kept; only the lock is missing.",
            how_to_lock(project, answers),
            BAR,
        ]
    )


def failure_message(project, answers, reason, environ):
    hints = [f"  Hint: {hint}" for hint in index_hint(project, environ)]
    return lock_warning(project, answers, "pipenv lock failed", [f"  Reason: {reason}", *hints])


# ---- checks of the result ------------------------------------------------------------


def data_file_problems(project):
    """Every YAML and JSON file parses (chart/templates/ holds Helm templates, not YAML)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's, where PyYAML has it
    found = []
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        if not path.is_file() or relative.startswith(("chart/templates/", "source/.venv/")):
            continue
        try:
            if path.suffix in (".yaml", ".yml"):
                list(yaml.load_all(path.read_text(encoding="utf-8"), Loader=loader))
            elif path.suffix == ".json" or path.name == "Pipfile.lock":
                json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, yaml.YAMLError) as error:
            found.append(f"{relative} does not parse: {' '.join(str(error).split())}")
    return found


def helm_warnings(project, answers, helm, environ):
    """`helm lint --strict` of the chart with each hostspace's values, by the user's helm,
    all hostspaces at once.

    Warnings, not failures: that helm is whatever version the user has; the template's own
    suite lints every chart with the helm versions it pins."""
    chart = project / "chart"
    runs = {}
    try:
        for space in hostspaces(answers):
            values = chart / f"values-{space}.yaml"
            args = [helm, "lint", "--strict", str(chart)] + (["-f", str(values)] if values.is_file() else [])
            runs[space] = start_tool(args, environ, stderr=subprocess.STDOUT)
        outputs = {space: run.communicate(timeout=120)[0] for space, run in runs.items()}
    except (OSError, subprocess.SubprocessError) as error:
        for run in runs.values():
            run.kill()
            run.wait()
        return [f"{helm} could not lint the chart: {error}"]
    return [
        f"{helm} refuses chart/ with values-{space}.yaml: {last_error(outputs[space])}"
        for space, run in runs.items()
        if run.returncode != 0
    ]


# ---- what to do next -----------------------------------------------------------------


def next_steps(project, answers, lines):
    pipeline = "azure-pipelines.yaml" if (project / "azure-pipelines.yaml").is_file() else "the pipeline definition"
    steps = [
        f"flask-appstack: generated {answers['app_name']} in {project}",
        *[f"  {line}" for line in lines],
        "Next steps:",
        f"  cd {project}",
        '  git init -b main && git add . && git commit -m "Initial commit from flask-appstack"',
        "  git remote add origin <the empty Azure Repos repository's URL> && git push -u origin main",
        f"  Then create the pipeline in Azure DevOps from {pipeline}: it extends devops/flask.yml@spaces",
        f"  from {answers['pipeline_repository']} and deploys to {', '.join(hostspaces(answers))}.",
        "  README.md explains the rest; `make help` lists the local gates.",
    ]
    return "\n".join(steps)


def lint_chart(project, answers, environ, summary):
    """Lint the chart with the helm on PATH, if any; returns warnings."""
    helm = shutil.which("helm", path=environ.get("PATH"))
    if not helm or not (project / "chart" / "Chart.yaml").is_file():
        summary.append("chart: not linted here (no helm on PATH); `make helm-lint` does it.")
        return []
    warnings = helm_warnings(project, answers, helm, environ)
    if warnings:
        summary.append(f"chart: WARNING: {helm} refuses the chart (see below); `make helm-lint` repeats the check.")
        return [
            *warnings,
            "Your helm may be older or newer than the platform's: the chart targets Helm 3.17 "
            "and Helm 4; run `helm version` and update helm if it is older.",
        ]
    summary.append(f"chart: `helm lint --strict` passes with each hostspace's values ({helm}).")
    return []


def finish(project, answers, environ):
    """Everything after generation; returns the exit status (1 only for a broken file)."""
    kept = preexisting_files(project)
    restore_originals(project)
    write_hostspace_values(project, kept)
    config_list = pip_config_list(environ)  # read once: for the Pipfile's index and for pipenv
    summary = [use_machine_index(project, answers, environ, config_list, kept)]
    broken = data_file_problems(project)
    if broken:
        print(
            "flask-appstack: the generated project is broken (a template bug, please report it):",
            *[f"  - {problem}" for problem in broken],
            sep="\n",
            file=sys.stderr,
        )
        return 1
    warnings = lint_chart(project, answers, environ, summary)
    lock = lock_dependencies(project, answers, environ, kept, config_list)
    summary.append(lock.summary)
    print(next_steps(project, answers, summary), flush=True)
    if warnings:
        print("flask-appstack: WARNING:", *[f"  - {warning}" for warning in warnings], sep="\n", file=sys.stderr)
    if lock.detail:  # last, so that it is what the user sees: loud when the lock failed
        print(lock.detail, file=sys.stderr if lock.status in ("failed", "interrupted") else sys.stdout)
    return 0


# {% endraw %}
def main():
    # ''' on purpose: Jinja's tojson writes every ' as \u0027, so no answer can close it.
    answers = json.loads(r'''{{ cookiecutter | tojson }}''')  # fmt: skip
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    signal.signal(signal.SIGTERM, on_sigterm)  # ends the lock as Ctrl-C does: cleanly, project kept
    return finish(Path.cwd(), answers, os.environ)


if __name__ == "__main__":
    sys.exit(main())
