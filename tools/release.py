"""The template's releases: the CHANGELOG's sections, and the `vX.Y.Z` tags CI makes from them.

  python3 tools/release.py cut X.Y.Z   make [Unreleased] the release X.Y.Z, dated today (UTC), with
                                       a new empty [Unreleased] above it (then merge it to main)
  python3 tools/release.py check       the tag CI would make at HEAD, or that there is none to make
  python3 tools/release.py tag         make it at HEAD and push it to origin (CI's release job, after
                                       the suite passed on main)

A release is the CHANGELOG's newest `## [X.Y.Z] - YYYY-MM-DD` section: when no tag names it
yet, CI tags the commit that brought it. A released section never changes: `check` and `tag`
fail when a section differs from the same section at its tag (CI's test job runs `check`).
Standard library only (CI runs it with a bare python3). Release tags and the CHANGELOG are read
as the template's identity module reads them (flask_appstack_identity.py, at the template's
root: what generated projects record).
"""

from __future__ import annotations

import datetime
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script (`python3 tools/release.py`): the root is not on sys.path
    sys.path.insert(0, str(ROOT))

from flask_appstack_identity import RELEASE_HEADING, git, newest_release, release_tags, version_key  # noqa: E402
from tools.cache import ToolFailed, run  # noqa: E402

# A release's version: three whole numbers in ASCII digits, without leading zeros.
VERSION = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")
HEADING = re.compile(r"^## .*$", re.MULTILINE)
UNRELEASED_HEADING = "## [Unreleased]"
RELEASE = re.compile(r"## \[(?P<version>[^\]]*)\] - (?P<date>[0-9]{4}-[0-9]{2}-[0-9]{2})")
# Every section says what a generated project gets and what to do by hand.
REQUIRED = ("### What a generated project gets", "### By hand")
NOTHING_YET = "- Nothing yet."
EMPTY_UNRELEASED = f"{UNRELEASED_HEADING}\n\n" + "".join(f"{heading}\n{NOTHING_YET}\n\n" for heading in REQUIRED)


# ---- the CHANGELOG's form ---------------------------------------------------------------------


def sections(changelog):
    """[(heading line, start, end)] of each section: from its `## ` heading to the next one."""
    headings = list(HEADING.finditer(changelog))
    ends = [match.start() for match in headings[1:]] + [len(changelog)]
    return [(match.group().rstrip(), match.start(), end) for match, end in zip(headings, ends)]


def changelog_problems(changelog):
    """What is wrong with the CHANGELOG's form, [] when nothing: [Unreleased] on top, then
    release sections `## [X.Y.Z] - YYYY-MM-DD`, newest first, each saying what a generated
    project gets and what to do by hand (`make update VERSION=X.Y.Z` takes them)."""
    found = sections(changelog)
    problems = []
    on_top = bool(found) and found[0][0] == UNRELEASED_HEADING
    if not on_top:
        problems.append(f"the first section is not {UNRELEASED_HEADING}")
    releases = []
    for heading, _, _ in found[1:] if on_top else found:
        release = RELEASE.fullmatch(heading)
        if not release or not VERSION.fullmatch(release["version"]):
            problems.append(f"{heading!r} is not a release heading `## [X.Y.Z] - YYYY-MM-DD`")
            continue
        try:
            datetime.date.fromisoformat(release["date"])
        except ValueError:
            problems.append(f"{heading!r} has no real date")
        releases.append(release["version"])
    if not releases:
        problems.append("there is no release section")
    for newer, older in zip(releases, releases[1:]):
        if version_key(newer) <= version_key(older):
            problems.append(f"release sections go newest first, each once: {newer} comes before {older}")
    for heading, start, end in found:
        lines = [line.rstrip() for line in changelog[start:end].splitlines()]
        missing = [required for required in REQUIRED if required not in lines]
        if missing:
            problems.append(f"{heading} has no {' and no '.join(missing)}")
    return problems


# ---- cut: [Unreleased] becomes a release ------------------------------------------------------


def says_something(text):
    """Whether a section's text holds more than headings, blank lines and "- Nothing yet."."""
    lines = (line.strip() for line in text.splitlines()[1:])
    return any(line and not line.startswith("### ") and line != NOTHING_YET for line in lines)


