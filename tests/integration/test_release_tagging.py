"""The CI release job's tagging, with real git: a new CHANGELOG section is tagged once, and a
section that changed after its tag stops `check` and `tag`."""

import shutil
import subprocess
import sys

from releases import CHANGELOG, WITH_A_NEW_SECTION, git

from tools.project import REPO


def released_clone(tmp_path):
    """(clone, origin): the platform team's clone of a template released as v2.0.0 (CHANGELOG),
    with a bare origin holding the tag."""
    clone, origin = tmp_path / "clone", tmp_path / "origin.git"
    shutil.copytree(REPO / "tools", clone / "tools", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "flask_appstack_identity.py", clone)
    (clone / "CHANGELOG.md").write_text(CHANGELOG)
    git(clone, "init", "-q", "-b", "main")
    git(clone, "add", "-A")
    git(clone, "commit", "-q", "-m", "2.0.0")
    git(clone, "tag", "v2.0.0")
    git(tmp_path, "clone", "-q", "--bare", str(clone), str(origin))
    git(clone, "remote", "add", "origin", str(origin))
    return clone, origin


def release(clone, command):
    return subprocess.run([sys.executable, "tools/release.py", command], cwd=clone, capture_output=True, text=True)


def test_ci_tags_the_commit_that_brings_a_new_section_and_pushes_the_tag_once(tmp_path):
    clone, origin = released_clone(tmp_path)
    assert "nothing to tag" in release(clone, "tag").stdout
    git(clone, "commit", "-q", "--allow-empty", "-m", "an unreleased fix")
    assert "nothing to tag" in release(clone, "tag").stdout
    (clone / "CHANGELOG.md").write_text(WITH_A_NEW_SECTION)
    git(clone, "commit", "-q", "-am", "2.1.0")
    assert "v2.1.0 is to be made" in release(clone, "check").stdout
    tagged = release(clone, "tag")
    assert tagged.returncode == 0, tagged.stderr
    head = git(clone, "rev-parse", "HEAD").strip()
    assert git(origin, "rev-parse", "v2.1.0^{commit}").strip() == head
    assert "nothing to tag" in release(clone, "tag").stdout


def test_a_released_section_edited_after_its_tag_stops_check_and_tag(tmp_path):
    clone, origin = released_clone(tmp_path)
    changelog = clone / "CHANGELOG.md"
    # Work under [Unreleased] changes no released section.
    changelog.write_text(CHANGELOG.replace("- Nothing yet.", "- A fix nobody released yet."))
    git(clone, "commit", "-q", "-am", "an unreleased fix")
    checked = release(clone, "check")
    assert checked.returncode == 0, checked.stderr
    assert "the sections of v2.0.0 are as tagged" in checked.stdout and "nothing to tag" in checked.stdout

    # 2.0.0's section, edited after v2.0.0, in the commit that brings 2.1.0.
    edited = WITH_A_NEW_SECTION.replace("- Every file has one owner.", "- Every file has one owner; and more.")
    changelog.write_text(edited)
    git(clone, "commit", "-q", "-am", "2.1.0, and a change to 2.0.0's section")
    line = edited[: edited.index("- Every file has one owner; and more.")].count("\n") + 1
    for command in ("check", "tag"):
        refused = release(clone, command)
        assert refused.returncode == 1, refused.stdout
        assert refused.stderr.startswith(
            f"tools/release.py: CHANGELOG.md's section [2.0.0] differs from the one tagged v2.0.0, first at line "
            f"{line}: '- Every file has one owner; and more.' where v2.0.0 has '- Every file has one owner.'\n"
        ), refused.stderr
        assert "write the change under [Unreleased]" in refused.stderr
    assert git(origin, "tag", "--list").split() == ["v2.0.0"]  # nothing tagged, nothing pushed
    assert git(clone, "tag", "--list").split() == ["v2.0.0"]

    # Put back as tagged, 2.1.0 is released.
    changelog.write_text(WITH_A_NEW_SECTION)
    git(clone, "commit", "-q", "-am", "2.0.0's section as tagged")
    tagged = release(clone, "tag")
    assert tagged.returncode == 0, tagged.stderr
    assert git(origin, "tag", "--list").split() == ["v2.0.0", "v2.1.0"]
