"""The template's releases and answers for this project: which release it has, which is the
newest, taking one, changing an answer.

    python3 scripts/update.py outdated               this project's release and the newest; exit 1 when they differ
    python3 scripts/update.py update [VERSION]       move to the newest release, or to VERSION (2.1.0 or v2.1.0; a
                                                     branch such as main only when named)
    python3 scripts/update.py reconfigure [--version VERSION] KEY=VALUE ...
                                                     change answers, at the project's release (or at VERSION)
    python3 scripts/update.py keep-values            once, after taking 2.1.0 from 2.0.0: chart/values.yaml keeps
                                                     only what the team had changed in it
    python3 scripts/update.py link ANSWERS_JSON [URL VERSION]
                                                     write .cruft.json for a project made with plain cookiecutter
                                                     (URL and VERSION: one made before 2.0.0)
    python3 scripts/update.py template URL           record where the template lives

`make outdated`, `make update [VERSION=X.Y.Z]` and `make reconfigure ANSWERS="..."` run it. Releases
are the template's `vX.Y.Z` tags at the URL `.flask-appstack.json` records; `.cruft.json` holds
the commit and the answers the project was rendered from (cruft's format, so `cruft diff` works).

How a change is taken, for an update and for new answers alike: the template is rendered twice,
as the project has it (its commit and answers) and as it is to be (the new release, or the new
answers), each file of the difference is merged three-way into the project (`git merge-file`),
and `.cruft.json` records the new state. The team's files (`[tool.cruft] skip` in pyproject.toml)
take no release; they take what new answers change in them (a new hostspace's values file, say).
A file both sides changed is merged, and where the same lines changed it keeps conflict markers;
a file the team changed and the release removes stays, listed; every conflict is listed and the
exit status is 1. Nothing is written until every render and merge has succeeded, and then all
at once, stop signals held, so an interruption leaves the project as it was or fully updated.

Needs python3 (3.9 or newer) and git only: the template is rendered with cookiecutter, pinned in
scripts/update-requirements.txt, which this program installs once into
${XDG_CACHE_HOME:-~/.cache}/flask-appstack, as scripts/lock.py installs pipenv.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import tempfile
from collections import namedtuple
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lock  # noqa: E402  (scripts/lock.py: the cache, the tool runner, the stop signals)

IDENTITY = Path(".flask-appstack.json")
CRUFT = Path(".cruft.json")
PIPFILE = "source/Pipfile"
VALUES = "chart/values.yaml"
REQUIREMENTS = Path(__file__).resolve().parent / "update-requirements.txt"
# A release tag: ASCII digits, no leading zeros.
TAG = re.compile(r"v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)", re.ASCII)
VERSION = re.compile(r"v?(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)", re.ASCII)
TIMEOUT_VARIABLE = "APPSTACK_GIT_TIMEOUT"
GIT_TIMEOUT = 120  # seconds for each call to the template's host
CONFLICT_LABELS = ("yours", "as generated", "the template's")


class Refusal(Exception):
    """A reason to stop, for the user: printed as it is; nothing was changed."""


class TimedOut(Refusal):
    """A program gave no result within its time limit (and was ended, with all it started)."""


# ---- running programs ---------------------------------------------------------------------


def git_timeout(environ=os.environ):
    value = environ.get(TIMEOUT_VARIABLE, "")
    return int(value) if value.isdigit() and int(value) > 0 else GIT_TIMEOUT


def run(args, cwd=None, env=None, timeout=None, what=None):
    """A program's result (output captured, no input); it runs in a process group of its own,
    ended whole on a time limit (TimedOut) or a stop signal."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    try:
        return lock.run_tool(args, what or args[0], env, timeout or 24 * 3600, cwd=cwd)
    except lock.LockError:  # run_tool's only one: the time limit
        raise TimedOut(f"{what or args[0]} gave no result within {timeout} s") from None
    except OSError as error:
        raise Refusal(f"{args[0]} could not run: {error.strerror}") from None


def git(*args, cwd=None, check=True):
    done = run(["git", *args], cwd=cwd)
    if check and done.returncode:
        raise Refusal(f"`git {' '.join(map(str, args))}` failed: {(done.stderr or done.stdout).strip()}")
    return done.stdout


