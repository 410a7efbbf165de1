"""Day 100: a project its team has worked on takes a template release with `make update`. Every
file the template owns takes the release, every file of the team's stays as the team left it,
and the served app has the release."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from gunicorn_server import Gunicorn
from owners import TEAM_PATHS, covers
from releases import (
    DOCKERFILE_LINE,
    MARK,
    PIPFILE_PACKAGE,
    README_PARAGRAPH,
    RELEASE_HEADER,
    add_orders_route_to_the_example,
    assert_the_projects_suite_passes,
    commit_as_generated,
    committed_project,
    cookiecutter_config,
    edit,
    git,
    make_plain,
    make_template_repo,
    make_update,
    python3_and_git,
    release_touching_every_template_file,
    teams_week,
)

from tools.cache import run
from tools.helm import helm_binaries
from tools.project import REPO

# The template's copies of the team's files: a release that changes them must not reach a project.
TEAMS_FILES_IN_THE_TEMPLATE = ("README.md", "source/api/__init__.py", "source/tests/conftest.py", "chart/values.yaml")


@pytest.fixture(autouse=True)
def own_temporary_folder(tmp_path, monkeypatch):
    """The programs these tests start put their temporary files in the test's folder: the hooks
    of the releases before 3.0.0 leave cookiecutter's copies of them behind, as their projects did."""
    folder = tmp_path / "tmp"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))


@pytest.fixture
def served(project_venv, tmp_path):
    """served(project) -> the project's app under real gunicorn (one worker), stopped after the test."""
    servers = []

    def serve(project):
        servers.append(Gunicorn(project, project_venv, tmp_path / f"gunicorn-{len(servers)}", workers=1))
        return servers[-1]

    yield serve
    for server in servers:
        server.kill()


@pytest.fixture
def worked_on(tmp_path):
    """(template repository, project): a project made from the template, committed, after the
    team's first week (tests/releases.py, teams_week)."""
    template = make_template_repo(tmp_path / "template")
    project = committed_project(template, tmp_path)
    teams_week(project)
    return template, project


def files_of(project, *paths):
    return {path: (project / path).read_bytes() for path in paths}


def test_a_release_that_changes_every_template_file_merges_without_conflict(worked_on, project_venv, served):
    template, project = worked_on
    teams = [path for path in git(project, "ls-files").split() if any(covers(row, path) for row in TEAM_PATHS)]
    assert "chart/values-prod.yaml" in teams and "source/api/orders.py" in teams
    before = files_of(project, *teams)
    marked = release_touching_every_template_file(template, also=TEAMS_FILES_IN_THE_TEMPLATE)

    updated = make_update(project)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "conflict" not in (updated.stdout + updated.stderr).lower()
    assert git(project, "ls-files", "--others", "--", "*.rej") == ""
    markers = subprocess.run(["git", "grep", "-l", "-E", "^(<<<<<<<|>>>>>>>)( |$)"], cwd=project, capture_output=True)
    assert markers.stdout == b""

    # Every file of the template's took the release; none of the team's changed.
    missing = [path for path in marked if (project / path).exists() and MARK not in (project / path).read_text()]
    assert missing == []
    assert [path for path in marked if not (project / path).exists()] == []
    assert files_of(project, *teams) == before
    assert not (project / "source/api/greetings.py").exists()  # the team deleted the example
    # The files both own lines of keep the team's lines beside the release's.
    assert DOCKERFILE_LINE in (project / "Dockerfile").read_text()
    assert PIPFILE_PACKAGE in (project / "source/Pipfile").read_text()
    assert README_PARAGRAPH in (project / "README.md").read_text()

    assert_the_projects_suite_passes(project, project_venv)
    server = served(project)
    status, headers, body = server.get("/api/v1/orders")
    assert (status, json.loads(body)) == (200, {"orders": []})
    assert headers.get(RELEASE_HEADER[0]) == RELEASE_HEADER[1]
    assert server.get("/api/v1/hello")[0] == 404


# ---- taking 2.0.0, the release that gave every file one owner, by the CHANGELOG's commands -----

FIRST_RELEASE = "ca9718a"  # 1.0.0, the CHANGELOG's first release
BEFORE_OWNERS = "2fef169"  # a commit after 1.0.0, before 2.0.0: the platform's code in source/api
RELEASE_2_0_0 = "202fd3a"  # 2.0.0, whose cookiecutter.json names tools.release.TemplateIdentity


