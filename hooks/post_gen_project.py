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

Exit status: 1 when a generated file is broken (a template bug; cookiecutter then
deletes the project unless --keep-project-on-failure). A failed lock is not that: the
project is kept, the hook exits 0 and prints why the lock failed and how to lock later.

Like pre_gen_project.py, only main() holds Jinja (the answers, as JSON data); the rest is
plain Python that the tests import unrendered. Standard library plus PyYAML, which
cookiecutter itself depends on. Nothing is written outside the project directory except
the cached pipenv under ${XDG_CACHE_HOME:-~/.cache}/flask-appstack and pipenv's own caches.
"""
# {% raw %}  (Jinja leaves everything down to the closing tag alone)
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import NamedTuple

HOSTSPACE_VALUES = Path("chart/values-hostspaces.yaml")
HEADER = re.compile(r"^# (values-[a-z0-9-]+\.yaml)\b", re.MULTILINE)
SKIP_LOCK_VARIABLE = "APPSTACK_SKIP_LOCK"
LOCK_TIMEOUT = 900  # seconds; a resolver that needs longer is stuck on the network


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


def write_hostspace_values(project):
    combined = project / HOSTSPACE_VALUES
    if not combined.exists():
        return
    for name, content in split_hostspace_values(combined.read_text()).items():
        (combined.parent / name).write_text(content)
    combined.unlink()


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


def pip_config_list():
    try:
        return subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True, text=True, timeout=60, check=False,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return ""  # no pip beside cookiecutter: PIP_INDEX_URL alone decides


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


def use_machine_index(project, answers, environ, config_list=None):
    """Without a package_index answer, write the machine's index into source/Pipfile.

    When pip has no index-url, the Pipfile keeps no [[source]]: pipenv then uses its
    default index (and records it in Pipfile.lock). Returns a line for the summary."""
    if answers["package_index"]:
        return f"Pipfile: the package index is {answers['package_index']} (package_index)."
    url = configured_index_url(pip_config_list() if config_list is None else config_list, environ)
    if not url:
        return "Pipfile: no [[source]]: this machine's pip has no index-url, so pipenv uses its default index."
    block, why_not = index_source(url)
    pipfile = project / "source" / "Pipfile"
    if block is None:
        return f"Pipfile: this machine's index-url was not written ({why_not}); pipenv uses its default index."
    pipfile.write_text(block + "\n" + pipfile.read_text().lstrip("\n"))
    return f"Pipfile: the package index is this machine's index-url, {url}."


# ---- interpreters --------------------------------------------------------------------

def interpreter_candidates(version, environ, home):
    """Executables that may be Python `version` (X.Y or X.Y.Z): pyenv's exact X.Y.Z
    first, then pythonX.Y on PATH, then pyenv's X.Y.* from the newest."""
    minor = ".".join(version.split(".")[:2])
    pyenv = Path(environ.get("PYENV_ROOT") or Path(home) / ".pyenv") / "versions"
    found = [pyenv / version / "bin" / f"python{minor}"] if version.count(".") == 2 else []
    for directory in environ.get("PATH", "").split(os.pathsep):
        if directory:
            found.append(Path(directory) / f"python{minor}")
    if pyenv.is_dir():
        patches = [path for path in pyenv.glob(f"{minor}.*") if re.fullmatch(r"[0-9]+", path.name.split(".", 2)[-1])]
        for path in sorted(patches, key=lambda path: int(path.name.split(".")[2]), reverse=True):
            found.append(path / "bin" / f"python{minor}")
    unique = []
    for path in found:
        if path not in unique:
            unique.append(path)
    return unique


