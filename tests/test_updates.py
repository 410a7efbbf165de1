"""Template updates: a project made with cruft takes a later template change with `cruft update`;
`tasks.py generate` makes projects with cruft; a project made with plain cookiecutter is linked
with the command its README shows."""
import json
import os
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml

from conftest import REPO

pytestmark = pytest.mark.slow

IGNORED = shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache", ".cache", "build")


def git(cwd, *args):
    return subprocess.run(
        ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args],
        cwd=cwd, check=True, capture_output=True, text=True,
    ).stdout


def cruft(cwd, *args):
    return subprocess.run(["cruft", *args], cwd=cwd, capture_output=True, text=True)


def cookiecutter_config(tmp_path):
    """A user config that keeps cookiecutter's replay files in tmp_path, not in ~."""
    config = tmp_path / "cookiecutterrc.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\ncookiecutters_dir: {tmp_path / 'cookiecutters'}\n")
    return {**os.environ, "COOKIECUTTER_CONFIG": str(config)}


@pytest.fixture
def template_repo(tmp_path):
    """A git repository holding the template as it is in this working tree."""
    repo = tmp_path / "template"
    shutil.copytree(REPO, repo, ignore=IGNORED)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "template v1")
    return repo


def test_cruft_update_takes_template_changes_and_keeps_the_teams_code(template_repo, tmp_path):
    projects = tmp_path / "projects"
    projects.mkdir()
    created = cruft(projects, "create", str(template_repo), "--no-input",
                    "--extra-context", json.dumps({"app_name": "orders", "lock_dependencies": False}))
    assert created.returncode == 0, created.stdout + created.stderr
    project = projects / "orders"
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")

    # The team writes code; the platform team changes the template.
    team_code = project / "source" / "api" / "greetings.py"
    team_code.write_text(team_code.read_text() + "\n# the team's own change\n")
    git(project, "commit", "-q", "-am", "team change")
    makefile = template_repo / "{{cookiecutter.app_name}}" / "Makefile"
    makefile.write_text(makefile.read_text() + "\n# template v2\n")
    greetings = template_repo / "{{cookiecutter.app_name}}" / "source" / "api" / "greetings.py"
    greetings.write_text(greetings.read_text() + "\n# template v2 example change\n")
    git(template_repo, "commit", "-q", "-am", "template v2")

    assert cruft(project, "check").returncode != 0  # the project is behind
    updated = cruft(project, "update", "--skip-apply-ask", "--allow-untracked-files")
    assert updated.returncode == 0, updated.stdout + updated.stderr

    assert "# template v2" in (project / "Makefile").read_text()
    assert "# the team's own change" in team_code.read_text()
    assert "template v2 example change" not in team_code.read_text()  # source/api is skipped
    assert cruft(project, "check").returncode == 0
    assert not list(project.rglob("*.rej"))


def test_cruft_update_moves_the_project_to_a_new_pipeline_release(template_repo, tmp_path):
    """The README's upgrade path: new answers for app_version and pipeline_ref, nothing else."""
    created = cruft(tmp_path, "create", str(template_repo), "--no-input",
                    "--extra-context", json.dumps({"lock_dependencies": False}))
    assert created.returncode == 0, created.stdout + created.stderr
    project = tmp_path / "flask-app"
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")

    new = {"app_version": "4.7.3", "pipeline_ref": "refs/tags/v4.7.3"}
    updated = cruft(project, "update", "--skip-apply-ask", "--variables-to-update", json.dumps(new))
    assert updated.returncode == 0, updated.stdout + updated.stderr

    pipeline = yaml.safe_load((project / "azure-pipelines.yaml").read_text())
    assert pipeline["extends"]["parameters"]["appVersion"] == "4.7.3"
    assert pipeline["resources"]["repositories"][0]["ref"] == "refs/tags/v4.7.3"
    assert json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]["app_version"] == "4.7.3"


def test_tasks_generate_makes_the_project_with_cruft(template_repo, tmp_path):
    """`python3 tasks.py generate` runs this command: cruft create, so .cruft.json is there."""
    import tasks

    command = tasks.generate_command(
        ["--no-input", "-o", str(tmp_path / "out"), "app_name=orders", "hpa=no", "lock_dependencies=no"],
        template_repo)
    assert command[:3] == ["-m", "cruft", "create"]
    result = subprocess.run([sys.executable, *command], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    project = tmp_path / "out" / "orders"
    state = json.loads((project / ".cruft.json").read_text())
    assert state["template"] == str(template_repo)
    assert state["context"]["cookiecutter"]["hpa"] is False  # "no" on the command line, a boolean here
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    assert cruft(project, "check").returncode == 0


def test_tasks_generate_falls_back_to_cookiecutter_for_what_cruft_does_not_take(template_repo):
    import tasks

    assert tasks.cruft_create_args(["--replay"]) is None
    assert tasks.generate_command(["--replay"], template_repo)[:2] == ["-m", "cookiecutter"]
    assert tasks.cruft_create_args(["-o", "out", "--no-input", "-f", "hpa=no", "description=a = b"]) == [
        "--output-dir", "out", "--no-input", "--overwrite-if-exists",
        "--extra-context", json.dumps({"hpa": "no", "description": "a = b"})]


def test_a_cookiecutter_project_is_linked_with_the_command_its_readme_shows(template_repo, tmp_path):
    made = subprocess.run([sys.executable, "-m", "cookiecutter", "--no-input", "-o", str(tmp_path), str(template_repo),
                           "app_name=orders", "description=Orders' \"own\" service", "lock_dependencies=no"],
                          capture_output=True, text=True, env=cookiecutter_config(tmp_path))
    assert made.returncode == 0, made.stderr
    project = tmp_path / "orders"
    assert not (project / ".cruft.json").exists()
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "generated")
    assert "NoCruftFound" in cruft(project, "check").stderr

    readme = (project / "README.md").read_text()
    [line] = [line for line in readme.splitlines() if line.startswith("cruft link ")]
    linked = cruft(project, *shlex.split(line)[1:])
    assert linked.returncode == 0, linked.stdout + linked.stderr
    assert cruft(project, "check").returncode == 0
    # The README's answers are the ones the project was made with: the template renders it again
    # exactly, so the first `cruft update` brings template changes only.
    diff = cruft(project, "diff", "--exit-code")
    assert diff.returncode == 0, diff.stdout


def test_a_rejected_cruft_create_prints_a_cruft_command_that_creates_the_project(template_repo, tmp_path):
    rejected = cruft(tmp_path, "create", "--no-input", "--extra-context",
                     json.dumps({"app_name": "Orders", "hpa": False, "lock_dependencies": False}), str(template_repo))
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