def changelog_commands(release, lead):
    """The shell block that follows the paragraph starting with `lead` in `release`'s section
    (None: the newest section that has one, [Unreleased] or this working tree's release)."""
    changelog = (REPO / "CHANGELOG.md").read_text()
    sections = [section.split("\n## [", 1)[0] for section in changelog.split("\n## [")[1:]]
    if release:
        sections = [section for section in sections if section.startswith(f"{release}]")]
    section = next(section for section in sections if f"\n{lead}" in section)
    after = section.split(f"\n{lead}", 1)[1]
    return after.split("```sh\n", 1)[1].split("\n```\n", 1)[0]


def template_with_history(path):
    """The template repository, with this clone's history, so that earlier commits can be checked
    out, and 2.0.0 tagged where CI tagged it (the working tree is a later release)."""
    template = make_template_repo(path)
    fetched = subprocess.run(["git", "fetch", "-q", str(REPO), "HEAD"], cwd=template, capture_output=True, text=True)
    assert fetched.returncode == 0, fetched.stderr
    for commit in (FIRST_RELEASE, BEFORE_OWNERS, RELEASE_2_0_0):
        found = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=template)
        assert found.returncode == 0, f"{commit} is not in this clone's history: clone the template with its history"
    git(template, "tag", "-f", "v2.0.0", RELEASE_2_0_0)
    return template


def plain_environment(tmp_path):
    """The environment of a team's shell with python3 and git alone on PATH, git knowing who commits."""
    path = os.pathsep.join([str(python3_and_git(tmp_path / "python3-and-git")), "/usr/bin", "/bin"])
    return {
        **os.environ,
        "PATH": path,
        "GIT_AUTHOR_NAME": "team",
        "GIT_AUTHOR_EMAIL": "team@example.invalid",
        "GIT_COMMITTER_NAME": "team",
        "GIT_COMMITTER_EMAIL": "team@example.invalid",
    }


def follow(commands, project):
    """Run the CHANGELOG's commands as a user pastes them into a shell: each line, whatever the
    one before it returned; with cruft and this Python on PATH."""
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "GIT_AUTHOR_NAME": "team",
        "GIT_AUTHOR_EMAIL": "team@example.invalid",
        "GIT_COMMITTER_NAME": "team",
        "GIT_COMMITTER_EMAIL": "team@example.invalid",
    }
    return subprocess.run(["bash"], input=commands, cwd=project, env=env, capture_output=True, text=True, timeout=1800)


def assert_serves_the_platform_and_the_teams_route(project, project_venv, served):
    assert_the_projects_suite_passes(project, project_venv)
    server = served(project)
    status, headers, body = server.get("/api/v1/orders")
    assert (status, json.loads(body)) == (200, {"orders": []})
    assert headers.get("X-Request-Id")
    assert server.get("/api/v1/hello?name=Ada")[2] == '{"message":"Hello, Ada!"}\n'
    status, _, metrics = server.get("/metrics")
    assert status == 200 and "/api/v1/orders" in metrics


def test_a_project_made_from_1_0_0_takes_2_0_0_with_the_changelogs_commands(tmp_path, project_venv, served):
    template = template_with_history(tmp_path / "template")
    git(template, "tag", "v1.0.0", FIRST_RELEASE)
    project = committed_project(template, tmp_path, "--checkout", "v1.0.0", app_name="orders")
    add_orders_route_to_the_example(project)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the team's route")

    followed = follow(changelog_commands("2.0.0", "**A project made from 1.0.0.**"), project)
    assert followed.returncode == 0, followed.stdout + followed.stderr
    assert git(project, "status", "--porcelain") == ""
    assert (project / "source" / "Pipfile.lock").is_file()
    assert not (project / "source" / "api" / "health.py").exists()
    assert_serves_the_platform_and_the_teams_route(project, project_venv, served)


