"""Post-generation: finish the project cookiecutter wrote (runs inside it, cwd = project).

1. split chart/values-hostspaces.yaml into one values-<hostspace>.yaml per hostspace;
2. without a package_index answer, write this machine's pip index into source/Pipfile if the pipeline reaches it;
3. warn of example answers in production; lint the chart (helm on PATH);
4. lock with the project's own `scripts/lock.py lock` (as `make lock`) unless lock_dependencies is false or
   APPSTACK_SKIP_LOCK=1, and report. Never `git init`.
Exit 0: the project kept, and whatever this machine got wrong one warning: why, and how to lock later. That every
generated YAML and JSON file parses is the template's suite's to show, for every combination (tests/unit/test_bake.py),
not each bake's. Stop signals (Ctrl-C, SIGTERM, SIGHUP, SIGQUIT; cookiecutter's end counts as SIGTERM) go on to the
tool the hook waits for, which cleans up; once the hook holds them, it removes the pre-gen hook's INCOMPLETE mark.
Only main() holds Jinja (the answers, as JSON). Standard library only.
"""

# {% raw %}  (Jinja leaves everything down to the closing tag alone)
from __future__ import annotations

import os
import sys

if __name__ == "__main__" and os.path.realpath(sys.path[0]) == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)  # run from cookiecutter's temporary folder: see pre_gen_project.py

import contextlib
import json
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from collections import namedtuple
from pathlib import Path

HOSTSPACE_VALUES = Path("chart/values-hostspaces.yaml")
HEADER = re.compile(r"^# (values-[a-z0-9-]+\.yaml)\b", re.MULTILINE)
SKIP_LOCK_VARIABLE = "APPSTACK_SKIP_LOCK"
LOCK_PROGRAM = Path("scripts/lock.py")
PACKAGE_INDEX = "package_index=https://<your index>/simple"  # the answer, as the command line takes it
INCOMPLETE = "GENERATION-INCOMPLETE.txt"  # the pre-gen hook's mark of a project not finished yet
TEMPFILE_NAME = r"tmp[a-z0-9_]{8}"  # tempfile's: cruft's render folders, cookiecutter's copies of the hooks
STOP_SIGNALS = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT") if hasattr(signal, name)]
CORES = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1  # helms at once


def split_hostspace_values(text):
    """{file name: content} of the hostspace values, each document headed `# values-<name>.yaml`."""
    files = {}
    for document in re.split(r"^---[ \t]*$\n?", text, flags=re.MULTILINE):
        match = HEADER.search(document)
        if match:
            files[match.group(1)] = document.strip("\n") + "\n"
    return files


def write_hostspace_values(project):
    combined = project / HOSTSPACE_VALUES
    for name, content in split_hostspace_values(combined.read_text()).items():
        (combined.parent / name).write_text(content)
    combined.unlink()


def hostspaces(answers):
    return [name.strip() for name in answers["hostspaces"].split(",")]


# ---- the package index ---------------------------------------------------------------


# What the pipeline's build agents cannot reach: another scheme than http(s) (a file:// URL, a
# path) is on this machine's disk; a loopback host is this machine itself.
SAFE_URL = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]+)?(/[A-Za-z0-9._~%+/-]*)?")


def pip_config_files(environ, home=None):
    """pip's configuration files on Linux and macOS, in the order pip reads them (a later one
    wins): global, user (not when PIP_CONFIG_FILE names a file that exists), site (this
    interpreter's), PIP_CONFIG_FILE; none when that is os.devnull."""
    own = environ.get("PIP_CONFIG_FILE")
    if own == os.devnull:
        return []
    home = Path(home or Path.home())
    folders = [path for path in (environ.get("XDG_CONFIG_DIRS") or "/etc/xdg").split(os.pathsep) if path]
    system = [Path(path) / "pip" / "pip.conf" for path in folders] + [Path("/etc/pip.conf")]
    user = [home / ".pip" / "pip.conf"]
    if sys.platform == "darwin":
        user.append(home / "Library" / "Application Support" / "pip" / "pip.conf")
    user.append(Path(environ.get("XDG_CONFIG_HOME") or home / ".config") / "pip" / "pip.conf")
    if own and Path(own).exists():
        user = []
    return system + user + [Path(sys.prefix) / "pip.conf"] + ([Path(own)] if own else [])