def cut(changelog, version, today):
    """The CHANGELOG with its [Unreleased] section released as `## [version] - today` under a new
    empty [Unreleased]. ValueError, saying why, for a version that is not X.Y.Z (ASCII digits, no
    leading zeros) or not above the newest release, an [Unreleased] that says nothing yet, or a
    CHANGELOG that would fail its checks (changelog_problems)."""
    if not VERSION.fullmatch(version):
        raise ValueError(f"{version!r} is not a version X.Y.Z: three whole numbers, digits 0-9, no leading zeros")
    newest = newest_release(changelog)
    if newest is not None and version_key(version) <= version_key(newest):
        raise ValueError(f"{version} is not above the newest release section, {newest}")
    unreleased = [(start, end) for heading, start, end in sections(changelog) if heading == UNRELEASED_HEADING]
    if len(unreleased) != 1:
        raise ValueError(f"CHANGELOG.md needs one `{UNRELEASED_HEADING}` section, it has {len(unreleased)}")
    [(start, end)] = unreleased
    if not says_something(changelog[start:end]):
        raise ValueError("[Unreleased] says nothing yet: there is nothing to release")
    released = f"## [{version}] - {today}" + changelog[start + len(UNRELEASED_HEADING) : end]
    result = changelog[:start] + EMPTY_UNRELEASED + released + changelog[end:]
    problems = changelog_problems(result)
    if problems:
        raise ValueError("the CHANGELOG it would write fails its checks: " + "; ".join(problems))
    return result


# ---- released sections never change -----------------------------------------------------------


def release_section(changelog, version):
    """The lines of the `## [version] - date` section, trailing blank lines left out, with the
    number of its heading's line in the file; None when there is no such section."""
    for match in RELEASE_HEADING.finditer(changelog):
        if ".".join(match.groups()) == version:
            end = HEADING.search(changelog, match.end())
            lines = changelog[match.start() : end.start() if end else len(changelog)].splitlines()
            while lines and not lines[-1].strip():
                lines.pop()
            return changelog.count("\n", 0, match.start()) + 1, lines
    return None


def released_sections(changelog):
    """The versions of the CHANGELOG's release sections, as written."""
    return [".".join(match.groups()) for match in RELEASE_HEADING.finditer(changelog)]


def changed_releases(changelog, at_tags):
    """What differs between the CHANGELOG's release sections and the same sections at their
    tags: `at_tags` is {version: CHANGELOG.md at the tag vX.Y.Z, or None without one} for each
    release tag that exists. [] when every tagged section is as it was tagged."""
    problems = []
    for version, tagged in at_tags.items():
        now = release_section(changelog, version)
        if now is None:
            continue  # a section no longer in the CHANGELOG: nothing to compare
        first, lines = now
        then = release_section(tagged or "", version)
        if then is None:
            problems.append(
                f"CHANGELOG.md's section [{version}] (line {first}) is not in the CHANGELOG.md of its tag "
                f"v{version}: it was written after the release"
            )
            continue
        old = then[1]
        for number, (line, was) in enumerate(zip(lines + [None] * len(old), old + [None] * len(lines))):
            if line != was:
                problems.append(
                    f"CHANGELOG.md's section [{version}] differs from the one tagged v{version}, first at line "
                    f"{first + number}: {'(the section ends)' if line is None else repr(line)} where "
                    f"v{version} has {'(the section ends)' if was is None else repr(was)}"
                )
                break
    if problems:
        problems.append(
            "A released section never changes (projects made from the tag do not have what it describes "
            "later): put it back as tagged, and write the change under [Unreleased]"
        )
    return problems


# ---- the tag CI makes -------------------------------------------------------------------------


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


def today_utc():
    return datetime.datetime.now(datetime.timezone.utc).date().isoformat()


def main(argv, root=ROOT, today=today_utc):
    cutting = len(argv) == 2 and argv[0] == "cut"
    if not cutting and argv not in (["check"], ["tag"]):
        sys.exit(__doc__)
    path = root / "CHANGELOG.md"
    changelog = path.read_text(encoding="utf-8")
    if cutting:
        try:
            released = cut(changelog, argv[1], today())
        except ValueError as error:
            sys.exit(f"tools/release.py cut: {error}; CHANGELOG.md is unchanged.")
        path.write_text(released, encoding="utf-8")
        print(
            f"tools/release.py: CHANGELOG.md's [Unreleased] is now {argv[1]}, under a new "
            "empty [Unreleased]: merge it to main, and CI tags the commit."
        )
        return 0
    tags = release_tags((git(root, "tag", "--list", "v*") or "").split())
    tagged = [version for version in released_sections(changelog) if version in tags]
    problems = changed_releases(
        changelog, {version: git(root, "show", f"{tags[version]}:CHANGELOG.md") for version in tagged}
    )
    if problems:
        sys.exit("tools/release.py: " + "\n".join(problems) + ".")
    try:
        tag = tag_to_make(changelog, tags.values())
    except ValueError as error:
        sys.exit(f"tools/release.py: {error}.")
    if tagged:
        print(f"tools/release.py: the sections of {', '.join(f'v{version}' for version in tagged)} are as tagged.")
    if tag is None:
        print(f"tools/release.py: nothing to tag: v{newest_release(changelog)} exists.")
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
