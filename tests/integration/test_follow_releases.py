"""Projects follow the template's releases, the `vX.Y.Z` tags CI makes, wherever the template
lives: a bare "origin" repository stands in for GitHub. A project records the template's URL and
its release (.flask-appstack.json; .cruft.json too when cruft made it); `make outdated` and
`make update` find the releases there, never `main` unless named, and a project made with plain
cookiecutter is adopted from the release it was made from, by its manual's commands."""

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from releases import (
    AFTER_NEXT,
    NEXT,
    RELEASE,
    change_template,
    clone,
    commit_as_generated,
    committed_project,
    cookiecutter_config,
    cruft,
    git,
    make,
    make_template_repo,
    publish,
    with_origin,
)

ERRORS = "source/scale/errors.py"
FIX_A = ("return jsonify(error=error.name,", "return jsonify(error=error.name, status=error.code,")
# Output that `make update` used to print: the hook's report from cruft's two renders, and cruft's own.
NOISE = ("flask-appstack: generated", "git init", "git push", "as clean as possible", "Good work")


@pytest.fixture
def template(tmp_path):
    """The platform team's clone of the template, released (tagged) as its CHANGELOG's newest release, RELEASE, with an origin."""
    template = make_template_repo(tmp_path / "template")
    with_origin(template, tmp_path / "origin.git")
    return template


def change(template, relative, old, new, message):
    change_template(template, relative, old, new, message)
    git(template, "push", "-q", "origin", "main")


def identity(project):
    return json.loads((project / ".flask-appstack.json").read_text())


def test_a_project_generated_from_a_clone_follows_the_origins_releases_once_the_clone_is_gone(template, tmp_path):
    import tasks

    origin = str(tmp_path / "origin.git")
    change(
        template, ERRORS, "return jsonify(error=error.name,", "return jsonify(error=error.name, unreleased=1,", "wip"
    )
    platform_clone = clone(origin, tmp_path / "clone")
    notes = []
    out = tmp_path / "out"
    command = tasks.generate_command(
        ["--no-input", "-o", str(out), "app_name=orders", "lock_dependencies=no"], platform_clone, notes
    )
    assert notes == [f"tasks.py: generating from {origin} at v{RELEASE}, its newest release (not from this folder)."]
    made = subprocess.run(command, capture_output=True, text=True, env=cookiecutter_config(tmp_path))
    assert made.returncode == 0, made.stdout + made.stderr
    project = commit_as_generated(out / "orders")
    state = json.loads((project / ".cruft.json").read_text())
    assert (state["template"], state["checkout"]) == (origin, f"v{RELEASE}")
    assert {key: identity(project)[key] for key in ("template", "release")} == {"template": origin, "release": RELEASE}
    assert "unreleased=1" not in (project / ERRORS).read_text()  # main's work in progress is not a release
    shutil.rmtree(platform_clone)

    outdated = make(project, "outdated")
    assert outdated.returncode == 0, outdated.stdout + outdated.stderr
    assert f"make outdated: this project is at {RELEASE}, the newest release of {origin}." in outdated.stdout

    change(
        template,
        ERRORS,
        "return jsonify(error=error.name, unreleased=1,",
        "return jsonify(error=error.name, status=error.code,",
        "fix",
    )
    publish(template)
    outdated = make(project, "outdated")
    assert outdated.returncode != 0
    assert f"this project is at {RELEASE}; the newest release of {origin} is {NEXT}" in outdated.stdout

    updated = make(project, "update")
    output = updated.stdout + updated.stderr
    assert updated.returncode == 0, output
    assert "status=error.code" in (project / ERRORS).read_text()
    assert identity(project)["release"] == NEXT
    assert f"make update: {RELEASE} -> {NEXT}" in updated.stdout and ERRORS in updated.stdout
    assert [noise for noise in NOISE if noise in output] == []
    assert "make lock" not in output and "source/Pipfile is unchanged, the lock stays." in updated.stdout
    assert make(project, "outdated").returncode == 0


def test_a_changelog_only_commit_on_main_changes_nothing(template, tmp_path):
    project = committed_project(template, tmp_path)
    unreleased = template / "CHANGELOG.md"
    text = unreleased.read_text()
    unreleased.write_text(text.replace("## [Unreleased]\n", "## [Unreleased]\n\n- A fix nobody released yet.\n", 1))
    assert unreleased.read_text() != text
    git(template, "commit", "-q", "-am", "CHANGELOG: a line under Unreleased")
    change(template, ERRORS, *FIX_A, "and the fix itself, unreleased")

    outdated = make(project, "outdated")
    assert outdated.returncode == 0, outdated.stdout + outdated.stderr
    updated = make(project, "update")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert updated.stdout == f"make update: this project is at {RELEASE} already; nothing to take.\n"
    assert git(project, "status", "--porcelain") == ""


