"""tools/release.py: cutting a release from [Unreleased], and which release tag CI makes from
the CHANGELOG (the tag made with real git: tests/integration/test_release_tagging.py)."""

import pytest
from releases import CHANGELOG, WITH_A_NEW_SECTION

import flask_appstack_identity
from flask_appstack_identity import newest_release, release_tags, without_credentials
from tools import release
from tools.project import REPO, project_script
from tools.release import changed_releases, changelog_problems, cut, tag_to_make


def test_a_changelog_whose_newest_release_is_tagged_makes_no_tag():
    assert newest_release(CHANGELOG) == "2.0.0"
    assert tag_to_make(CHANGELOG, ["v1.0.0", "v2.0.0"]) is None


def test_a_new_release_section_makes_its_tag():
    assert tag_to_make(WITH_A_NEW_SECTION, ["v1.0.0", "v2.0.0"]) == "v2.1.0"
    assert tag_to_make(CHANGELOG, []) == "v2.0.0"  # the first release of a repository without tags


def test_unreleased_changes_alone_make_no_tag():
    unreleased = CHANGELOG.replace("- Nothing yet.", "- A fix nobody released yet.")
    assert tag_to_make(unreleased, ["v2.0.0", "v1.0.0"]) is None
    assert tag_to_make("# Changelog\n\n## [Unreleased]\n", []) is None


def test_a_section_older_than_the_newest_tag_is_refused():
    with pytest.raises(ValueError, match="newest release section is 2.1.0, older than the tag v3.0.0"):
        tag_to_make(WITH_A_NEW_SECTION, ["v2.0.0", "v3.0.0"])


def test_only_release_tags_count():
    assert release_tags(["v2.0.0", "2.1.0", "v2.1", "v3.0.0-rc1", "latest"]) == {"2.0.0": "v2.0.0"}


def test_a_release_is_three_numbers_of_ascii_digits_without_leading_zeros():
    """`\\d` matches every Unicode digit, and int() reads them: v٣.٠.٠ would be release 3.0.0."""
    names = [
        "v\u0663.\u0660.\u0660",
        "v\uff12.0.0",
        "v2.0.\U0001d7ce",
        "v02.0.0",
        "v2.00.0",
        "v2.0.01",
        "v2.0.0",
        "v0.10.0",
    ]
    assert release_tags(names) == {"2.0.0": "v2.0.0", "0.10.0": "v0.10.0"}
    assert flask_appstack_identity.newest_release_tag(["v\u0669.0.0", "v09.0.0", "v2.0.0"]) == "v2.0.0"
    headings = [
        "## [\u0663.0.0] - 2026-01-01",
        "## [3.0.0] - 2026-\u0660\u0661-01",
        "## [03.0.0] - 2026-01-01",
        "## [2.1.0] - 2026-01-01",
    ]
    assert newest_release("\n".join(headings) + "\n") == "2.1.0"
    assert release.released_sections("\n".join(headings) + "\n") == ["2.1.0"]


def test_the_templates_changelog_names_its_newest_release():
    assert newest_release((REPO / "CHANGELOG.md").read_text()) is not None


def test_no_token_of_the_origin_url_is_recorded():
    assert (
        without_credentials("https://user:s3cret@github.com/org/flask-appstack")
        == "https://github.com/org/flask-appstack"
    )
    assert without_credentials("git@github.com:org/flask-appstack.git") == "git@github.com:org/flask-appstack.git"


def test_the_projects_update_script_reads_release_tags_as_ci_makes_them():
    """scripts/update.py runs in projects, without the template: its reading of tags is a twin
    of the template's (flask_appstack_identity.py, which tools/release.py uses), kept equal here."""
    update = project_script("update")
    template = flask_appstack_identity

    names = [
        "v2.10.0",
        "v2.9.1",
        "v10.0.0",
        "2.0.0",
        "v2.0",
        "v1.0.0-rc1",
        "latest",
        "v0.0.1",
        "v02.0.0",
        "v\u0663.0.0",
    ]
    assert [bool(update.TAG.fullmatch(name)) for name in names] == [
        bool(template.TAG.fullmatch(name)) for name in names
    ]
    versions = ["2.10.0", "2.9.1", "10.0.0", "0.0.1"]
    assert (
        sorted(versions, key=update.version_key)
        == sorted(versions, key=template.version_key)
        == [
            "0.0.1",
            "2.9.1",
            "2.10.0",
            "10.0.0",
        ]
    )