def test_a_project_made_after_1_0_0_takes_2_0_0_with_the_changelogs_commands(tmp_path, project_venv, served):
    template = template_with_history(tmp_path / "template")
    project = committed_project(template, tmp_path, "--checkout", BEFORE_OWNERS, app_name="orders")
    add_orders_route_to_the_example(project)
    with (project / "README.md").open("a") as readme:
        readme.write(README_PARAGRAPH)
    edit(project / "chart" / "values-prod.yaml", "cpu: 250m", "cpu: 400m")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the team's week")
    readme = (project / "README.md").read_text()

    followed = follow(changelog_commands("2.0.0", "**A project made from a later commit.**"), project)
    assert "make update: the template's changes conflict with yours in:\n  README.md\n" in followed.stderr
    assert git(project, "status", "--porcelain") == "", followed.stdout + followed.stderr
    assert (project / "README.md").read_text() == readme
    assert "cpu: 400m" in (project / "chart" / "values-prod.yaml").read_text()
    assert (project / "source" / "Pipfile.lock").is_file()
    assert_serves_the_platform_and_the_teams_route(project, project_venv, served)


# ---- a project made by 1.0.0's Quickstart takes this release, by the CHANGELOG's commands -------


def take_the_templates_side(text):
    """A conflicted file resolved as the template has it."""
    return re.sub(r"<<<<<<< [^\n]*\n.*?\n=======\n(.*?)>>>>>>> [^\n]*\n", r"\1", text, flags=re.DOTALL)


def test_a_project_made_by_1_0_0s_quickstart_takes_this_release_pasted_into_an_interactive_shell(
    tmp_path, project_venv, served
):
    """No .cruft.json, a Pipfile line the team changed and the release changes too: the commands
    stop at that conflict and the shell stays open; resolved and committed, `make update`
    finishes, and the service serves the platform's endpoints."""
    template = template_with_history(tmp_path / "template")
    git(template, "tag", "v1.0.0", FIRST_RELEASE)
    commands = changelog_commands(None, "**A project made from 1.0.0**")
    this_release(template)
    # 1.0.0's Quickstart: cookiecutter on the team's clone of the template, then at 1.0.0.
    clone = tmp_path / "clone-at-1.0.0"
    git(tmp_path, "clone", "-q", "--branch", "v1.0.0", str(template), str(clone))
    made = subprocess.run(
        [sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(clone)]
        + ["app_name=orders", "lock_dependencies=no"],
        capture_output=True,
        text=True,
        env=cookiecutter_config(tmp_path),
    )
    assert made.returncode == 0, made.stderr
    project = commit_as_generated(tmp_path / "orders")
    assert not (project / ".cruft.json").exists()
    add_orders_route_to_the_example(project)
    edit(project / "source" / "Pipfile", 'gunicorn = ">=23"', 'gunicorn = ">=23.0"')
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the team's week")

    pasted = commands.replace("<the template's URL>", str(template)).replace("<your app_name>", "orders")
    shell = subprocess.run(
        ["bash", "-i"],
        input=pasted + "\necho the shell is still open\n",
        cwd=project,
        env={**plain_environment(tmp_path), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=900,
    )
    output = shell.stdout + shell.stderr
    assert "the shell is still open" in shell.stdout, output
    assert "  source/Pipfile: both changed the same lines" in shell.stderr, output
    assert "`make update` again finishes: the platform's code out of source/api" in shell.stderr, output
    assert git(project, "log", "-1", "--format=%s").strip() == "Link to flask-appstack 1.0.0"
    assert (project / "source" / "api" / "health.py").exists()  # stopped before moving it

    pipfile = project / "source" / "Pipfile"
    pipfile.write_text(take_the_templates_side(pipfile.read_text()))
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "take flask-appstack, the Pipfile resolved")
    finished = make_plain(project, "update")
    assert finished.returncode == 0, finished.stdout + finished.stderr
    assert "calls scale.init_app(app)" in finished.stdout
    assert not (project / "source" / "api" / "health.py").exists()
    assert_serves_the_platform_and_the_teams_route(project, project_venv, served)