def machine_index_url(environ, home=None):
    """This machine's pip index-url (extra indexes and find-links are no index of their own), by
    pip's precedence: PIP_INDEX_URL, else [install] index-url, else [global] index-url, a later
    file winning. Empty when none. Read here rather than by starting pip, which costs as much as
    the whole bake."""
    if environ.get("PIP_INDEX_URL"):
        return environ["PIP_INDEX_URL"].strip()
    import configparser

    found = {}
    for path in pip_config_files(environ, home):
        parser = configparser.RawConfigParser()
        with contextlib.suppress(configparser.Error, OSError, UnicodeDecodeError):
            parser.read(path, encoding="utf-8")  # a file pip would refuse decides nothing here
        for section in ("global", "install"):
            for key in ("index-url", "index_url"):
                if parser.has_option(section, key):
                    found[section] = " ".join(parser.get(section, key).split())
    return found.get("install") or found.get("global") or ""


def unreachable_by_the_pipeline(url):
    """Why the pipeline's build agents cannot use an index at `url`, or ""."""
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
    None, with why not)."""
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


def use_machine_index(project, answers, environ):
    """Without a package_index answer, write the machine's index into source/Pipfile, if the
    pipeline reaches it; else no [[source]] (pipenv's default index). Returns the summary's line."""
    if answers["package_index"]:
        return f"Pipfile: the package index is {answers['package_index']} (package_index)."
    url = machine_index_url(environ)
    if not url:
        return "Pipfile: no [[source]]: this machine's pip has no index-url, so pipenv uses its default index."
    block, why_not = index_source(url)
    if block is None:  # e.g. a proxy on 127.0.0.1 or a folder of wheels: the pipeline has neither
        words = json.loads(environ.get("APPSTACK_GENERATE_COMMAND") or "null") or ["cookiecutter", answers["_template"]]
        return (
            f"Pipfile: this machine's index-url was not written ({why_not}); pipenv uses its default index.\n"
            f"  For an index the pipeline reaches, set package_index: {shlex.join([*words, PACKAGE_INDEX])}"
        )
    pipfile = project / "source" / "Pipfile"
    pipfile.write_text(block + "\n" + pipfile.read_text().lstrip("\n"))
    origin = "PIP_INDEX_URL" if environ.get("PIP_INDEX_URL") else "pip's configured index-url"
    return (
        f"Pipfile: the package index is {url}, from this machine's {origin}; it stays in "
        "source/Pipfile's [[source]] for good: edit that block (then `make lock`) to use another."
    )


# ---- the tools the hook waits for, and stop signals ----------------------------------

STOPPED, CHILDREN = [], []  # the first stop signal the hook got; the tools it passes it on to
PARENT = os.getppid()  # cookiecutter: when the parent changes, cookiecutter is gone


def on_stop(signum, frame, children=CHILDREN):
    """Remember the first stop signal and pass it on to every tool the hook waits for (or to `children`)."""
    STOPPED[:] = STOPPED or [signum]
    for child in children:
        with contextlib.suppress(OSError):  # it has ended
            child.send_signal(signum)


def start(args, environ, **options):
    """Start a tool with no input; a stop signal already received reaches it at once."""
    args = [str(arg) for arg in args]
    process = subprocess.Popen(args, env=environ, stdin=subprocess.DEVNULL, text=True, errors="replace", **options)
    CHILDREN.append(process)
    if STOPPED:
        on_stop(STOPPED[0], None, [process])
    return process


def wait(process, timeout=None):
    """process.communicate(), killed after `timeout` s; cookiecutter's end counts as SIGTERM."""
    deadline = time.monotonic() + (timeout or float("inf"))
    try:
        while True:
            try:
                return process.communicate(timeout=0.5)
            except subprocess.TimeoutExpired:
                if os.getppid() != PARENT and not STOPPED:
                    on_stop(signal.SIGTERM, None)
                if time.monotonic() > deadline:
                    process.kill()
                    process.communicate()
                    raise
    finally:
        CHILDREN.remove(process)


# ---- the lock: the project's own program ------------------------------------------------

# status: locked, skipped, failed or interrupted; summary: its line; detail: why, how to lock later
Lock = namedtuple("Lock", "status summary detail", defaults=("",))


def skip_reason(answers, environ):
    if not answers["lock_dependencies"]:
        return "lock_dependencies is false"
    if environ.get(SKIP_LOCK_VARIABLE, "").lower() in ("1", "true", "yes"):
        return f"{SKIP_LOCK_VARIABLE} is set"
    return ""


def lock_dependencies(project, answers, environ):
    """Run `scripts/lock.py lock` with this interpreter (the project's Python is the
    program's to find) and say what came of it. Nothing here fails the generation."""
    reason = skip_reason(answers, environ)
    if reason:
        return Lock("skipped", f"Pipfile.lock: not locked ({reason}).", how_to_lock(project))
    status, errors = None, ""
    if not STOPPED:
        try:
            process = start([sys.executable, LOCK_PROGRAM, "lock"], environ, cwd=project, stderr=subprocess.PIPE)
            errors = wait(process)[1]
            status = process.returncode
        except OSError as error:
            status, errors = 1, f"{sys.executable} could not run {LOCK_PROGRAM}: {error}"
    if status == 0:  # a stop that came after the lock was made changes nothing
        return Lock("locked", f"Pipfile.lock: locked by {LOCK_PROGRAM} (`make lock` locks again).")
    if STOPPED or status is None or status < 0 or status > 128:
        by = [f"  By: {signal.Signals(STOPPED[0]).name}"] if STOPPED else []
        warning = lock_warning(project, "the lock was interrupted", by)
        return Lock("interrupted", "Pipfile.lock: NOT LOCKED, the lock was interrupted.", warning)
    lines = [line for line in errors.splitlines() if line.strip()] or ["it ended without saying why"]
    details = [f"  Reason: {re.sub(r'^lock[.]py lock: ', '', lines[0])}", *lines[1:]]
    warning = lock_warning(project, "pipenv lock failed", details)
    return Lock("failed", "Pipfile.lock: NOT LOCKED, pipenv lock failed (see below).", warning)


LOCK_FIRST = "before the first push: the image build refuses a missing or stale lock"


def how_to_lock(project):
    intro = f"Lock {LOCK_FIRST}:"
    docker = 'or in the base image, with Docker (docs/local-development.md, "Build locally"):'
    return f"{intro}\n  cd {project} && make lock\n  {docker}\n    cd {project} && make lock-in-container"


def lock_warning(project, what_happened, details=()):
    """The loud warning of a lock not made: what happened, details, the project kept, how to lock."""
    bar, kept = "!" * 78, "The project was generated and kept; only the lock is missing."
    head = f"flask-appstack: WARNING: source/Pipfile.lock was NOT created: {what_happened}."
    return "\n".join([bar, head, *details, kept, how_to_lock(project), bar])


def last_error(output):
    """The most telling line of a tool's output: its last line that speaks of an error."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    return ([line for line in lines if "error" in line.lower()] or lines or ["no output"])[-1]


def helm_warnings(project, answers, helm, environ):
    """`helm lint --strict` with each hostspace's values, by the user's helm, one per core at a time: warnings."""
    chart, waiting, runs, done = project / "chart", hostspaces(answers), {}, {}
    try:
        while (waiting and not STOPPED) or runs:
            while waiting and len(runs) < CORES and not STOPPED:
                values = chart / f"values-{waiting[0]}.yaml"
                args = [helm, "lint", "--strict", chart] + (["-f", values] if values.is_file() else [])
                runs[waiting.pop(0)] = start(args, environ, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            for space in list(runs)[:1]:  # the oldest (none when stopped first): a core is free when it ends
                done[space] = (runs[space], wait(runs.pop(space), timeout=120)[0])
    except (OSError, subprocess.SubprocessError) as error:
        for run in runs.values():
            run.kill()
        return [f"{helm} could not lint the chart: {error}"]
    refused = [(space, out) for space, (run, out) in done.items() if run.returncode]
    return [f"{helm} refuses chart/ with values-{space}.yaml: {last_error(out)}" for space, out in refused]


def lint_chart(project, answers, environ, summary):
    """Lint the chart with the helm on PATH, if any; returns warnings."""
    helm = shutil.which("helm", path=environ.get("PATH"))
    if not helm or not (project / "chart" / "Chart.yaml").is_file():
        summary.append("chart: not linted here (no helm on PATH); `make helm-lint` does it.")
        return []
    warnings = helm_warnings(project, answers, helm, environ)
    if STOPPED:
        summary.append("chart: not linted (interrupted); `make helm-lint` does it.")
        return []
    if warnings:
        summary.append(f"chart: WARNING: {helm} refuses the chart (see below); `make helm-lint` repeats the check.")
        why = "Your helm may be older or newer than the platform's: the chart targets Helm 3.17 and Helm 4"
        return [*warnings, f"{why}; run `helm version` and update helm if it is older."]
    summary.append(f"chart: `helm lint --strict` passes with each hostspace's values ({helm}).")
    return []


def placeholder_warnings(project, answers):
    """A line for each answer with an `example` label (platform_domain's default) in production's values."""
    chart, last = project / "chart", hostspaces(answers)[-1]  # production: the platform's defaults, the team's files
    values = "".join((chart / name).read_text() for name in ("defaults.yaml", "values.yaml", f"values-{last}.yaml"))
    return [
        f"WARNING: {name} {answers[name]} is an example, which production's chart values use: answer yours "
        f"({name}=<value>), or set it for every project in a cookiecutter user config's default_context (README)"
        for name in ("platform_domain", "custom_url", "docker_registry")
        if "example" in re.split(r"[.:]", answers[name]) and answers[name] in values
    ]


# ---- what to do next -----------------------------------------------------------------


def next_steps(project, answers, lines, locked=True):
    """What was generated, then what to do, in the order a person does it: lock (when the hook
    did not), commit, push, make the pipeline."""
    steps = [
        f"flask-appstack: generated {answers['app_name']} in {project}",
        *[f"  {line}" for entry in lines for line in entry.splitlines()],
        "Next steps:",
        f"  cd {project}",
        *([] if locked else [f"  make lock   # {LOCK_FIRST} (in the base image, with Docker: make lock-in-container)"]),
        '  git init -b main && git add . && git commit -m "Initial commit from flask-appstack"',
        "  git remote add origin <the empty Azure Repos repository's URL> && git push -u origin main",
        "  Then create the pipeline in Azure DevOps from azure-pipelines.yaml: it extends devops/flask.yml@spaces",
        f"  from {answers['pipeline_repository']} and deploys to {', '.join(hostspaces(answers))}.",
        "  docs/README.md is the platform's manual; `make help` lists the local gates.",
    ]
    return "\n".join(steps)


def report(*lines, stream=sys.stdout):
    """Print; a terminal that is gone (SIGHUP) costs nothing but the lines."""
    with contextlib.suppress(OSError):
        print(*lines, sep="\n", file=stream, flush=True)


def cruft_rendering(project, answers):
    """Whether cruft renders the template (`cruft diff`, `update`): `_commit`, in a fresh tempfile folder."""
    parent = project.resolve().parent  # `_commit` first: the first gettempdir() writes a file to try the folder
    fresh = "_commit" in answers and parent.parent == Path(tempfile.gettempdir()).resolve()
    return fresh and bool(re.fullmatch(TEMPFILE_NAME, parent.name))


def finish(project, answers, environ):
    """Everything after generation; returns the exit status, 0."""
    write_hostspace_values(project)
    summary = [use_machine_index(project, answers, environ)]
    if cruft_rendering(project, answers):  # quiet: no lock for `cruft diff`, no "generated" for an update
        return 0
    summary += placeholder_warnings(project, answers)
    warnings = lint_chart(project, answers, environ, summary) if not STOPPED else []
    lock = lock_dependencies(project, answers, environ)
    summary.append(lock.summary)
    report(next_steps(project, answers, summary, locked=lock.status == "locked"))
    if warnings:
        report("flask-appstack: WARNING:", *[f"  - {warning}" for warning in warnings], stream=sys.stderr)
    if lock.status in ("failed", "interrupted"):  # last, loud, so that it is what the user sees
        report(lock.detail, stream=sys.stderr)
    return 0


# {% endraw %}
def main():
    # ''' on purpose: Jinja's tojson writes every ' as \u0027, so no answer can close it.
    answers = json.loads(r'''{{ cookiecutter | tojson }}''')  # fmt: skip
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    for each in STOP_SIGNALS:
        signal.signal(each, on_stop)  # passed on to the tool running, which ends cleanly
    with contextlib.suppress(OSError):  # the project is the hook's to finish from now on, stopped or not
        os.remove(INCOMPLETE)
    return finish(Path.cwd(), answers, os.environ)


if __name__ == "__main__":
    if re.fullmatch(TEMPFILE_NAME + r"\.py", os.path.basename(__file__)):  # cookiecutter's copy: pre_gen_project.py
        with contextlib.suppress(OSError):
            os.remove(__file__)
    sys.exit(main())