# ---- cut: the README's release recipe --------------------------------------------------------

WITH_CHANGES = CHANGELOG.replace(
    "- Nothing yet.\n", "- make update names the release it took.\n\n### By hand\n- Nothing.\n", 1
).replace("- Every file has one owner.\n", "- Every file has one owner.\n\n### By hand\n- The commands.\n")
WITH_CHANGES = WITH_CHANGES.replace("## [1.0.0] - 2026-09-01\n", "")


def test_cut_makes_unreleased_the_release_under_a_new_empty_unreleased():
    assert changelog_problems(WITH_CHANGES) == []
    released = cut(WITH_CHANGES, "2.1.0", "2026-12-24")
    assert released == WITH_CHANGES.replace(
        "## [Unreleased]\n",
        "## [Unreleased]\n\n### What a generated project gets\n- Nothing yet.\n\n### By hand\n- Nothing yet.\n\n"
        "## [2.1.0] - 2026-12-24\n",
    )
    assert newest_release(released) == "2.1.0" and tag_to_make(released, ["v2.0.0"]) == "v2.1.0"
    assert changelog_problems(released) == []
    assert cut(WITH_CHANGES, "3.0.0", "2026-12-24").count("## [3.0.0] - 2026-12-24\n") == 1
    assert "## [10.0.0] - 2026-12-24" in cut(WITH_CHANGES, "10.0.0", "2026-12-24")


def test_the_templates_changelog_cut_passes_the_changelog_checks():
    """What the README's recipe writes from the template's own CHANGELOG passes test_ci's checks."""
    changelog = (REPO / "CHANGELOG.md").read_text()
    # With something to release, as right after a release too ([Unreleased] then says nothing).
    changelog = changelog.replace(
        "## [Unreleased]\n", "## [Unreleased]\n\n### What a generated project gets\n- A change.\n", 1
    )
    major, minor, _ = newest_release(changelog).split(".")
    released = cut(changelog, f"{major}.{int(minor) + 1}.0", "2027-01-04")
    assert changelog_problems(released) == []
    assert newest_release(released) == f"{major}.{int(minor) + 1}.0"


@pytest.mark.parametrize(
    "version, why",
    [
        ("2.1", "'2.1' is not a version X.Y.Z"),
        ("v2.1.0", "'v2.1.0' is not a version X.Y.Z"),
        ("2.01.0", "'2.01.0' is not a version X.Y.Z"),
        ("2.1.0-rc1", "'2.1.0-rc1' is not a version X.Y.Z"),
        ("2.\uff11.0", "'2.\uff11.0' is not a version X.Y.Z"),  # a fullwidth digit one
        ("2.1.0\n", "'2.1.0\\n' is not a version X.Y.Z"),
        ("2.0.0", "2.0.0 is not above the newest release section, 2.0.0"),
        ("1.9.9", "1.9.9 is not above the newest release section, 2.0.0"),
    ],
)
def test_cut_refuses_a_version_that_is_not_a_new_one(version, why):
    with pytest.raises(ValueError) as refused:
        cut(WITH_CHANGES, version, "2026-12-24")
    assert str(refused.value).startswith(why)