def python_version(executable):
    """The X.Y.Z an executable reports, or None when it does not run (e.g. a pyenv shim
    of a version that is not selected)."""
    try:
        result = subprocess.run(
            [str(executable), "-c", "import sys; print('%d.%d.%d' % sys.version_info[:3])"],
            capture_output=True, text=True, timeout=30, check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    output = result.stdout.strip()
    return output if result.returncode == 0 and re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+", output) else None


def find_python(version, environ=os.environ, home=Path.home()):
    """(executable, X.Y.Z) of an interpreter of Python `version` on this machine, or None."""
    minor = ".".join(version.split(".")[:2])
    for candidate in interpreter_candidates(version, environ, home):
        if candidate.is_file() and os.access(candidate, os.X_OK):
            reported = python_version(candidate)
            if reported and reported.rsplit(".", 1)[0] == minor:
                return candidate, reported
    return None


# ---- pipenv in a cached venv ---------------------------------------------------------

class LockError(Exception):
    """A lock that could not be made; the message says why."""


def cache_root(environ=os.environ, home=Path.home()):
    return Path(environ.get("XDG_CACHE_HOME") or Path(home) / ".cache") / "flask-appstack"


def pipenv_requirements(version):
    """pipenv and what it needs beside it: pipenv releases of 2022 break with virtualenv
    newer than 20.16.2 (seen with 2022.7.24 on Python 3.11)."""
    requirements = [f"pipenv=={version}"]
    if int(version.split(".")[0]) < 2023:
        requirements.append("virtualenv==20.16.2")
    return requirements


def pipenv_venv_path(version, runner_version, environ=os.environ, home=Path.home()):
    minor = ".".join(runner_version.split(".")[:2])
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
        steps = [
            [str(runner), "-m", "venv", str(venv)],
            [str(venv_python(venv)), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
             *pipenv_requirements(version)],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, env=environ, check=False)
            if result.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                raise LockError(f"`{' '.join(step[2:4])} ...` failed with Python {runner_version}: "
                                f"{last_error(result.stdout + result.stderr)}")
        (venv / ".complete").write_text("\n".join(pipenv_requirements(version)) + "\n")
    return venv


def last_error(output):
    """The most telling line of a tool's output: its last ERROR line, else its last line."""
    lines = [line.strip() for line in strip_ansi(output).splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("ERROR")]
    errors = errors or [line for line in lines if "error" in line.lower()]
    return (errors or lines or ["no output"])[-1]


def strip_ansi(text):
    return re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", text)


# pip settings that only say how to reach an index, kept when pip's configuration is not.
NETWORK_SETTINGS = ("cert", "client-cert", "proxy", "trusted-host", "timeout", "default-timeout", "retries")


def pip_network_settings(pip_config_list):
    """pip's network settings from its configuration files, as PIP_* variables."""
    settings = {}
    for scope in ("global", "install"):  # install's settings win over global's, as in pip
        for match in re.finditer(rf"^{scope}\.([a-z-]+)='([^']*)'$", pip_config_list, flags=re.MULTILINE):
            if match[1] in NETWORK_SETTINGS:
                settings["PIP_" + match[1].upper().replace("-", "_")] = match[2]
    return settings


def pipenv_environment(environ, pip_config_list=""):
    """pipenv's environment for lock and verify.

    The project's venv goes inside it (removed after the lock); no prompts, colours,
    spinners, .env files, active venv or pyenv installs. And none of this machine's pip
    index settings: pipenv counts pip's index-url and extra-index-url as sources of a
    Pipfile without [[source]], so they would change the lock's hash, and the image, which
    builds without them, would refuse the lock (--deploy). An index the project needs is
    in the Pipfile (package_index, or the machine's index-url written there); how to reach
    it (certificate, proxy) is kept."""
    dropped = ("VIRTUAL_ENV", "PIPENV_PIPFILE", "PIPENV_PYTHON", "PIPENV_CUSTOM_VENV_NAME", "PIPENV_ACTIVE",
               "PIPENV_PYPI_MIRROR", "PYTHONHOME", "PYTHONPATH",
               "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_NO_INDEX", "PIP_CONFIG_FILE")
    env = {**pip_network_settings(pip_config_list),
           **{key: value for key, value in environ.items() if key not in dropped}}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIPENV_VENV_IN_PROJECT="1", PIPENV_IGNORE_VIRTUALENVS="1", PIPENV_YES="1", PIPENV_NOSPIN="1",
        PIPENV_DONT_USE_PYENV="1", PIPENV_DONT_USE_ASDF="1", PIPENV_DONT_LOAD_ENV="1",
        PIPENV_HIDE_EMOJIS="1", PIPENV_COLORBLIND="1", NO_COLOR="1", TERM="dumb", COLUMNS="200",
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


def run_pipenv(venv, args, source, env, timeout=LOCK_TIMEOUT):
    try:
        return subprocess.run(
            [str(venv_python(venv)), "-m", "pipenv", *args], cwd=source, env=env,
            capture_output=True, text=True, timeout=timeout, check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise LockError(f"`pipenv {' '.join(args)}` gave no result within {timeout} s") from error


class Lock(NamedTuple):
    status: str  # locked, skipped or failed
    summary: str  # one line for the summary
    detail: str = ""  # why it failed, and how to lock later


def skip_reason(answers, environ):
    if not answers["lock_dependencies"]:
        return "lock_dependencies is false"
    if environ.get(SKIP_LOCK_VARIABLE, "").lower() in ("1", "true", "yes"):
        return f"{SKIP_LOCK_VARIABLE} is set"
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
        notes.append(f"Python {answers['python_version']} is not on this machine (PATH, pyenv): "
                     f"locked for Python {current[1]} instead; markers may differ from the image's.")
        return [current], current, notes
    runners = [target] + ([current] if current[1] != target[1] else [])
    return runners, target, notes


def lock_dependencies(project, answers, environ):
    """Lock source/Pipfile; the lock never fails the generation (see the module doc)."""
    reason = skip_reason(answers, environ)
    if reason:
        return Lock("skipped", f"Pipfile.lock: not locked ({reason}).", how_to_lock(project, answers))
    source = project / "source"
    version = answers["pipenv_version"]
    runners, target, notes = choose_runner(answers, environ)
    env = pipenv_environment(environ, pip_config_list())
    try:
        venv, failures = None, []
        for runner, runner_version in runners:
            try:
                venv = ensure_pipenv(version, runner, runner_version, environ)
                break
            except LockError as error:
                failures.append(str(error))
        if venv is None:
            raise LockError("; ".join(failures))
        if failures:
            notes.append(f"pipenv {version} did not install on Python {target[1]} ({failures[0]}), "
                         f"so it ran on Python {runner_version}. The image installs pipenv on Python "
                         f"{answers['python_version']}: make sure it can.")
        print(f"flask-appstack: locking source/Pipfile with pipenv {version} for Python {target[1]} ...",
              flush=True)
        result = run_pipenv(venv, ["lock", "--python", str(target[0])], source, env)
        if result.returncode != 0 or not (source / "Pipfile.lock").is_file():
            raise LockError(last_error(result.stdout + result.stderr))
        verified = run_pipenv(venv, ["verify"], source, env, timeout=120)
        if verified.returncode != 0:
            raise LockError(f"Pipfile.lock does not match the Pipfile: {last_error(verified.stdout + verified.stderr)}")
    except LockError as error:
        (source / "Pipfile.lock").unlink(missing_ok=True)  # a half-made lock is worse than none
        return Lock("failed", "Pipfile.lock: NOT LOCKED, pipenv lock failed (see below).",
                    failure_message(project, answers, str(error), environ))
    finally:
        shutil.rmtree(source / ".venv", ignore_errors=True)  # the venv pipenv made to resolve in
    summary = f"Pipfile.lock: locked with pipenv {version} for Python {target[1]}; it matches the Pipfile."
    return Lock("locked", " ".join([summary, *notes]))


def index_hint(project, environ):
    """Why the Pipfile's index may be out of reach: unset credentials, or no answer."""
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


def readme_lock_command(project):
    """The README's command that locks in a container (section "Build locally")."""
    readme = project / "README.md"
    for line in readme.read_text(encoding="utf-8").splitlines() if readme.is_file() else []:
        if line.strip().startswith("docker run") and "pipenv lock" in line:
            return line.strip()
    return ""


def how_to_lock(project, answers):
    lines = [
        "Lock before the first push (the image build refuses a missing or stale lock):",
        f"  with pipenv {answers['pipenv_version']} installed:  cd {project} && make lock",
    ]
    command = readme_lock_command(project)
    if command:
        lines += ["  or in a container (README.md, \"Build locally\"):", f"    {command}"]
    return "\n".join(lines)


def failure_message(project, answers, reason, environ):
    bar = "!" * 78
    lines = [bar, "flask-appstack: WARNING: source/Pipfile.lock was NOT created: pipenv lock failed.",
             f"  Reason: {reason}"]
    lines += [f"  Hint: {hint}" for hint in index_hint(project, environ)]
    lines += ["The project was generated and kept; only the lock is missing.", how_to_lock(project, answers), bar]
    return "\n".join(lines)


# ---- checks of the result ------------------------------------------------------------

def data_file_problems(project):
    """Every YAML and JSON file parses (chart/templates/ holds Helm templates, not YAML)."""
    import yaml

    found = []
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        if not path.is_file() or relative.startswith(("chart/templates/", "source/.venv/")):
            continue
        try:
            if path.suffix in (".yaml", ".yml"):
                list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
            elif path.suffix == ".json" or path.name == "Pipfile.lock":
                json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, yaml.YAMLError) as error:
            found.append(f"{relative} does not parse: {' '.join(str(error).split())}")
    return found


def helm_problems(project, answers, helm):
    """`helm lint --strict` of the chart with each hostspace's values."""
    chart = project / "chart"
    found = []
    for space in hostspaces(answers):
        values = chart / f"values-{space}.yaml"
        args = [helm, "lint", "--strict", str(chart)] + (["-f", str(values)] if values.is_file() else [])
        result = subprocess.run(args, capture_output=True, text=True, timeout=300, check=False)
        if result.returncode != 0:
            found.append(f"helm lint of chart/ with values-{space}.yaml failed: {last_error(result.stdout + result.stderr)}")
    return found


# ---- what to do next -----------------------------------------------------------------

def next_steps(project, answers, lines):
    pipeline = "azure-pipelines.yaml" if (project / "azure-pipelines.yaml").is_file() else "the pipeline definition"
    steps = [
        f"flask-appstack: generated {answers['app_name']} in {project}",
        *[f"  {line}" for line in lines],
        "Next steps:",
        f"  cd {project}",
        "  git init -b main && git add . && git commit -m \"Initial commit from flask-appstack\"",
        "  git remote add origin <the empty Azure Repos repository's URL> && git push -u origin main",
        f"  Then create the pipeline in Azure DevOps from {pipeline}: it extends devops/flask.yml@spaces",
        f"  from {answers['pipeline_repository']} and deploys to {', '.join(hostspaces(answers))}.",
        "  README.md explains the rest; `make help` lists the local gates.",
    ]
    return "\n".join(steps)


def finish(project, answers, environ):
    """Everything after generation; returns the exit status."""
    write_hostspace_values(project)
    summary = [use_machine_index(project, answers, environ)]
    broken = data_file_problems(project)
    helm = shutil.which("helm", path=environ.get("PATH"))
    if helm and (project / "chart" / "Chart.yaml").is_file():
        broken += helm_problems(project, answers, helm)
        summary.append(f"chart: `helm lint --strict` passes with each hostspace's values ({helm}).")
    else:
        summary.append("chart: not linted here (no helm on PATH); `make helm-lint` does it.")
    if broken:
        print("flask-appstack: the generated project is broken (a template bug, please report it):",
              *[f"  - {problem}" for problem in broken], sep="\n", file=sys.stderr)
        return 1
    lock = lock_dependencies(project, answers, environ)
    summary.append(lock.summary)
    print(next_steps(project, answers, summary), flush=True)
    if lock.detail:  # last, so that it is what the user sees: loud when the lock failed
        print(lock.detail, file=sys.stderr if lock.status == "failed" else sys.stdout)
    return 0


# {% endraw %}
def main():
    answers = json.loads(r'''{{ cookiecutter | tojson }}''')
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(errors="backslashreplace")
    return finish(Path.cwd(), answers, os.environ)


if __name__ == "__main__":
    sys.exit(main())
