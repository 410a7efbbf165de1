"""tools/release.py: which release tag CI makes from the CHANGELOG, and making it (real git, a
bare repository standing in for the template's origin)."""

import pytest
from releases import CHANGELOG, WITH_A_NEW_SECTION

import flask_appstack_identity
from flask_appstack_identity import newest_release, release_tags, without_credentials
from tools.project import REPO, project_script
from tools.release import tag_to_make


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

    names = ["v2.10.0", "v2.9.1", "v10.0.0", "2.0.0", "v2.0", "v1.0.0-rc1", "latest", "v0.0.1"]
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
