"""Template updates: a project made with cruft takes a later template release with `make update`
(python3 and git alone: the project's scripts/update.py renders the template with its own pinned
cookiecutter, merges three-way, lists conflicts and re-locks), and the team's work stays; every
fault (a release removing a file the team changed, a host that never answers, an interruption)
ends with the project as it was or fully updated, and one message. `tasks.py generate` makes
projects with cruft."""

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from jobs import interruptible
from releases import (
    RELEASE,
    add_orders_route_to_the_example,
    change_template,
    commit_as_generated,
    committed_project,
    cookiecutter_config,
    cruft,
    edit,
    git,
    make_plain,
    make_template_repo,
    make_update,
    publish,
    python3_and_git,
    template_file,
)

from tools.net import silent_server
from tools.project import DEFAULTS, REPO

# The template fix the tests release: errors say their status.
ERRORS = "source/scale/errors.py"
FIXED = "jsonify(error=error.name, status=error.code,"


@pytest.fixture
def template_repo(tmp_path):
    return make_template_repo(tmp_path / "template")


@pytest.fixture
def teams_project(template_repo, tmp_path):
    """A project made with cruft, committed, then worked on by its team: a route of its own
    with a test, and an edited value; the template then gets a fix in scale/errors.py."""
    project = committed_project(template_repo, tmp_path, app_name="orders")
    add_orders_route_to_the_example(project)
    edit(project / "chart" / "values-prod.yaml", "cpu: 250m", "cpu: 400m")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the team's work")

    change_template(template_repo, ERRORS, "jsonify(error=error.name,", FIXED, "template fix: errors say their status")
    publish(template_repo)
    return project


def test_make_update_names_every_conflict_and_fails(teams_project, template_repo):
    """The team and the template changed the same line: the merge cannot choose."""
    edit(
        teams_project / "source" / "scale" / "errors.py",
        "return jsonify(error=error.name,",
        "return jsonify(error=error.name, team=True,",
    )
    git(teams_project, "commit", "-q", "-am", "the team's own error format")

    updated = make_update(teams_project)
    assert updated.returncode != 0, updated.stdout + updated.stderr
    assert (
        "make update: your changes and the template's conflict in:\n"
        "  source/scale/errors.py: both changed the same lines: see its <<<<<<< markers"
    ) in updated.stderr
    conflicted = (teams_project / "source" / "scale" / "errors.py").read_text()
    assert "<<<<<<< yours" in conflicted and "team=True" in conflicted and "status=error.code" in conflicted
    assert "source/scale/errors.py" in git(teams_project, "status", "--porcelain")


