"""The template's releases: `vX.Y.Z` tags that CI makes from the CHANGELOG, and the identity
(canonical URL, release, commit) that every generated project records.

  python3 tools/release.py check   the tag CI would make at HEAD, or that there is none to make
  python3 tools/release.py tag     make it at HEAD and push it to origin (CI's release job, after
                                   the suite passed on main)

A release is the CHANGELOG's newest `## [X.Y.Z] - YYYY-MM-DD` section: when no tag names it
yet, CI tags the commit that brought it. Standard library only (CI runs it with a bare
python3); cookiecutter loads `TemplateIdentity` (cookiecutter.json's `_extensions`), which is
where Jinja comes in.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

RELEASE_HEADING = re.compile(r"^## \[(\d+)\.(\d+)\.(\d+)\] - \d{4}-\d\d-\d\d\s*$", re.MULTILINE)
TAG = re.compile(r"v(\d+)\.(\d+)\.(\d+)")
# cookiecutter's abbreviations, which git (and so cruft) cannot clone.
ABBREVIATIONS = {"gh:": "https://github.com/", "gl:": "https://gitlab.com/", "bb:": "https://bitbucket.org/"}


def newest_release(changelog):
    """The version of the CHANGELOG's newest release section ("2.1.0"), or None."""
    match = RELEASE_HEADING.search(changelog)
    return ".".join(match.groups()) if match else None


def version_key(version):
    return tuple(int(part) for part in version.split("."))


def release_tags(names):
    """{"X.Y.Z": name} of the release tags among `names` (tag names, `v` and three numbers)."""
    return {".".join(match.groups()): name for name in names if (match := TAG.fullmatch(name))}


def tag_to_make(changelog, tags):
    """The tag CI makes for this CHANGELOG, given the tags that exist: `vX.Y.Z` when the newest
    release section has none yet, else None. A section older than the newest tag is refused:
    release sections go newest first, and a release is never made twice."""
    version = newest_release(changelog)
    released = release_tags(tags)
    if version is None or version in released:
        return None
    newer = [tag for tag in released if version_key(tag) > version_key(version)]
    if newer:
        raise ValueError(
            f"CHANGELOG.md's newest release section is {version}, older than the tag v{max(newer, key=version_key)}: "
            "move the changes to a new section above the newest release"
        )
    return f"v{version}"


# ---- git -------------------------------------------------------------------------------


def git(root, *args):
    """git's output in `root`, or None when git fails (no repository, no such ref, no git)."""
    try:
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


ROOT = Path(__file__).resolve().parent.parent


def main(argv, root=ROOT):
    if argv not in (["check"], ["tag"]):
        sys.exit(__doc__)
    tags = (git(root, "tag", "--list", "v*") or "").split()
    try:
        tag = tag_to_make((root / "CHANGELOG.md").read_text(encoding="utf-8"), tags)
    except ValueError as error:
        sys.exit(f"tools/release.py: {error}.")
    if tag is None:
        print(f"tools/release.py: nothing to tag: v{newest_release((root / 'CHANGELOG.md').read_text())} exists.")
        return 0
    if argv == ["check"]:
        print(f"tools/release.py: {tag} is to be made (CHANGELOG.md's newest release section has no tag yet).")
        return 0
    for command in (["tag", tag, "HEAD"], ["push", "origin", f"refs/tags/{tag}"]):
        done = subprocess.run(["git", "-C", str(root), *command])
        if done.returncode:
            return done.returncode
    print(f"tools/release.py: tagged {git(root, 'rev-parse', 'HEAD')} as {tag} and pushed it to origin.")
    return 0


# ---- the template's identity, as a generated project records it -------------------------


def without_credentials(url):
    """`url` without a user or password: no token lands in a generated file."""
    parts = urlsplit(url)
    if parts.scheme in ("http", "https") and "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    return url


def canonical_url(root, given):
    """Where the template lives: the checkout's `origin` (and a local working clone's own
    origin: cruft clones a local clone), else what cookiecutter or cruft was given."""
    url = git(root, "remote", "get-url", "origin")
    if url and (Path(url) / "cookiecutter.json").is_file():
        url = git(url, "remote", "get-url", "origin") or str(Path(url).resolve())
    if not url:
        for short, long in ABBREVIATIONS.items():
            if given.startswith(short):
                return long + given[len(short) :]
        url = str(root) if not given or Path(given).is_dir() else given
    return without_credentials(url)


def template_root(start):
    """The template checkout being rendered: cookiecutter renders files from inside it."""
    for folder in (start, *start.parents):
        if (folder / "cookiecutter.json").is_file() and (folder / "CHANGELOG.md").is_file():
            return folder
    return None


def identity_of(root, given):
    """{"template", "release", "commit", "checkout"} of the template checkout at `root`. The
    release is the newest release tag the checkout holds (without git, its CHANGELOG's newest
    release); `checkout` is what cruft checks out to start from it: that tag, else the commit."""
    commit = git(root, "rev-parse", "HEAD") or ""
    tag = git(root, "describe", "--tags", "--abbrev=0", "--match", "v[0-9]*.[0-9]*.[0-9]*", "HEAD") if commit else None
    if tag and TAG.fullmatch(tag):
        release, checkout = tag[1:], tag
    else:
        release = newest_release((root / "CHANGELOG.md").read_text(encoding="utf-8")) or ""
        checkout = commit or (f"v{release}" if release else "")
    return {"template": canonical_url(root, given), "release": release, "commit": commit, "checkout": checkout}


def identity(given=""):
    """identity_of() the template being rendered, by that checkout's own copy of this file:
    `cruft update` renders two releases in one process, which imports this module only once."""
    root = template_root(Path.cwd())
    if root is None:
        return {"template": given, "release": "", "commit": "", "checkout": ""}
    spec = importlib.util.spec_from_file_location("flask_appstack_release", root / "tools" / "release.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.identity_of(root, given)


try:
    from jinja2.ext import Extension
except ImportError:  # CI's bare python3 runs main() only
    Extension = object


class TemplateIdentity(Extension):
    """Jinja's `template_identity(cookiecutter._template)` in the template's files, and the
    filter `cookiecutter._template | template_identity("release")` for one of its fields."""

    def __init__(self, environment):
        super().__init__(environment)
        environment.globals["template_identity"] = identity
        environment.filters["template_identity"] = lambda given, field: identity(given)[field]


if __name__ == "__main__":
    os.environ.setdefault("GIT_TERMINAL_PROMPT", "0")
    sys.exit(main(sys.argv[1:]))