def test_cut_refuses_an_unreleased_section_that_says_nothing_or_lacks_a_heading():
    with pytest.raises(ValueError, match=r"^\[Unreleased\] says nothing yet: there is nothing to release$"):
        cut(cut(WITH_CHANGES, "2.1.0", "2026-12-24"), "2.2.0", "2026-12-25")
    with pytest.raises(ValueError, match="says nothing yet"):
        cut(CHANGELOG, "2.1.0", "2026-12-24")  # headings and "- Nothing yet." are not a release
    without_by_hand = WITH_CHANGES.replace("\n### By hand\n- Nothing.\n", "\n", 1)
    with pytest.raises(ValueError, match=r"fails its checks: ## \[2.1.0\] - 2026-12-24 has no ### By hand"):
        cut(without_by_hand, "2.1.0", "2026-12-24")
    with pytest.raises(ValueError, match="needs one `## \\[Unreleased\\]` section, it has 0"):
        cut(WITH_CHANGES.replace("## [Unreleased]", "## Unreleased"), "2.1.0", "2026-12-24")


def test_cut_on_the_command_line_writes_the_changelog_or_refuses_leaving_it_unchanged(tmp_path, capsys):
    changelog = tmp_path / "CHANGELOG.md"
    changelog.write_text(WITH_CHANGES)
    for version in ("2.1", "2.0.0"):
        with pytest.raises(SystemExit) as refused:
            release.main(["cut", version], root=tmp_path, today=lambda: "2026-12-24")
        message = str(refused.value)
        assert message.startswith("tools/release.py cut: ") and message.endswith("; CHANGELOG.md is unchanged.")
        assert "\n" not in message and refused.value.code != 0
        assert changelog.read_text() == WITH_CHANGES
    assert release.main(["cut", "2.1.0"], root=tmp_path, today=lambda: "2026-12-24") == 0
    assert changelog.read_text() == cut(WITH_CHANGES, "2.1.0", "2026-12-24")
    assert "[Unreleased] is now 2.1.0" in capsys.readouterr().out


def test_changelog_problems_name_what_is_wrong():
    assert changelog_problems(WITH_CHANGES) == []
    problems = changelog_problems(
        WITH_CHANGES.replace("## [2.0.0] - 2026-12-02", "## [2.0.0] - 2026-13-02\n\n## [2.1.0] - 2026-12-24")
    )
    assert problems == [
        "'## [2.0.0] - 2026-13-02' has no real date",
        "release sections go newest first, each once: 2.0.0 comes before 2.1.0",
        "## [2.0.0] - 2026-13-02 has no ### What a generated project gets and no ### By hand",
    ]
    assert changelog_problems("# Changelog\n\n## [2.0.0] - 2026-12-02\n") == [
        "the first section is not ## [Unreleased]",
        "## [2.0.0] - 2026-12-02 has no ### What a generated project gets and no ### By hand",
    ]
    assert "there is no release section" in changelog_problems(EMPTY := "## [Unreleased]\n")
    assert "'## [2.0.0]' is not a release heading `## [X.Y.Z] - YYYY-MM-DD`" in changelog_problems(
        EMPTY + "## [2.0.0]\n"
    )


# ---- released sections never change ----------------------------------------------------------


def line_of(changelog, text):
    return changelog[: changelog.index(text)].count("\n") + 1


def test_sections_as_they_were_tagged_pass_whatever_unreleased_and_new_sections_say():
    assert changed_releases(CHANGELOG, {"2.0.0": CHANGELOG, "1.0.0": CHANGELOG}) == []
    later = WITH_A_NEW_SECTION.replace("- Nothing yet.", "- A fix nobody released yet.")
    assert changed_releases(later, {"2.0.0": CHANGELOG}) == []
    # The 1.0.0 section, last in the file at its tag, with a section after it now.
    assert changed_releases(CHANGELOG + "\n", {"1.0.0": CHANGELOG.rstrip("\n")}) == []


