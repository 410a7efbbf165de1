"""The template's releases: `vX.Y.Z` tags that CI makes from the CHANGELOG.

  python3 tools/release.py check   the tag CI would make at HEAD, or that there is none to make
  python3 tools/release.py tag     make it at HEAD and push it to origin (CI's release job, after
                                   the suite passed on main)

A release is the CHANGELOG's newest `## [X.Y.Z] - YYYY-MM-DD` section: when no tag names it
yet, CI tags the commit that brought it. Standard library only (CI runs it with a bare python3).
Release tags and the CHANGELOG are read as the template's identity module reads them
(flask_appstack_identity.py, at the template's root: what generated projects record).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script (`python3 tools/release.py`): the root is not on sys.path
    sys.path.insert(0, str(ROOT))

from flask_appstack_identity import git, newest_release, release_tags, version_key  # noqa: E402
from tools.cache import ToolFailed, run  # noqa: E402


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
    try:
        for command in (["tag", tag, "HEAD"], ["push", "origin", f"refs/tags/{tag}"]):
            run(["git", "-C", root, *command])
    except ToolFailed as error:
        sys.exit(f"tools/release.py: {error}")
    print(f"tools/release.py: tagged {git(root, 'rev-parse', 'HEAD')} as {tag} and pushed it to origin.")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("GIT_TERMINAL_PROMPT", "0")
    sys.exit(main(sys.argv[1:]))
