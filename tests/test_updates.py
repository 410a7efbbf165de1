"""Template updates: a project made with cruft takes a later template change with `cruft update`."""
import json
import shutil
import subprocess

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
