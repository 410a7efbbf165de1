"""The CI release job's tagging, with real git: a new CHANGELOG section is tagged once."""

import shutil
import subprocess
import sys

from releases import CHANGELOG, WITH_A_NEW_SECTION, git

from tools.project import REPO


def test_ci_tags_the_commit_that_brings_a_new_section_and_pushes_the_tag_once(tmp_path):
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

    def release(command):
        return subprocess.run([sys.executable, "tools/release.py", command], cwd=clone, capture_output=True, text=True)

    assert "nothing to tag" in release("tag").stdout
    git(clone, "commit", "-q", "--allow-empty", "-m", "an unreleased fix")
    assert "nothing to tag" in release("tag").stdout
    (clone / "CHANGELOG.md").write_text(WITH_A_NEW_SECTION)
    git(clone, "commit", "-q", "-am", "2.1.0")
    assert "v2.1.0 is to be made" in release("check").stdout
    tagged = release("tag")
    assert tagged.returncode == 0, tagged.stderr
    head = git(clone, "rev-parse", "HEAD").strip()
    assert git(origin, "rev-parse", "v2.1.0^{commit}").strip() == head
    assert "nothing to tag" in release("tag").stdout
