"""scripts/update.py's rules, as pure functions: which files a change writes and how (the
three-way merge, a removal, the team's files), which words are answers, which tags are
releases. The integration tier (test_updates.py, test_reconfigure.py) runs it in projects."""

import pytest
from owners import cruft_skip

from tools.project import DEFAULTS, project_script

update = project_script("update")


def tree(root, files):
    """Write {relative path: text} under root."""
    root.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def planned(tmp_path, base, theirs, ours, **options):
    """{path: (kind, new text or None, conflict)} of update.plan() over three trees."""
    changes = update.plan(
        tree(tmp_path / "base", base), tree(tmp_path / "theirs", theirs), tree(tmp_path / "ours", ours), **options
    )
    return {
        change.path: (change.kind, None if change.content is None else change.content.decode(), change.conflict)
        for change in changes
    }


LINES = "one\ntwo\nthree\nfour\nfive\n"


def test_a_file_only_the_template_changed_takes_the_change(tmp_path):
    assert planned(tmp_path, {"a": LINES}, {"a": LINES.replace("two", "2")}, {"a": LINES}) == {
        "a": ("changed", LINES.replace("two", "2"), "")
    }


def test_a_file_only_the_team_changed_is_left_alone(tmp_path):
    assert planned(tmp_path, {"a": LINES}, {"a": LINES}, {"a": LINES.replace("two", "2")}) == {}


def test_changes_to_different_lines_merge(tmp_path):
    ours, theirs = LINES.replace("one", "1"), LINES.replace("five", "5")
    assert planned(tmp_path, {"a": LINES}, {"a": theirs}, {"a": ours}) == {
        "a": ("changed", "1\ntwo\nthree\nfour\n5\n", "")
    }


def test_changes_to_the_same_line_keep_both_between_markers(tmp_path):
    [(kind, text, conflict)] = planned(
        tmp_path, {"a": LINES}, {"a": LINES.replace("two", "theirs")}, {"a": LINES.replace("two", "ours")}
    ).values()
    assert kind == "changed" and "<<<<<<< yours\nours\n=======\ntheirs\n>>>>>>> the template's" in text
    assert conflict.startswith("both changed the same lines")


def test_a_removed_file_goes_unless_the_team_changed_it(tmp_path):
    assert planned(tmp_path, {"a": LINES}, {}, {"a": LINES}) == {"a": ("removed", None, "")}
    [(kind, text, conflict)] = planned(tmp_path / "2", {"a": LINES}, {}, {"a": "mine\n"}).values()
    assert (kind, text) == ("removed", "mine\n") and "you changed it, and the template no longer makes it" in conflict


def test_a_file_the_team_removed_stays_removed(tmp_path):
    assert planned(tmp_path, {"a": LINES}, {"a": LINES.replace("two", "2")}, {}) == {}


def test_a_new_file_is_added_and_one_the_team_made_at_that_path_is_merged(tmp_path):
    assert planned(tmp_path, {}, {"new": "x\n"}, {}) == {"new": ("added", "x\n", "")}
    [(_, text, conflict)] = planned(tmp_path / "2", {}, {"new": "x\n"}, {"new": "y\n"}).values()
    assert "<<<<<<< yours\ny\n=======\nx\n>>>>>>> the template's" in text and conflict


def test_the_teams_files_take_no_release_but_are_created_when_new(tmp_path):
    base = {"README.md": LINES, "chart/values-dev.yaml": LINES}
    theirs = {"README.md": LINES.replace("two", "2"), "chart/values-dev.yaml": "", "chart/values-qa.yaml": "qa\n"}
    ours = {"README.md": LINES, "chart/values-dev.yaml": LINES}
    assert planned(tmp_path, base, theirs, ours, skip=["README.md", "chart/values-*.yaml"]) == {
        "chart/values-qa.yaml": ("added", "qa\n", "")
    }