def test_make_update_takes_the_newest_release_or_the_one_named_and_main_only_by_name(template, tmp_path):
    project = committed_project(template, tmp_path)
    change(template, ERRORS, *FIX_A, "fix A")
    publish(template)  # NEXT
    change(template, ERRORS, "status=error.code,", "status=error.code, release=22,", "fix B")
    publish(template)  # AFTER_NEXT
    change(template, ERRORS, "release=22,", "release=22, main=1,", "on main, unreleased")

    to_given = make(project, "update", f"VERSION={NEXT}")
    assert to_given.returncode == 0, to_given.stdout + to_given.stderr
    assert "status=error.code" in (project / ERRORS).read_text() and "release=22" not in (project / ERRORS).read_text()
    git(project, "commit", "-q", "-am", NEXT)
    outdated = make(project, "outdated")
    assert (
        outdated.returncode != 0
        and f"this project is at {NEXT};" in outdated.stdout
        and f"is {AFTER_NEXT}" in outdated.stdout
    )
    assert "no release 9.9.9" in make(project, "update", "VERSION=9.9.9").stderr

    to_newest = make(project, "update")
    assert to_newest.returncode == 0, to_newest.stdout + to_newest.stderr
    errors = (project / ERRORS).read_text()
    assert "release=22" in errors and "main=1" not in errors
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == git(template, "rev-parse", f"v{AFTER_NEXT}^{{commit}}").strip()
    git(project, "commit", "-q", "-am", AFTER_NEXT)

    to_main = make(project, "update", "VERSION=main")
    assert to_main.returncode == 0, to_main.stdout + to_main.stderr
    assert "main=1" in (project / ERRORS).read_text()
    git(project, "commit", "-q", "-am", "main")

    # Ahead of the newest release now, on a commit that is no release: the project records none,
    # and a bare update does not take the project back to AFTER_NEXT.
    assert identity(project)["release"] == ""
    main = git(template, "rev-parse", "main").strip()
    outdated = make(project, "outdated")
    assert f"this project is at commit {main[:7]}, which is no release; the newest release" in outdated.stdout
    again = make(project, "update")
    assert again.returncode == 0, again.stdout + again.stderr
    assert (
        again.stdout == f"make update: this project is at {main[:7]}, a commit after {AFTER_NEXT}; nothing to take.\n"
    )
    assert "main=1" in (project / ERRORS).read_text()
    # Back to AFTER_NEXT only when named, and said to be a downgrade.
    back = make(project, "update", f"VERSION={AFTER_NEXT}")
    assert back.returncode == 0, back.stdout + back.stderr
    assert f"make update: {AFTER_NEXT} is older than this project's template ({main[:7]}): a downgrade." in back.stdout
    assert "main=1" not in (project / ERRORS).read_text()


def test_a_plain_cookiecutter_project_adopted_with_its_manuals_commands_takes_the_releases_since(template, tmp_path):
    """Made with cookiecutter from a clone at RELEASE; two releases later, the manual's commands
    (docs/updates.md) link it at RELEASE with the answers it was made with, and take both."""
    platform_clone = clone(str(tmp_path / "origin.git"), tmp_path / "clone")
    env = cookiecutter_config(tmp_path)
    made = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(platform_clone)]
        + ["app_name=orders", 'description=Orders\' "own" service', "lock_dependencies=no"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert made.returncode == 0, made.stderr
    project = commit_as_generated(tmp_path / "orders")
    assert identity(project)["template"] == str(tmp_path / "origin.git")
    assert identity(project)["release"] == RELEASE
    change(template, ERRORS, *FIX_A, "fix A")
    publish(template)
    change(template, ERRORS, "status=error.code,", "status=error.code, release=22,", "fix B")
    publish(template)

    manual = (project / "docs" / "updates.md").read_text().split("## A project without .cruft.json", 1)[1]
    commands = manual.split("```sh\n", 1)[1].split("\n```", 1)[0]
    assert commands.splitlines()[0].startswith("python3 scripts/update.py link '{")
    followed = subprocess.run(
        ["bash", "-e"],
        input=commands,
        cwd=project,
        env={
            **env,
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            **{
                f"GIT_{who}_{what}": value
                for who in ("AUTHOR", "COMMITTER")
                for what, value in (("NAME", "team"), ("EMAIL", "team@example.invalid"))
            },
        },
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert followed.returncode == 0, followed.stdout + followed.stderr
    errors = (project / ERRORS).read_text()
    assert "status=error.code" in errors and "release=22" in errors  # NEXT's change and AFTER_NEXT's
    assert identity(project)["release"] == AFTER_NEXT
    assert make(project, "outdated").returncode == 0
    # The manual's link records the answers the project was made with (quotes and all): the
    # template renders the project again exactly, so updates bring template changes only.
    assert cruft(project, "diff", "--exit-code").returncode == 0


def test_cruft_diff_renders_without_the_lock_or_the_hooks_report(template, tmp_path):
    """cruft renders the template again for a diff: the hook there neither locks (12 s with
    the network, not 1.5 s) nor prints "generated ... git init"."""
    env = {key: value for key, value in os.environ.items() if key != "APPSTACK_SKIP_LOCK"}
    # lock_dependencies stays true in .cruft.json, so the diff's render would lock if the hook let it
    created = subprocess.run(
        ["cruft", "create", str(template), "--no-input", "--extra-context", '{"app_name": "orders"}'],
        cwd=tmp_path,
        env={**env, "APPSTACK_SKIP_LOCK": "1"},
        capture_output=True,
        text=True,
    )
    assert created.returncode == 0, created.stdout + created.stderr
    project = commit_as_generated(tmp_path / "orders")
    assert json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]["lock_dependencies"] is True

    started = time.monotonic()
    diff = subprocess.run(["cruft", "diff"], cwd=project, capture_output=True, text=True, env=env, timeout=600)
    elapsed = time.monotonic() - started
    assert diff.returncode == 0, diff.stderr
    assert diff.stdout + diff.stderr == ""  # nothing differs, and the hook said nothing
    assert elapsed < 10, elapsed