def test_a_released_section_that_changed_is_named_with_its_first_differing_line():
    edited = CHANGELOG.replace("- Every file has one owner.", "- Every file has one owner, and more.")
    [problem, advice] = changed_releases(edited, {"2.0.0": CHANGELOG, "1.0.0": CHANGELOG})
    line = line_of(edited, "- Every file has one owner, and more.")
    assert problem == (
        f"CHANGELOG.md's section [2.0.0] differs from the one tagged v2.0.0, first at line {line}: "
        "'- Every file has one owner, and more.' where v2.0.0 has '- Every file has one owner.'"
    )
    assert advice.startswith("A released section never changes")
    assert "write the change under [Unreleased]" in advice

    redated = CHANGELOG.replace("## [2.0.0] - 2026-12-02", "## [2.0.0] - 2026-12-03")
    assert (
        f"first at line {line_of(CHANGELOG, '## [2.0.0]')}: '## [2.0.0] - 2026-12-03'"
        in (changed_releases(redated, {"2.0.0": CHANGELOG})[0])
    )
    grown = CHANGELOG.replace("- Every file has one owner.\n", "- Every file has one owner.\n- And more.\n")
    assert changed_releases(grown, {"2.0.0": CHANGELOG})[0].endswith(
        f"first at line {line_of(grown, '- And more.')}: '- And more.' where v2.0.0 has (the section ends)"
    )
    shrunk = CHANGELOG.replace("- Every file has one owner.\n", "")
    assert changed_releases(shrunk, {"2.0.0": CHANGELOG})[0].endswith(
        "(the section ends) where v2.0.0 has '- Every file has one owner.'"
    )
    # Each changed release is named.
    both = edited.replace("## [1.0.0] - 2026-09-01\n", "## [1.0.0] - 2026-09-01\n\n- Written later.\n")
    problems = changed_releases(both, {"2.0.0": CHANGELOG, "1.0.0": CHANGELOG})
    named = [problem.split(" differs")[0] for problem in problems[:-1]]
    assert named == ["CHANGELOG.md's section [2.0.0]", "CHANGELOG.md's section [1.0.0]"]


def test_a_section_missing_at_its_tag_fails_and_a_tag_without_a_section_now_is_not_compared():
    before_2_0_0 = CHANGELOG.split("## [2.0.0]")[0] + "## [1.0.0] - 2026-09-01\n"
    [problem, _] = changed_releases(CHANGELOG, {"2.0.0": before_2_0_0})
    assert problem == (
        f"CHANGELOG.md's section [2.0.0] (line {line_of(CHANGELOG, '## [2.0.0]')}) is not in the CHANGELOG.md "
        "of its tag v2.0.0: it was written after the release"
    )
    assert changed_releases(CHANGELOG, {"2.0.0": None})[0].startswith("CHANGELOG.md's section [2.0.0] (line")
    assert changed_releases(CHANGELOG, {"3.0.0": CHANGELOG}) == []


def test_the_identity_records_a_release_only_for_its_tagged_commit(tmp_path):
    """A project made from the commit a release tag names records that release; one made from a
    later commit (main) records none, only its commit, which cruft checks out."""
    import subprocess

    import flask_appstack_identity as identity

    def git(*args):
        return subprocess.run(["git", "-C", str(tmp_path), *args], capture_output=True, text=True, check=True).stdout

    git("init", "-q", "-b", "main")
    (tmp_path / "CHANGELOG.md").write_text("## [2.0.0] - 2026-12-02\n")
    git("add", "-A")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "-m", "release")
    git("tag", "v2.0.0")
    tagged = identity.identity_of(tmp_path, str(tmp_path))
    assert (tagged["release"], tagged["checkout"]) == ("2.0.0", "v2.0.0")
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit", "-q", "--allow-empty", "-m", "after")
    later = identity.identity_of(tmp_path, str(tmp_path))
    assert later["release"] == "" and later["checkout"] == later["commit"] == git("rev-parse", "HEAD").strip()
    git("-c", "user.name=t", "-c", "user.email=t@example.invalid", "tag", "-a", "-m", "2.1.0", "v2.1.0")
    git("tag", "not-a-release")
    annotated = identity.identity_of(tmp_path, str(tmp_path))  # its tag object is not the commit it names
    assert (annotated["release"], annotated["checkout"], annotated["commit"]) == ("2.1.0", "v2.1.0", later["commit"])
    git("checkout", "-q", "v2.0.0")  # detached, as cruft checks a release out
    assert identity.identity_of(tmp_path, str(tmp_path)) == tagged