def remote(url, *args, cwd=None):
    """A git command that talks to the template's host, within APPSTACK_GIT_TIMEOUT seconds."""
    timeout = git_timeout()
    try:
        done = run(["git", *args], cwd=cwd, timeout=timeout, what=f"git {args[0]}")
    except TimedOut:
        raise Refusal(
            f"the template's host did not answer within {timeout} s ({url}): check the network and the URL in "
            f"{IDENTITY} ({TIMEOUT_VARIABLE} sets the limit)"
        ) from None
    if done.returncode:
        raise Refusal(f"cannot read the template at {url}: {lock.last_error(done.stderr or done.stdout)}")
    return done.stdout


# ---- releases -----------------------------------------------------------------------------


def read_json(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        raise Refusal(f"{path} does not parse: resolve the conflict in it first") from None


def version_key(version):
    return tuple(int(part) for part in version.split("."))


def releases(url):
    """{"X.Y.Z": commit} of the template's release tags at `url`."""
    found = {}
    for line in remote(url, "ls-remote", "--tags", url).splitlines():
        commit, _, ref = line.partition("\t")
        name = ref.removeprefix("refs/tags/")
        match = TAG.fullmatch(name.removesuffix("^{}"))
        # An annotated tag is listed twice: itself, then (^{}) the commit it names.
        if match and (name.endswith("^{}") or ".".join(match.groups()) not in found):
            found[".".join(match.groups())] = commit
    return found


def newest(found):
    return max(found, key=version_key) if found else None


class Project:
    """What the project records about its template."""

    def __init__(self, root=Path("."), url=None):
        self.root = root
        self.identity = read_json(root / IDENTITY)
        self.cruft = read_json(root / CRUFT)
        self.url = url or self.identity.get("template") or self.cruft.get("template")
        if not self.url:
            raise Refusal(
                f"neither {IDENTITY} nor {CRUFT} says where the template is: link the project first "
                "(docs/updates.md, 'A project without .cruft.json')"
            )

    def release(self, found):
        """The release the project has: recorded, or (a project made before it was) the one
        whose commit .cruft.json names; None when neither says."""
        recorded = self.identity.get("release")
        if recorded:
            return recorded
        at = [version for version, commit in found.items() if commit == self.cruft.get("commit")]
        return at[0] if at else None

    def answers(self):
        """The answers it was rendered with: .cruft.json's context without cookiecutter's own keys."""
        context = self.cruft.get("context", {}).get("cookiecutter", {})
        return {key: value for key, value in context.items() if not key.startswith("_")}


def outdated(project):
    found = releases(project.url)
    latest, have = newest(found), project.release(found)
    if latest is None:
        print(f"make outdated: the template at {project.url} has no release yet.")
        return 0
    if have == latest:
        print(f"make outdated: this project is at {latest}, the newest release of {project.url}.")
        return 0
    commit = project.cruft.get("commit") or project.identity.get("commit") or ""
    where = have or (f"commit {commit[:7]}, which is no release" if commit else "an unknown release")
    print(
        f"make outdated: this project is at {where}; the newest release of {project.url} is {latest}: "
        "`make update` takes it (the template's CHANGELOG.md says what changes)."
    )
    return 1


def target(version, found, url):
    """(the ref to check out, its name for people): the newest release, a given one, or a
    branch or commit given by name."""
    if not version:
        latest = newest(found)
        if latest is None:
            raise Refusal(f"the template at {url} has no release tag yet: name a branch with VERSION=main to take it")
        return f"v{latest}", latest
    match = VERSION.fullmatch(version)
    if match:
        bare = ".".join(match.groups())
        if bare not in found:
            known = ", ".join(sorted(found, key=version_key)[-5:]) or "none"
            raise Refusal(f"VERSION={version}: the template at {url} has no release {bare} (the newest: {known})")
        return f"v{bare}", bare
    return version, version  # a branch or a commit, asked for by name


def check_repository(root, command):
    if run(["git", "rev-parse", "-q", "--verify", "HEAD"], cwd=root).returncode:
        raise Refusal(
            f"make {command} merges into the last commit, and this repository has none: "
            "commit the project as it was generated first (git add -A && git commit)"
        )
    if git("status", "--porcelain", cwd=root).strip():
        raise Refusal(f"make {command} needs a clean working tree: commit or stash your changes first")


# ---- rendering the template ----------------------------------------------------------------


def renderer(environ=os.environ):
    """The Python of a venv (built once, in the cache, as lock.py builds pipenv's) with the pinned cookiecutter."""
    requirements = [
        line.strip() for line in REQUIREMENTS.read_text().splitlines() if line.strip() and not line.startswith("#")
    ]
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    venv = lock.cache_root(environ) / f"update-{digest}-py{sys.version_info[0]}.{sys.version_info[1]}"
    announce = f"update.py: installing cookiecutter ({REQUIREMENTS.name}) into {venv} (once) ..."
    try:
        marker = "\n".join(requirements) + "\n"
        lock.venv_once(venv, marker, sys.executable, ["-r", REQUIREMENTS], dict(environ), announce)
    except lock.LockError as error:  # a step failed, the disk is full, or the index did not answer in time
        raise Refusal(f"cookiecutter did not install into {venv}: {error}") from None
    except OSError as error:  # the cache cannot be written
        raise Refusal(f"cookiecutter did not install: {lock.os_error_reason(error, environ)}") from None
    return lock.venv_python(venv)


class Template:
    """A clone of the template, in a temporary folder, that renders projects."""

    def __init__(self, url, folder):
        self.url, self.folder = url, Path(folder)
        self.repo = self.folder / "template"
        remote(url, "clone", "--quiet", "--no-checkout", url, str(self.repo))

    def commit(self, ref):
        done = run(["git", "rev-parse", "-q", "--verify", f"{ref}^{{commit}}"], cwd=self.repo)
        if done.returncode:
            raise Refusal(f"the template at {self.url} has no {ref}")
        return done.stdout.strip()

    def comes_after(self, commit, other):
        """Whether `commit` is a later commit than `other`, on its line."""
        if commit == other:
            return False
        return run(["git", "merge-base", "--is-ancestor", other, commit], cwd=self.repo).returncode == 0

    def file(self, commit, name):
        done = run(["git", "show", f"{commit}:{name}"], cwd=self.repo)
        return done.stdout if done.returncode == 0 else None

    def render(self, jobs):
        """Render each job ({"commit", "answers", and "given" for new answers: render_jobs})
        into a folder of its own; returns [(the rendered project, its context)]. Answers the
        template's pre-generation hook refuses are a Refusal that lists them."""
        plan = self.folder / "renders.json"
        message = self.folder / "refusal.txt"
        plan.write_text(json.dumps({"template": str(self.repo), "url": self.url, "jobs": jobs}))
        # The renders, and whatever cookiecutter leaves in the temporary folder (its copies of the
        # hooks), stay in ours. A render in a fresh tmpXXXXXXXX folder there is what the template's
        # post-generation hook knows as cruft's: it stays quiet and neither locks nor lints.
        temp = self.folder / "tmp"
        temp.mkdir(exist_ok=True)
        env = {"APPSTACK_SKIP_LOCK": "1", "APPSTACK_MESSAGE_FILE": str(message), "TMPDIR": str(temp)}
        done = run([renderer(), __file__, "_render", plan], env=env, what="cookiecutter")
        if done.returncode:
            refused = message.read_text() if message.exists() else ""
            if refused:
                raise Refusal(answers_refused(refused))
            raise Refusal(f"the template did not render: {lock.last_error(done.stderr or done.stdout)}")
        results = json.loads(plan.read_text())["results"]
        return [(Path(result["project"]), result["context"]) for result in results]


def answers_refused(message):
    """The pre-generation hook's refusal, its problem lines under our own first line."""
    problems = [line for line in message.splitlines() if line.startswith("  ")]
    return "\n".join([f"the template refuses {len(problems)} answer(s), so nothing was changed:", *problems])


def render_jobs(plan_file):
    """In the renderer's Python (cookiecutter's API, as cruft uses it): render each job. A job
    with "given" (the answers a person changed) lets each answer derived from others
    (pipeline_ref from app_version) follow them, unless its value differed from its derivation
    in the first job: then the team had set it, and it stays."""
    from cookiecutter.config import get_user_config
    from cookiecutter.environment import StrictEnvironment
    from cookiecutter.exceptions import FailedHookException
    from cookiecutter.generate import generate_context, generate_files
    from cookiecutter.prompt import prompt_for_config, render_variable

    plan = json.loads(Path(plan_file).read_text())
    repo = Path(plan["template"])
    sys.path.append(str(repo))  # the template's Jinja extension, as cookiecutter's own import patch does
    config = get_user_config()
    results, first = [], None
    for job in plan["jobs"]:
        subprocess.run(["git", "checkout", "-q", "--force", job["commit"]], cwd=repo, check=True)
        raw = json.loads((repo / "cookiecutter.json").read_text(encoding="utf-8"))
        answers = {key: value for key, value in job["answers"].items() if key in raw}
        if "given" in job and first is not None:
            for key, derived in first["derived"].items():
                if key not in job["given"] and first["context"].get(key) == derived:
                    answers.pop(key, None)
        context = generate_context(str(repo / "cookiecutter.json"), config["default_context"], answers)
        context["cookiecutter"] = prompt_for_config(context, no_input=True)
        context["cookiecutter"]["_template"] = plan["url"]
        context["cookiecutter"]["_commit"] = job["commit"]
        try:
            project = generate_files(repo_dir=str(repo), context=context, output_dir=tempfile.mkdtemp())
        except FailedHookException:
            return 2  # the hook said why, on stderr and into APPSTACK_MESSAGE_FILE
        env = StrictEnvironment(context=context)
        templated = {key: value for key, value in raw.items() if isinstance(value, str) and "{{" in value}
        derived = {key: render_variable(env, value, context["cookiecutter"]) for key, value in templated.items()}
        results.append({"project": project, "context": context["cookiecutter"], "derived": derived})
        first = first or results[-1]
    Path(plan_file).write_text(json.dumps({**plan, "results": results}))
    return 0


# ---- merging a change into the project ------------------------------------------------------


def files_of(root):
    """{relative path: Path} of every file under `root` (a render or the project), without .git."""
    found = {}
    for folder, folders, files in os.walk(root):
        folders[:] = [name for name in folders if name != ".git"]
        for name in files:
            path = Path(folder) / name
            found[path.relative_to(root).as_posix()] = path
    return found


def skip_patterns(project_dir):
    """`[tool.cruft] skip` of a rendered project's pyproject.toml: the team's paths."""
    pyproject = Path(project_dir) / "pyproject.toml"
    text = pyproject.read_text(encoding="utf-8") if pyproject.is_file() else ""
    section = text.split("[tool.cruft]", 1)[1] if "[tool.cruft]" in text else ""
    listed = re.search(r"^skip\s*=\s*\[(.*?)\]", section, re.MULTILINE | re.DOTALL)
    return re.findall(r'"([^"]+)"', listed.group(1)) if listed else []


def matches(path, patterns):
    """Whether `path` is one of `patterns` (a file, a folder and all under it, or a glob), as cruft reads them."""
    import fnmatch

    return any(
        fnmatch.fnmatchcase(path, pattern) if "*" in pattern else path == pattern or path.startswith(pattern + "/")
        for pattern in patterns
    )


def read(path):
    return path.read_bytes() if path is not None and path.is_file() else None


def merge_three_way(yours, base, theirs):
    """(merged bytes, conflicts) of `git merge-file`: yours and theirs, both changed from base."""
    with tempfile.TemporaryDirectory(prefix="flask-appstack-merge-") as folder:
        paths = []
        for name, content in zip(("yours", "base", "theirs"), (yours, base or b"", theirs)):
            paths.append(Path(folder) / name)
            paths[-1].write_bytes(content)
        labels = [word for label in CONFLICT_LABELS for word in ("-L", label)]
        done = subprocess.run(["git", "merge-file", "-p", *labels, *map(str, paths)], capture_output=True)
    if done.returncode < 0 or done.returncode > 127:
        raise Refusal(f"git merge-file failed: {done.stderr.decode(errors='replace').strip()}")
    return done.stdout, done.returncode


# A file the change writes: its new content (None: removed), mode, what happens to it (added,
# changed, removed) and, when the merge could not choose, why ("" when it could).
Change = namedtuple("Change", "path content mode kind conflict")


def plan(base, theirs, project, skip=(), only=None):
    """The Changes that taking base -> theirs (two renders) makes in the project. Paths
    matching `skip` are the team's: created when new, else left alone. With `only`, only
    those paths count."""
    base_files, their_files, ours = files_of(base), files_of(theirs), files_of(project)
    changes = []
    for path in sorted(set(base_files) | set(their_files)):
        if only is not None and not matches(path, only):
            continue
        b, t, o = read(base_files.get(path)), read(their_files.get(path)), read(ours.get(path))
        if b == t or o == t or (o is None and b is not None):
            continue  # the template left it, the project has it already, or the team removed it
        if matches(path, skip) and o is not None:
            continue  # a team's file: never changed by a release
        mode = (ours.get(path) or their_files.get(path)).stat().st_mode
        kind = "added" if o is None else "removed" if t is None else "changed"
        if o == b:
            changes.append(Change(path, t, mode, kind, ""))
        elif t is None:
            changes.append(
                Change(path, o, mode, kind, "you changed it, and the template no longer makes it (removed or renamed)")
            )
        elif b"\0" in o + t:
            changes.append(Change(path, o, mode, kind, "both changed it, and it is not text: merge it by hand"))
        else:
            merged, conflicts = merge_three_way(o, b, t)
            why = "both changed the same lines: see its <<<<<<< markers" if conflicts else ""
            changes.append(Change(path, merged, mode, kind, why))
    return changes


def write(project, changes):
    """Write every change, each file replaced at once (never half-written)."""
    for change in changes:
        target = project / change.path
        if change.content is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        fresh = target.with_name(f".{target.name}.flask-appstack-new")
        fresh.write_bytes(change.content)
        os.chmod(fresh, change.mode & 0o777)
        os.replace(fresh, target)


def record(project, context, commit, checkout):
    """.cruft.json: the commit and the answers the project is now rendered from."""
    state = {**project.cruft, "commit": commit, "checkout": checkout, "context": {"cookiecutter": context}}
    (project.root / CRUFT).write_text(json.dumps(state, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def report(command, heading, changes):
    """The files taken and the conflicts, as a person reads them; the exit status."""
    print(f"make {command}: {heading}")
    for change in changes:
        if not change.conflict:
            print(f"  {change.kind:8} {change.path}")
    if not changes:
        print("  no file changed")
    conflicts = [change for change in changes if change.conflict]
    if not conflicts:
        return 0
    print(f"make {command}: your changes and the template's conflict in:", file=sys.stderr)
    for change in conflicts:
        print(f"  {change.path}: {change.conflict}", file=sys.stderr)
    print(
        "Resolve each (edit out the markers; move what you need out of a file the template no longer makes, then "
        "delete it), then test and commit.",
        file=sys.stderr,
    )
    return 1


class Held:
    """Stop signals held while the project is written (it is written whole), or while lock.py
    starts (relock); then they arrive."""

    def __enter__(self):
        self.mask = lock.hold_stop_signals()

    def __exit__(self, *exc):
        lock.restore_signals(self.mask)


def take(project, command, renders, heading, merges, commit, checkout):
    """Merge the renders into the project, record the new state, report, do what the release
    needs beyond a merge (MIGRATIONS), re-lock when the Pipfile changed; the exit status."""
    changes = [change for base, theirs, skip, only in merges for change in plan(base, theirs, project.root, skip, only)]
    pipfile = any(change.path == PIPFILE for change in changes)
    with Held():
        write(project.root, changes)
        record(project, renders[-1][1], commit, checkout)
        STAGE["now"] = "written"
        status = report(command, heading, changes)
    pending = pending_migrations(project.root)
    if status:
        after = ["`make lock` locks source/Pipfile again"] if pipfile else []
        after += [f"`make update` again finishes: {what}" for what, _ in pending]
        if after:
            lock.complain(f"make {command}: once they are resolved and committed, " + "; ".join(after) + ".")
        return status
    for _, migrate in pending:
        migrate(project.root)
    if not pipfile:
        print(f"make {command}: done; source/Pipfile is unchanged, the lock stays.")
        return 0
    STAGE["now"] = "locking"
    print(f"make {command}: source/Pipfile changed: re-locking", flush=True)
    if relock(project.root):
        lock.complain(
            f"make {command}: the change is taken, but source/Pipfile.lock is out of date: run `make lock`, then "
            "test and commit."
        )
        return 1
    return 0


def relock(root):
    """scripts/lock.py lock, its output the user's; a stop signal goes on to it, which cleans up.
    It starts with the stop signals held, which it takes once its handlers are in place: a
    Ctrl-C while its Python starts up would otherwise print the interpreter's traceback."""
    process = None
    try:
        with Held():  # a stop that came meanwhile arrives as it ends, and goes on to lock.py
            process = subprocess.Popen([sys.executable, str(root / "scripts" / "lock.py"), "lock"])
        return process.wait()
    except lock.Interrupted as stop:
        if process:
            process.send_signal(stop.signum)
            process.wait()
        raise


def update(project, version):
    if not project.cruft:
        raise Refusal(f"updates read {CRUFT}, which this project lacks: see docs/updates.md to link it")
    check_repository(project.root, "update")
    found = releases(project.url)
    ref, name = target(version, found, project.url)
    have, here = project.release(found), project.cruft.get("commit", "")
    if found.get(name) == here:
        return nothing_to_take(project, f"this project is at {name} already")
    answers = project.answers()
    with tempfile.TemporaryDirectory(prefix="flask-appstack-update-") as folder:
        template = Template(project.url, folder)
        old, new = template.commit(here), template.commit(ref)
        if template.comes_after(old, new):
            if not version:  # taking the newest release would undo the commits after it
                return nothing_to_take(project, f"this project is at {old[:7]}, a commit after {name}")
            print(f"make update: {name} is older than this project's template ({have or old[:7]}): a downgrade.")
        renders = template.render([{"commit": old, "answers": answers}, {"commit": new, "answers": answers}])
        (base, _), (theirs, _) = renders
        heading = f"{have or old[:7]} -> {name} (the template's CHANGELOG.md says what changed):"
        merges = [(base, theirs, skip_patterns(theirs), None)]
        return take(project, "update", renders, heading, merges, new, ref if ref != new else None)


def nothing_to_take(project, where):
    """The project has what it asked for: only what a release needs done beyond a merge, if pending."""
    pending = pending_migrations(project.root)
    for _, migrate in pending:
        migrate(project.root)
    if not pending:
        print(f"make update: {where}; nothing to take.")
    return 0


# The words cookiecutter takes for yes and no.
TRUTH = {
    "yes": True,
    "y": True,
    "true": True,
    "1": True,
    "on": True,
    "no": False,
    "n": False,
    "false": False,
    "0": False,
    "off": False,
}


def parse_answers(words, questions):
    """{key: value} of KEY=VALUE words, typed as the template's cookiecutter.json types them;
    a Refusal listing every word it cannot take."""
    answers, wrong = {}, []
    asked = [key for key in questions if not key.startswith("_")]
    for word in words:
        key, equals, value = word.partition("=")
        default = questions.get(key)
        if not equals or key not in asked:
            wrong.append(f"{word}: not KEY=VALUE with one of its questions ({', '.join(asked)})")
        elif isinstance(default, bool):
            if value.lower() not in TRUTH:
                wrong.append(f"{key}={value}: {key} is yes or no")
            else:
                answers[key] = TRUTH[value.lower()]
        elif isinstance(default, list) and value not in default:
            wrong.append(f"{key}={value}: {key} is one of {', '.join(map(str, default))}")
        else:
            answers[key] = value
    if not words:
        raise Refusal('name the answers to change: make reconfigure ANSWERS="key=value ..."')
    if wrong:
        raise Refusal(
            "\n".join(["ANSWERS cannot be used, so nothing was changed:", *(f"  - {line}" for line in wrong)])
        )
    return answers


def reconfigure(project, words, version=""):
    if not project.cruft:
        raise Refusal(f"reconfigure reads {CRUFT}, which this project lacks: see docs/updates.md to link it")
    check_repository(project.root, "reconfigure")
    found = releases(project.url) if version else {}
    recorded = project.answers()
    with tempfile.TemporaryDirectory(prefix="flask-appstack-reconfigure-") as folder:
        template = Template(project.url, folder)
        old = template.commit(project.cruft["commit"])
        ref, name = target(version, found, project.url) if version else (old, "")
        new = template.commit(ref)
        given = parse_answers(words, json.loads(template.file(new, "cookiecutter.json") or "{}"))
        jobs = [{"commit": old, "answers": recorded}]
        if new != old:
            jobs.append({"commit": new, "answers": recorded})
        jobs.append({"commit": new, "answers": {**recorded, **given}, "given": sorted(given)})
        renders = template.render(jobs)
        changed = " ".join(f"{key}={shlex.quote(answer_text(value))}" for key, value in given.items())
        heading = f"{changed}{f' at {name}' if name else ''}:"
        theirs = renders[-1][0]
        if new == old:
            merges = [(renders[0][0], theirs, (), None)]
        else:  # the release for the template's files, the new answers alone for the team's
            team = skip_patterns(theirs)
            merges = [(renders[0][0], theirs, team, None), (renders[1][0], theirs, (), team)]
        checkout = ref if ref != new else project.cruft.get("checkout")
        return take(project, "reconfigure", renders, heading, merges, new, checkout)


def answer_text(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


# ---- what a release needs done to the team's files, beyond a merge ------------------------------

# 1.0.0 kept the platform's code in the team's package; 2.0.0 moved it to source/scale/, wired in
# by one call in create_app(). A project updated from 1.0.0 still holds the old modules (the
# team's paths take no release), which this takes out, and 1.0.0's factory, which it rewires.
FACTORY = "source/api/__init__.py"
OLD_PLATFORM = (
    "source/api/config.py",
    "source/api/errors.py",
    "source/api/health.py",
    "source/api/logs.py",
    "source/tests/test_config_and_logs.py",
    "source/tests/test_errors.py",
    "source/tests/test_health.py",
)
REWIRING = (
    ("from flask import Flask\n", "import os\n\nfrom flask import Flask\n\nimport scale\n"),
    ("from . import errors, health, logs\n", ""),
    ("from .config import settings_from_env\n", ""),
    (
        "app.config.from_mapping(settings_from_env())",
        'app.config.setdefault("GREETING", os.environ.get("GREETING", "Hello"))',
    ),
    (
        "    logs.configure(app)\n    errors.register(app)\n    app.register_blueprint(health.bp)\n",
        "    scale.init_app(app)\n",
    ),
)


def platform_in_the_teams_package(root):
    factory = root / FACTORY
    return (
        (root / "source" / "scale").is_dir()
        and (root / "source" / "api" / "health.py").is_file()
        and factory.is_file()
        and "scale.init_app(app)" not in factory.read_text(encoding="utf-8")
    )


def move_the_platform_out_of_the_teams_package(root):
    """1.0.0's platform modules out, and create_app() calling scale.init_app(app); a factory
    that is not 1.0.0's is a Refusal that names the line to change by hand."""
    factory = root / FACTORY
    text = factory.read_text(encoding="utf-8")
    for old, new in REWIRING:
        if old not in text:
            raise Refusal(
                f"{FACTORY} is not 1.0.0's create_app() ({old.strip()!r} is not there): make it call "
                "scale.init_app(app) by hand and delete source/api/{config,errors,health,logs}.py (the template's "
                "CHANGELOG, 2.0.0, By hand), then commit"
            )
        text = text.replace(old, new, 1)
    with Held():
        factory.write_text(text, encoding="utf-8")
        for name in OLD_PLATFORM:
            (root / name).unlink(missing_ok=True)
    print(
        f"make update: {FACTORY} calls scale.init_app(app); 1.0.0's platform modules left source/api and source/tests."
    )


# (what it is, whether a project needs it, what does it): run after a merge without conflicts.
MIGRATIONS = (
    (
        "the platform's code out of source/api (a project made from 1.0.0)",
        platform_in_the_teams_package,
        move_the_platform_out_of_the_teams_package,
    ),
)


def pending_migrations(root):
    return [(what, migrate) for what, needed, migrate in MIGRATIONS if needed(root)]


# ---- once, for projects that took 2.1.0 from 2.0.0 -------------------------------------------


def keep_values(project):
    """chart/values.yaml as this release has it (the team's file) plus what the team had
    changed in 2.0.0's (the template's file of every platform default), as values: the
    platform's defaults leave the file, now chart/defaults.yaml."""
    added = git("log", "--diff-filter=A", "--format=%H", "-1", "--", "chart/defaults.yaml", cwd=project.root).strip()
    before = f"{added}~1" if added else "HEAD"
    state = json.loads(git("show", f"{before}:{CRUFT}", cwd=project.root))
    teams = git("show", f"{before}:{VALUES}", cwd=project.root)
    if not (project.root / "chart" / "defaults.yaml").is_file():
        raise Refusal("this project's chart has no defaults.yaml yet: take the release first (make update)")
    answers = {key: value for key, value in state["context"]["cookiecutter"].items() if not key.startswith("_")}
    with tempfile.TemporaryDirectory(prefix="flask-appstack-values-") as folder:
        template = Template(project.url, folder)
        jobs = [
            {"commit": state["commit"], "answers": answers},
            {"commit": project.cruft["commit"], "answers": answers},
        ]
        (old, _), (new, _) = template.render(jobs)
        given = Path(folder) / "teams-values.yaml"
        given.write_text(teams, encoding="utf-8")
        done = run([renderer(), __file__, "_changed_values", given, old / VALUES], what="the values' difference")
        if done.returncode:
            raise Refusal(f"cannot read {VALUES} as YAML: {lock.last_error(done.stderr)}")
        kept = done.stdout
        text = (new / VALUES).read_text(encoding="utf-8")
    with Held():
        (project.root / VALUES).write_text(text + (f"\n{kept}" if kept.strip() else ""), encoding="utf-8")
        (project.root / f"{VALUES}.rej").unlink(missing_ok=True)
    shown = "".join(f"  {line}\n" for line in kept.splitlines()) or "  (none: you had changed no value)\n"
    print(f"make keep-values: {VALUES} keeps the values you had changed in {before}'s:\n{shown}", end="")
    print("Check it (`make helm-lint`), then test and commit.")
    return 0


def changed_values(teams, defaults):
    """Of a values mapping, what differs from the defaults: maps key by key, the rest whole."""
    changed = {}
    for key, value in (teams or {}).items():
        default = (defaults or {}).get(key, changed)  # `changed`: a marker no value equals
        if isinstance(value, dict) and isinstance(default, dict):
            value = changed_values(value, default)
            if value:
                changed[key] = value
        elif value != default:
            changed[key] = value
    return changed


def print_changed_values(teams_file, defaults_file):
    """In the renderer's Python (it has PyYAML): changed_values() of two files, as YAML."""
    import yaml

    teams, defaults = (yaml.safe_load(Path(name).read_text(encoding="utf-8")) for name in (teams_file, defaults_file))

    class Indented(yaml.SafeDumper):
        """Lists indented under their key, as the project's yamllint wants them."""

        def increase_indent(self, flow=False, indentless=False):
            return super().increase_indent(flow, False)

    changed = changed_values(teams, defaults)
    if changed:
        text = yaml.dump(changed, Dumper=Indented, sort_keys=False, default_flow_style=False, allow_unicode=True)
        print(text, end="")
    return 0


def link(project, answers_json, version=""):
    """.cruft.json for a project made with plain cookiecutter: the commit and release that
    .flask-appstack.json records (or the release named, for a project made before 2.0.0), and
    the answers (docs/updates.md renders them)."""
    if project.cruft:
        raise Refusal(f"{CRUFT} exists already: this project is linked")
    if version:
        found = releases(project.url)
        _, release = target(version, found, project.url)
        commit = found[release]
    else:
        commit, release = project.identity.get("commit"), project.identity.get("release")
    if not commit:
        raise Refusal(f"{IDENTITY} names no commit of the template: name the release it was made from")
    try:
        answers = json.loads(answers_json)
    except ValueError as error:
        raise Refusal(f"the answers are not JSON ({error})") from None
    if not isinstance(answers, dict):
        raise Refusal('the answers are a JSON object, such as \'{"app_name": "orders"}\'')
    context = {**answers, "_template": project.url, "_commit": commit}
    project.cruft = {"template": project.url, "commit": commit, "checkout": f"v{release}" if release else None}
    project.cruft.update(context={"cookiecutter": context}, directory=None)
    (project.root / CRUFT).write_text(json.dumps(project.cruft, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{CRUFT}: linked to {project.url} at {release or commit}; commit it, then `make update`.")
    return 0


def set_template(project, url):
    """Record `url` as the template's home in .cruft.json and .flask-appstack.json."""
    for path, state in ((CRUFT, project.cruft), (IDENTITY, project.identity)):
        if state:
            state["template"] = url
            (project.root / path).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
            print(f"{path}: the template is {url}")
    return 0


# ---- the command line ----------------------------------------------------------------------

# Where an interruption leaves the project, for the message that says so.
STAGE = {"now": "nothing written"}


def action_for(command, rest, environ):
    """The function that runs `command` on a Project, or None for a wrong command line."""
    if command == "outdated" and not rest:
        return outdated
    if command == "update" and len(rest) <= 1:
        return lambda project: update(project, rest[0] if rest else "")
    if command == "reconfigure":
        version = rest[1] if rest[:1] == ["--version"] and len(rest) > 1 else ""
        words = rest[2:] if version else rest
        words = words or shlex.split(environ.get("ANSWERS", ""))
        return lambda project: reconfigure(project, words, version)
    if command == "keep-values" and not rest:
        return keep_values
    if command == "link" and len(rest) in (1, 3):
        return lambda project: link(project, rest[0], *rest[2:])
    if command == "template" and len(rest) == 1:
        return lambda project: set_template(project, rest[0])
    return None


def interrupted(command, signum):
    name = signal.Signals(signum).name
    where = {
        "nothing written": "nothing was changed: run it again",
        "written": "the change is taken (git status shows it): test and commit",
        "locking": "the change is taken, but source/Pipfile.lock is out of date: run `make lock`, then test and commit",
    }[STAGE["now"]]
    return f"make {command}: interrupted ({name}); {where}."


def main(argv, environ=os.environ):
    command, *rest = argv or [""]
    if command == "_render":  # in the renderer's Python
        return render_jobs(rest[0])
    if command == "_changed_values":
        return print_changed_values(*rest)
    action = action_for(command, rest, environ)
    if action is None:
        sys.exit(__doc__)
    for each in lock.STOP_SIGNALS:
        signal.signal(each, lock.on_stop)
    try:
        return action(Project(url=rest[1] if command == "link" and len(rest) == 3 else None))
    except Refusal as refusal:
        lock.complain(f"make {command}: {refusal}")
        return 1
    except lock.Interrupted as stop:
        lock.complain(interrupted(command, stop.signum))
        return 128 + stop.signum


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)  # in a pipe, stdout and stderr keep the order written
    sys.exit(main(sys.argv[1:]))
