"""The template's identity (canonical URL, release, commit, the pipenvs it pins, the chart's
rules some answers follow), as its files read it.

cookiecutter loads `TemplateIdentity` from here (cookiecutter.json's `_extensions`): Jinja's
`template_identity(...)` in the template's files. A top-level module with a name of its own,
because cookiecutter appends the template's folder to the end of sys.path: any `tools` package
earlier on it (the user's site-packages, the current folder) would be imported instead of ours.
Standard library and Jinja2 only; tools/release.py (CI's release tags) takes its reading of
release tags and of the CHANGELOG from here.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

# A release is X.Y.Z of ASCII digits without leading zeros (as scripts/update.py reads tags in
# projects): `\d` would take any Unicode digit (v٣.٠.٠) and int() would read it, and v02.0.0
# would be a second name of v2.0.0.
NUMBER = r"(0|[1-9][0-9]*)"
RELEASE_HEADING = re.compile(
    rf"^## \[{NUMBER}\.{NUMBER}\.{NUMBER}\] - [0-9]{{4}}-[0-9]{{2}}-[0-9]{{2}}[ \t]*$", re.MULTILINE | re.ASCII
)
TAG = re.compile(rf"v{NUMBER}\.{NUMBER}\.{NUMBER}", re.ASCII)
# cookiecutter's abbreviations, which git (and so cruft) cannot clone.
ABBREVIATIONS = {"gh:": "https://github.com/", "gl:": "https://gitlab.com/", "bb:": "https://bitbucket.org/"}


def newest_release(changelog):
    """The version of the CHANGELOG's newest release section ("2.1.0"), or None."""
    match = RELEASE_HEADING.search(changelog)
    return ".".join(match.groups()) if match else None


def version_key(version):
    return tuple(int(part) for part in version.split("."))


def newest_release_tag(names):
    """The newest release tag (`vX.Y.Z`) among tag names, or None."""
    tags = release_tags(names)
    return tags[max(tags, key=version_key)] if tags else None


def release_tags(names):
    """{"X.Y.Z": name} of the release tags among `names` (tag names, `v` and three numbers)."""
    return {".".join(match.groups()): name for name in names if (match := TAG.fullmatch(name))}


def git(root, *args):
    """git's output in `root`, or None when git fails (no repository, no such ref, no git, or a
    remote that would ask for a password: git never prompts here)."""
    try:
        environ = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
        done = subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, timeout=60, env=environ)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


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


def pinned_pipenvs(root):
    """The pipenv releases the template checkout at `root` pins with hashes, oldest first: one
    file each in its templates/pipenv/ (tools/pipenv_pins.py makes them), the only place that
    names them."""
    names = [path.stem for path in Path(root, "templates", "pipenv").glob("*.txt") if path.stem != "unknown"]
    return sorted(names, key=version_key)


# The definitions of the chart's values.schema.json that answers become values under (pvc_size is
# persistence.size, pvc_mount_path persistence.mountPath): the pre-generation hook checks those
# answers by them, so that what it accepts the chart takes.
CHART_RULES = ("byteQuantity", "mountPath")


def chart_rules(root):
    """{name: definition} of CHART_RULES in the chart's values.schema.json of the checkout at
    `root` ({} where it has none, as a checkout made up for a test of the identity)."""
    schema = Path(root, "{{cookiecutter.app_name}}", "chart", "values.schema.json")
    if not schema.is_file():
        return {}
    definitions = json.loads(schema.read_text(encoding="utf-8"))["definitions"]
    return {name: definitions[name] for name in CHART_RULES}


def identity_of(root, given):
    """{"template", "release", "commit", "checkout", "pipenvs", "chart_rules"} of the template
    checkout at `root`. The release is the release tag on the checkout's commit, and only that: a
    commit after a release (main, a branch) is no release, and records none (""), only its commit.
    `checkout` is what cruft checks out to start from it: that tag, else the commit. `pipenvs`
    are the pipenv releases it pins (pinned_pipenvs); `chart_rules`, chart_rules()."""
    # One git process for both (each costs a bake a fork and git's start): the commits of HEAD
    # and of every tag, an annotated tag's being the commit it names (`^{}`); show-ref is
    # plumbing, whose output no user setting changes.
    listed = git(root, "show-ref", "--head", "--dereference", "--tags") or ""
    refs = [line.split(" ", 1) for line in listed.splitlines()]  # [commit, name]
    commit = next((sha for sha, name in refs if name == "HEAD"), "")
    names = [name.removeprefix("refs/tags/").removesuffix("^{}") for sha, name in refs if sha == commit]
    tag = newest_release_tag(names) if commit else None
    release = tag[1:] if tag else ""
    return {
        "template": canonical_url(root, given),
        "release": release,
        "commit": commit,
        "checkout": tag or commit,
        "pipenvs": pinned_pipenvs(root),
        "chart_rules": chart_rules(root),
    }


# This file as it was imported, to tell whether a checkout's copy is the same.
with open(__file__, "rb") as imported:
    IMPORTED_SOURCE = imported.read()


def identity(given=""):
    """identity_of() the template being rendered, by that checkout's own copy of this file:
    `cruft update` renders two releases in one process, which imports this module only once
    (a copy the same as the imported file is not loaded again)."""
    root = template_root(Path.cwd())
    if root is None:
        return {"template": given, "release": "", "commit": "", "checkout": "", "pipenvs": [], "chart_rules": {}}
    copy = root / Path(__file__).name
    if copy.read_bytes() == IMPORTED_SOURCE:
        return identity_of(root, given)
    spec = importlib.util.spec_from_file_location("flask_appstack_identity_of_checkout", copy)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.identity_of(root, given)


try:
    from jinja2.ext import Extension
except ImportError:  # CI's bare python3 runs tools/release.py, which needs only the functions above
    Extension = object


class TemplateIdentity(Extension):
    """Jinja's `template_identity(cookiecutter._template)` in the template's files, and the
    filter `cookiecutter._template | template_identity("release")` for one of its fields."""

    def __init__(self, environment):
        super().__init__(environment)
        # cookiecutter makes an environment per rendering (cruft update's two releases get one each),
        # and the checkout does not change during one: git runs once per rendering, not once per use.
        known = {}

        def identity_once(given=""):
            key = (Path.cwd(), given)
            if key not in known:
                known[key] = identity(given)
            return known[key]

        environment.globals["template_identity"] = identity_once
        environment.filters["template_identity"] = lambda given, field: identity_once(given)[field]