def test_in_one_pipe_the_files_taken_come_before_the_conflicts(teams_project):
    """`make update 2>&1 | less`, or a CI log: what the update printed arrives in the order it
    was printed, though the list goes to stdout and the conflicts to stderr (no
    PYTHONUNBUFFERED on a team's laptop)."""
    edit(teams_project / "source" / "scale" / "errors.py", "error=error.name,", "error=error.name, team=True,")
    git(teams_project, "commit", "-q", "-am", "the team's own error format")

    environment = {name: value for name, value in os.environ.items() if name != "PYTHONUNBUFFERED"}
    environment["PATH"] = str(python3_and_git(teams_project.parent / "python3-and-git"))
    updated = subprocess.run(
        [shutil.which("make"), "update"],
        cwd=teams_project,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = updated.stdout.splitlines()
    taken = next(number for number, line in enumerate(lines) if line.startswith("  changed  docs/updates.md"))
    conflicts = next(number for number, line in enumerate(lines) if "the template's conflict in:" in line)
    assert lines[0].startswith(f"make update: {RELEASE} -> "), updated.stdout
    assert taken < conflicts, updated.stdout


def test_a_conflict_is_marked_in_the_file_even_where_the_project_never_held_the_templates_original(
    template_repo, tmp_path
):
    """Here the team changed the file before its first commit: cruft made a *.rej file of such
    a conflict, which an old .gitignore hid; the merge has the original from the render."""
    created = cruft(
        tmp_path, "create", str(template_repo), "--no-input", "--extra-context", '{"lock_dependencies": false}'
    )
    assert created.returncode == 0, created.stderr
    project = tmp_path / DEFAULTS["app_name"]
    errors = project / "source" / "scale" / "errors.py"
    edit(errors, "return jsonify(error=error.name,", "return jsonify(error=error.name, team=True,")
    with (project / ".gitignore").open("a") as ignore:
        ignore.write("*.rej\n")
    commit_as_generated(project, "generated, with the team's first changes")
    change_template(template_repo, ERRORS, "jsonify(error=error.name,", FIXED, "template fix: errors say their status")
    publish(template_repo)

    updated = make_update(project)
    assert updated.returncode != 0, updated.stdout + updated.stderr
    assert "conflict in:\n  source/scale/errors.py: both changed the same lines" in updated.stderr
    assert "<<<<<<<" in errors.read_text()
    assert list(project.rglob("*.rej")) == []


def test_make_update_in_a_repository_without_commits_says_to_commit_first(template_repo, tmp_path):
    created = cruft(
        tmp_path, "create", str(template_repo), "--no-input", "--extra-context", '{"lock_dependencies": false}'
    )
    assert created.returncode == 0, created.stderr
    project = tmp_path / DEFAULTS["app_name"]
    git(project, "init", "-q", "-b", "main")
    updated = make_update(project)
    assert updated.returncode != 0
    assert "this repository has none: commit the project as it was generated first" in updated.stderr
    assert "clean working tree" not in updated.stderr


def test_make_update_refuses_a_dirty_working_tree(teams_project):
    (teams_project / "source" / "api" / "greetings.py").write_text("# half-done work\n")
    updated = make_update(teams_project)
    assert updated.returncode != 0
    assert "make update needs a clean working tree: commit or stash your changes first" in updated.stderr
    assert (teams_project / "source" / "api" / "greetings.py").read_text() == "# half-done work\n"


def test_cruft_conflict_files_are_not_ignored(default_project, tmp_path):
    shutil.copy(default_project / ".gitignore", tmp_path)
    git(tmp_path, "init", "-q")

    def ignored(path):
        return subprocess.run(["git", "check-ignore", "--no-index", "-q", path], cwd=tmp_path).returncode == 0

    assert ignored(".venv/bin/python")  # the check works
    assert not ignored("source/scale/errors.py.rej")


def test_make_update_relocks_when_the_pipfile_changed(teams_project, template_repo):
    edit(template_file(template_repo, "source/Pipfile"), "[packages]\n", '[packages]\nsix = ">=1.16"\n')
    git(template_repo, "commit", "-q", "-am", "template: a new dependency")
    publish(template_repo)
    updated = make_update(teams_project)  # scripts/lock.py finds the Python and the pipenv itself
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "make update: source/Pipfile changed: re-locking" in updated.stdout
    lock = json.loads((teams_project / "source" / "Pipfile.lock").read_text())
    assert "six" in lock["default"]


def test_make_update_with_nothing_new_leaves_the_lock_alone(teams_project, template_repo):
    change_template(
        template_repo,
        ERRORS,
        FIXED,
        "jsonify(error=error.name,",
        "the fix undone: the template is as the project was made",
    )
    publish(template_repo)
    updated = make_update(teams_project)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "make update: done; source/Pipfile is unchanged, the lock stays." in updated.stdout


def test_tasks_generate_makes_the_project_with_cruft(template_repo, tmp_path):
    """`python3 tasks.py generate` runs this command: cruft create, so .cruft.json is there."""
    import tasks

    notes = []
    command = tasks.generate_command(
        ["--no-input", "-o", str(tmp_path / "out"), "app_name=orders", "hpa=no", "lock_dependencies=no"],
        template_repo,
        notes,
    )
    # .venv's cruft, not `python -m cruft`: the current folder stays off sys.path (test_releases.py).
    assert command[:4] == [str(tasks.VENV / "bin" / "cruft"), "create", "--checkout", f"v{RELEASE}"]  # not main
    # Without an origin, the folder is the template, and the note says how to record its home later.
    [note] = notes
    assert "this clone has no `origin` remote" in note
    assert note.endswith("run in the project: python3 scripts/update.py template <the template's URL>")
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    project = tmp_path / "out" / "orders"
    state = json.loads((project / ".cruft.json").read_text())
    assert state["template"] == str(template_repo)
    assert state["context"]["cookiecutter"]["hpa"] is False  # "no" on the command line, a boolean here
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    assert cruft(project, "check").returncode == 0

    # That command, once the template has a home:
    home = "https://git.example.com/platform/flask-appstack"
    recorded = subprocess.run(
        [sys.executable, "scripts/update.py", "template", home], cwd=project, capture_output=True, text=True
    )
    assert recorded.returncode == 0, recorded.stderr
    assert json.loads((project / ".cruft.json").read_text())["template"] == home
    assert json.loads((project / ".flask-appstack.json").read_text())["template"] == home


def test_tasks_generate_falls_back_to_cookiecutter_for_what_cruft_does_not_take(template_repo):
    import tasks

    assert tasks.cruft_create_args(["--replay"]) is None
    assert tasks.generate_command(["--replay"], template_repo)[:2] == [
        str(tasks.VENV / "bin" / "cookiecutter"),
        str(template_repo),
    ]
    assert tasks.cruft_create_args(["-o", "out", "--no-input", "-f", "hpa=no", "description=a = b"]) == [
        "--output-dir",
        "out",
        "--no-input",
        "--overwrite-if-exists",
        "--extra-context",
        json.dumps({"hpa": "no", "description": "a = b"}),
    ]


def test_after_a_rejected_answer_the_quickstart_prints_a_command_that_runs_in_its_shell(tmp_path):
    """`python3 tasks.py generate`: cruft is in the template's .venv, not on the user's PATH, so
    the command to run again is tasks.py's; it is the last line, and no traceback comes before."""
    out = tmp_path / "out"
    quickstart = [sys.executable, str(REPO / "tasks.py"), "generate", "--no-input", "-o", str(out)]
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if not (Path(p) / "cruft").exists())
    env = {**cookiecutter_config(tmp_path), "PATH": path}
    rejected = subprocess.run(
        [*quickstart, "app_name=Orders", "app_version=4.7.3", "lock_dependencies=no"],
        env=env,
        capture_output=True,
        text=True,
    )
    assert rejected.returncode != 0
    assert "Traceback" not in rejected.stderr and "╭" not in rejected.stderr
    lines = rejected.stderr.splitlines()
    assert lines[0] == "flask-appstack: 1 answer(s) cannot be used, so nothing was generated:"
    words = shlex.split(lines[-1])
    assert words[:3] == ["python3", str(REPO / "tasks.py"), "generate"]
    assert "app_version=4.7.3" in words and not [word for word in words if word.startswith("pipeline_ref=")]

    words[words.index("app_name=Orders")] = "app_name=orders"
    again = subprocess.run([sys.executable, *words[1:]], env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    pipeline = yaml.safe_load((out / "orders" / "azure-pipelines.yaml").read_text())
    assert pipeline["resources"]["repositories"][0]["ref"] == "refs/tags/v4.7.3"


def test_a_rejected_cruft_create_prints_a_cruft_command_that_creates_the_project(template_repo, tmp_path):
    rejected = cruft(
        tmp_path,
        "create",
        "--no-input",
        "--extra-context",
        json.dumps({"app_name": "Orders", "hpa": False, "lock_dependencies": False}),
        str(template_repo),
    )
    assert rejected.returncode != 0 and 'app_name = "Orders"' in rejected.stderr
    [line] = [line for line in rejected.stderr.splitlines() if line.startswith("cruft create ")]
    words = shlex.split(line)
    answers = json.loads(words[words.index("--extra-context") + 1])
    assert answers["hpa"] is False and answers["app_name"] == "Orders"
    words[words.index("--extra-context") + 1] = json.dumps({**answers, "app_name": "orders"})
    created = cruft(tmp_path, *words[1:])
    assert created.returncode == 0, created.stdout + created.stderr
    state = json.loads((tmp_path / "orders" / ".cruft.json").read_text())
    assert state["context"]["cookiecutter"]["app_name"] == "orders"
    assert state["context"]["cookiecutter"]["hpa"] is False


# ---- faults: a removed file, a silent host, an interruption ------------------------------------


def test_a_release_that_removes_a_file_the_team_changed_lists_it_as_a_conflict(teams_project, template_repo):
    """A release renames docs/kubernetes.md; the team had added a paragraph to it."""
    edit(teams_project / "docs" / "kubernetes.md", "## Deployment objects\n", "## Deployment objects\n\nOurs.\n")
    git(teams_project, "commit", "-q", "-am", "the team's note in the manual")
    manual = template_file(template_repo, "docs/kubernetes.md")
    git(template_repo, "mv", str(manual), str(manual.with_name("chart.md")))
    git(template_repo, "commit", "-q", "-m", "docs/kubernetes.md is docs/chart.md")
    publish(template_repo)

    updated = make_update(teams_project)
    assert updated.returncode != 0, updated.stdout + updated.stderr
    assert "  docs/kubernetes.md: you changed it, and the template no longer makes it" in updated.stderr
    assert "Ours." in (teams_project / "docs" / "kubernetes.md").read_text()
    assert (teams_project / "docs" / "chart.md").is_file() and "  added    docs/chart.md" in updated.stdout


@pytest.mark.parametrize("command", ["outdated", "update"])
def test_a_template_host_that_never_answers_is_given_up_on_by_name(teams_project, command):
    with silent_server() as port:
        url = f"http://127.0.0.1:{port}/platform/flask-appstack.git"
        for name in (".flask-appstack.json", ".cruft.json"):
            state = json.loads((teams_project / name).read_text())
            (teams_project / name).write_text(json.dumps({**state, "template": url}))
        git(teams_project, "commit", "-q", "-am", "the template moved")
        started = time.monotonic()
        given_up = make_plain(teams_project, command, env={"APPSTACK_GIT_TIMEOUT": "2"})
        assert time.monotonic() - started < 30
    assert given_up.returncode != 0
    assert f"the template's host did not answer within 2 s ({url})" in given_up.stderr
    assert "Traceback" not in given_up.stderr
    assert git(teams_project, "status", "--porcelain") == ""


def start_make(project, *args, env=None):
    """`make ARGS` with python3 and git alone on PATH, in a process group of its own (as a
    terminal starts it), its output read as it comes."""
    bin_dir = python3_and_git(project.parent / "python3-and-git")
    environment = {**os.environ, **(env or {}), "PATH": str(bin_dir), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(
        [shutil.which("make"), *args],
        cwd=project,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=interruptible,
    )


def test_an_update_interrupted_before_it_writes_changes_nothing(teams_project, tmp_path):
    temp = tmp_path / "temp"
    temp.mkdir()
    make = start_make(teams_project, "update", env={"TMPDIR": str(temp)})
    deadline = time.monotonic() + 120
    while not list(temp.glob("flask-appstack-update-*/tmp/tmp*")) and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(make.pid, signal.SIGINT)  # Ctrl-C, while the template renders
    out, err = make.communicate(timeout=60)
    assert "make update: interrupted (SIGINT); nothing was changed: run it again." in err, out + err
    assert "Traceback" not in err
    assert git(teams_project, "status", "--porcelain", "--untracked-files=all") == ""
    assert list(temp.iterdir()) == []


def test_an_update_interrupted_while_it_locks_says_the_update_is_taken_and_to_lock(teams_project, template_repo):
    edit(template_file(template_repo, "source/Pipfile"), "[packages]\n", '[packages]\nsix = ">=1.16"\n')
    git(template_repo, "commit", "-q", "-am", "template: a new dependency")
    publish(template_repo)
    make = start_make(teams_project, "update")
    for line in make.stdout:
        if "re-locking" in line:
            break
    os.killpg(make.pid, signal.SIGINT)
    out, err = make.communicate(timeout=120)
    assert (
        "make update: interrupted (SIGINT); the change is taken, but source/Pipfile.lock is out of date: "
        "run `make lock`, then test and commit."
    ) in err, out + err
    assert "Traceback" not in err
    assert 'six = ">=1.16"' in (teams_project / "source" / "Pipfile").read_text()
    assert (
        json.loads((teams_project / ".cruft.json").read_text())["commit"]
        == git(template_repo, "rev-parse", "HEAD").strip()
    )
