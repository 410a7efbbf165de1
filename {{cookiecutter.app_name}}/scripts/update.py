"""The template's releases for this project: which one it has, which is the newest, taking one.

    python3 scripts/update.py outdated          this project's release and the newest one; exit 1 when they differ
    python3 scripts/update.py update [VERSION]  move to the newest release, or to VERSION (1.4.0 or v1.4.0; a
                                                branch such as main only when named), list conflicts, re-lock
    python3 scripts/update.py template URL      record where the template lives (a project made from a folder)

`make outdated` and `make update [VERSION=X.Y.Z]` run it. Releases are the template's `vX.Y.Z`
tags, found with `git ls-remote --tags` at the template's URL, which `.flask-appstack.json`
records with the release the project has (`.cruft.json` holds the same URL, and the commit
cruft compares with). Standard library only, Python 3.9 or newer; cruft and git on PATH.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

IDENTITY = Path(".flask-appstack.json")
CRUFT = Path(".cruft.json")
PIPFILE = "source/Pipfile"
TAG = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
CONFLICT_MARKERS = "^(<<<<<<<|>>>>>>>)( |$)"


class Refusal(Exception):
    """A reason to stop, for the user: printed as it is."""


def read_json(path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError:
        raise Refusal(f"{path} does not parse: resolve the conflict in it first") from None


def run(*args, check=True, **options):
    """A command's output; a failure is a Refusal that says what failed."""
    try:
        done = subprocess.run(args, capture_output=True, text=True, **options)
    except OSError as error:
        raise Refusal(f"{args[0]} could not run: {error}") from None
    if check and done.returncode:
        raise Refusal(f"`{' '.join(args)}` failed: {(done.stderr or done.stdout).strip()}")
    return done


def version_key(version):
    return tuple(int(part) for part in version.split("."))


def releases(url):
    """{"X.Y.Z": commit} of the template's release tags at `url`."""
    listed = run("git", "ls-remote", "--tags", url, env={**os.environ, "GIT_TERMINAL_PROMPT": "0"})
    found = {}
    for line in listed.stdout.splitlines():
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

    def __init__(self, root=Path(".")):
        self.root = root
        self.identity = read_json(root / IDENTITY)
        self.cruft = read_json(root / CRUFT)
        self.url = self.identity.get("template") or self.cruft.get("template")
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


def outdated(project):
    found = releases(project.url)
    latest, have = newest(found), project.release(found)
    if latest is None:
        print(f"make outdated: the template at {project.url} has no release yet.")
        return 0
    if have == latest:
        print(f"make outdated: this project is at {latest}, the newest release of {project.url}.")
        return 0
    print(
        f"make outdated: this project is at {have or 'an unknown release'}; the newest release of "
        f"{project.url} is {latest}: `make update` takes it (the template's CHANGELOG.md says what changes)."
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
    bare = version.removeprefix("v")
    if re.fullmatch(r"\d+\.\d+\.\d+", bare):
        if bare not in found:
            known = ", ".join(sorted(found, key=version_key)[-5:]) or "none"
            raise Refusal(f"VERSION={version}: the template at {url} has no release {bare} (the newest: {known})")
        return f"v{bare}", bare
    return version, version  # a branch or a commit, asked for by name


def check_repository(root):
    if run("git", "rev-parse", "-q", "--verify", "HEAD", check=False, cwd=root).returncode:
        raise Refusal(
            "make update merges into the last commit, and this repository has none: "
            "commit the project as it was generated first (git add -A && git commit)"
        )
    if run("git", "status", "--porcelain", cwd=root).stdout.strip():
        raise Refusal("make update needs a clean working tree: commit or stash your changes first")


def conflicts(root):
    """Files with conflict markers, and *.rej files (even where an old .gitignore hides them)."""
    rejected = run("git", "ls-files", "--others", "--", "*.rej", cwd=root).stdout.split()
    marked = run("git", "grep", "-l", "-E", CONFLICT_MARKERS, "--", ".", ":!*.rej", check=False, cwd=root)
    return rejected + marked.stdout.split()


def update(project, version, lock):
    if not project.cruft:
        raise Refusal(f"cruft update reads {CRUFT}, which this project lacks: see docs/updates.md to link it")
    check_repository(project.root)
    found = releases(project.url)
    ref, name = target(version, found, project.url)
    have = project.release(found)
    if found.get(name) == project.cruft.get("commit") or (not version and have == name):
        # (A project made from a commit after the newest release records that release: taking
        # the release again would undo the later commits.)
        print(f"make update: this project is at {name} already; nothing to take.")
        return 0
    # The template's post-generation hook must not lock in cruft's renders (older hooks only
    # know this variable); make update locks once below, from the merged Pipfile.
    env = {**os.environ, "APPSTACK_SKIP_LOCK": "1", "GIT_TERMINAL_PROMPT": "0"}
    cruft = ["cruft", "update", "--skip-apply-ask", "--checkout", ref]
    done = run(*cruft, check=False, cwd=project.root, env=env)
    if done.returncode:
        sys.stderr.write(done.stdout + done.stderr)
        raise Refusal(f"`{' '.join(cruft)}` failed (its output is above); the project is unchanged")
    changed = run("git", "status", "--short", "--untracked-files=all", cwd=project.root).stdout.rstrip()
    print(f"make update: {have or 'this project'} -> {name} (the template's CHANGELOG.md says what changed):")
    print(changed or "  no file changed")
    pipfile_changed = bool(run("git", "status", "--porcelain", "--", PIPFILE, cwd=project.root).stdout.strip())
    clashes = conflicts(project.root)
    if clashes:
        then = "then: make lock, test and commit" if pipfile_changed else "then test and commit"
        print(
            "make update: the template's changes conflict with yours in:",
            *[f"  {path}" for path in clashes],
            f"Resolve them (a *.rej file holds the hunks that did not apply; delete it after), {then}.",
            sep="\n",
            file=sys.stderr,
        )
        return 1
    if not pipfile_changed:
        print("make update: done; source/Pipfile is unchanged, the lock stays.")
        return 0
    print("make update: source/Pipfile changed: re-locking", flush=True)
    return lock()


def set_template(project, url):
    """Record `url` as the template's home in .cruft.json and .flask-appstack.json."""
    for path, state in ((CRUFT, project.cruft), (IDENTITY, project.identity)):
        if state:
            state["template"] = url
            (project.root / path).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")
            print(f"{path}: the template is {url}")
    return 0


def main(argv):
    command, *rest = argv or [""]
    if command == "outdated" and not rest:
        action = outdated
    elif command == "update" and len(rest) <= 1:

        def action(project):
            lock = [sys.executable, str(project.root / "scripts" / "lock.py"), "lock"]
            return update(project, rest[0] if rest else "", lambda: subprocess.run(lock).returncode)

    elif command == "template" and len(rest) == 1:

        def action(project):
            return set_template(project, rest[0])

    else:
        sys.exit(__doc__)
    try:
        return action(Project())
    except Refusal as refusal:
        message = str(refusal)
        print(message if message.startswith("make ") else f"make {command}: {message}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