def test_tasks_generate_checks_out_2_0_0_from_the_clones_root(tmp_path):
    """`python3 tasks.py generate --checkout v2.0.0` in the clone's root: 2.0.0's extension is
    tools.release.TemplateIdentity, which the clone's own `tools` package (today's, without it)
    must not hide when cookiecutter loads it from the checkout."""
    template = template_with_history(tmp_path / "template")
    extensions = json.loads(git(template, "show", "v2.0.0:cookiecutter.json"))["_extensions"]
    assert extensions == ["tools.release.TemplateIdentity"]
    assert "TemplateIdentity" not in (template / "tools" / "release.py").read_text()
    (template / ".venv").symlink_to(REPO / ".venv")  # its tools, installed already: the same requirements

    out = tmp_path / "out"
    made = subprocess.run(
        [sys.executable, "tasks.py", "generate", "--checkout", "v2.0.0", "--no-input", "-o", str(out)]
        + ["app_name=orders", "lock_dependencies=no"],
        cwd=template,
        capture_output=True,
        text=True,
        env=cookiecutter_config(tmp_path),
        timeout=600,
    )
    assert made.returncode == 0, made.stdout + made.stderr
    state = json.loads((out / "orders" / ".cruft.json").read_text())
    assert (state["checkout"], state["commit"][:7]) == ("v2.0.0", RELEASE_2_0_0)
    recorded = json.loads((out / "orders" / ".flask-appstack.json").read_text())
    assert recorded["release"] == "2.0.0"


# ---- a 2.0.0 project whose team changed its values takes this release -------------------------


def this_release(template):
    """The release the CHANGELOG's newest section's commands name (they clone it), tagged on the
    template's working tree until it is cut."""
    commands = changelog_commands(None, "**A project made from 1.0.0**")
    release = re.search(r"--branch (v\d+\.\d+\.\d+) ", commands).group(1)
    if git(template, "tag", "--list", release).strip() != release:
        git(template, "tag", release)
    return release


def test_a_2_0_0_project_keeps_the_values_its_team_set_and_leaves_the_platforms_to_defaults_yaml(tmp_path):
    """2.0.0's manual said to enable the NetworkPolicy in chart/values.yaml, then the template's
    file of every platform default. `make update` (2.0.0's, with cruft) and the CHANGELOG's
    second command leave the team's values alone in that file, now the team's."""
    template = template_with_history(tmp_path / "template")
    release = this_release(template)
    project = committed_project(template, tmp_path, "--checkout", "v2.0.0", app_name="orders")
    values = project / "chart" / "values.yaml"
    edit(values, "cuts the service off.\n  enabled: false\n", "cuts the service off.\n  enabled: true\n")
    edit(
        values, "  from: []\n", "  from:\n    - namespaceSelector:\n        matchLabels:\n          team: ambassador\n"
    )
    edit(values, '  GUNICORN_WORKERS: "6"\n', '  GUNICORN_WORKERS: "6"\n  ORDERS_PAGE_SIZE: "50"\n')
    git(project, "commit", "-q", "-am", "the NetworkPolicy, as 2.0.0's manual said, and a variable")

    followed = follow(changelog_commands(None, "**A project at 2.0.0.**"), project)
    output = followed.stdout + followed.stderr
    assert followed.returncode == 0, output
    assert "chart/values.yaml" in followed.stderr  # make update listed it: the team had changed it
    kept = yaml.safe_load(values.read_text())
    assert kept == {
        "networkPolicy": {"enabled": True, "from": [{"namespaceSelector": {"matchLabels": {"team": "ambassador"}}}]},
        "env": {"ORDERS_PAGE_SIZE": "50"},
    }, output
    assert "<<<<<<<" not in values.read_text() and not (project / "chart" / "values.yaml.rej").exists()
    assert (project / "chart" / "defaults.yaml").is_file()
    state = json.loads((project / ".cruft.json").read_text())
    assert state["commit"] == git(template, "rev-parse", f"{release}^{{commit}}").strip()
    run([Path(sys.executable).parent / "yamllint", "--strict", "-c", project / ".yamllint.yaml", values])
    chart = project / "chart"
    for hostspace in ("dev", "stage", "prod"):
        rendered = run(
            [
                helm_binaries()["3.17"],
                "template",
                "orders",
                chart,
                "-f",
                values,
                "-f",
                chart / f"values-{hostspace}.yaml",
            ]
        )
        objects = [document for document in yaml.safe_load_all(rendered.stdout) if document]
        assert "NetworkPolicy" in [document["kind"] for document in objects], hostspace
        [deployment] = [document for document in objects if document["kind"] == "Deployment"]
        env = {
            item["name"]: item.get("value") for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        assert env["ORDERS_PAGE_SIZE"] == "50" and env["LOG_LEVEL"] in ("INFO", "DEBUG"), hostspace