def test_only_limits_a_change_to_some_paths(tmp_path):
    changed = planned(tmp_path, {"a": LINES, "b": LINES}, {"a": "", "b": ""}, {"a": LINES, "b": LINES}, only=["b"])
    assert list(changed) == ["b"]


def test_a_file_that_is_not_text_is_never_merged(tmp_path):
    base, ours, theirs = (tmp_path / name for name in ("base", "ours", "theirs"))
    for folder, content in ((base, b"\0a"), (ours, b"\0b"), (theirs, b"\0c")):
        folder.mkdir()
        (folder / "logo.png").write_bytes(content)
    [change] = update.plan(base, theirs, ours)
    assert change.content == b"\0b" and "not text" in change.conflict


@pytest.mark.parametrize(
    "path, matched",
    [
        ("source/api/__init__.py", True),
        ("source/api", True),
        ("source/apis.py", False),
        ("chart/values-prod.yaml", True),
        ("chart/values.yaml", False),
        ("README.md", True),
        ("docs/README.md", False),
    ],
)
def test_paths_match_the_skip_list_as_cruft_reads_it(path, matched):
    assert update.matches(path, ["README.md", "source/api", "chart/values-*.yaml"]) is matched


def test_the_skip_list_is_read_from_the_generated_pyproject(default_project):
    assert sorted(update.skip_patterns(default_project)) == sorted(cruft_skip())


def test_answers_are_typed_as_the_templates_questions():
    given = update.parse_answers(
        ["hpa=no", "dr=YES", "pod_anti_affinity=required", "hostspaces=dev, prod", "description=a = b"], DEFAULTS
    )
    assert given == {
        "hpa": False,
        "dr": True,
        "pod_anti_affinity": "required",
        "hostspaces": "dev, prod",
        "description": "a = b",
    }


def test_every_word_that_is_not_an_answer_is_named_at_once():
    with pytest.raises(update.Refusal) as refused:
        update.parse_answers(["hpa=maybe", "pvc_access_mode=rwo", "replicas=3", "_commit=abc", "hpa"], DEFAULTS)
    lines = str(refused.value).splitlines()
    assert lines[0] == "ANSWERS cannot be used, so nothing was changed:"
    assert lines[1:3] == [
        "  - hpa=maybe: hpa is yes or no",
        "  - pvc_access_mode=rwo: pvc_access_mode is one of ReadWriteOnce, ReadWriteMany",
    ]
    assert [line.split(":")[0] for line in lines[3:]] == ["  - replicas=3", "  - _commit=abc", "  - hpa"]


@pytest.mark.parametrize(
    "tag, release",
    [("v2.1.0", True), ("v10.0.12", True), ("v2.01.0", False), ("v\u0663.\u0660.\u0660", False), ("2.1.0", False)],
)
def test_only_v_and_three_ascii_numbers_without_leading_zeros_are_releases(tag, release):
    assert bool(update.TAG.fullmatch(tag)) is release


def test_the_teams_values_are_what_differs_from_the_platforms():
    platform = {"replicaCount": 2, "env": {"LOG_LEVEL": "INFO", "WORKERS": "6"}, "networkPolicy": {"enabled": False}}
    teams = {
        "replicaCount": 2,
        "env": {"LOG_LEVEL": "INFO", "WORKERS": "6", "ORDERS_URL": "x"},
        "networkPolicy": {"enabled": True, "from": [{"podSelector": {}}]},
    }
    assert update.changed_values(teams, platform) == {
        "env": {"ORDERS_URL": "x"},
        "networkPolicy": {"enabled": True, "from": [{"podSelector": {}}]},
    }
    assert update.changed_values(platform, platform) == {}


def test_a_cache_that_cannot_hold_the_renderer_is_one_refusal_not_a_traceback(tmp_path):
    """make update's cookiecutter goes into the cache as lock.py's pipenv does; where it cannot, one message."""
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("a file where the cache should be")
    with pytest.raises(update.Refusal, match=r"^cookiecutter did not install: cannot write .*cache.*: Not a directory"):
        update.renderer({"XDG_CACHE_HOME": str(not_a_folder)})
