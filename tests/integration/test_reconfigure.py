"""Changing an answer: `make reconfigure ANSWERS="key=value ..."` renders the template at the
project's release with the old answers and with the new ones, and merges the difference into
every file of the project, the team's included (a new hostspace's values file, its pipeline
entry); python3 and git are all it needs. A bad answer changes nothing."""

import json

import pytest
import yaml
from releases import (
    MARK,
    assert_the_projects_suite_passes,
    committed_project,
    edit,
    git,
    make_plain,
    make_template_repo,
    release_touching_every_template_file,
)

from tools.project import REPO, lock_program
from tools.release import newest_release

check_pipfile_follows_the_answers = lock_program().check_pipfile_follows_the_answers


@pytest.fixture
def project(tmp_path):
    """A project made with cruft from the template's release, committed: dev, stage, prod."""
    template = make_template_repo(tmp_path / "template")
    return committed_project(template, tmp_path, app_name="orders")


def reconfigure(project, answers, *args):
    return make_plain(project, "reconfigure", *args, env={"ANSWERS": answers})


def pipeline(project):
    return yaml.safe_load((project / "azure-pipelines.yaml").read_text())


def recorded(project):
    return json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]


def test_the_pipeline_release_moves_and_a_hostspace_comes_and_goes(project, project_venv):
    """The manual's commands (docs/pipeline.md): the SCALE pipeline's next 4.7 release, then
    a qa hostspace before production, and stage removed."""
    bumped = reconfigure(project, "app_version=4.7.3")
    assert bumped.returncode == 0, bumped.stdout + bumped.stderr
    assert "make reconfigure: app_version=4.7.3:\n" in bumped.stdout
    assert "  changed  azure-pipelines.yaml\n" in bumped.stdout
    parameters = pipeline(project)["extends"]["parameters"]
    assert parameters["appVersion"] == "4.7.3"
    # pipeline_ref follows app_version, as it does at generation
    assert pipeline(project)["resources"]["repositories"][0]["ref"] == "refs/tags/v4.7.3"
    assert recorded(project)["app_version"] == "4.7.3" and recorded(project)["pipeline_ref"] == "refs/tags/v4.7.3"
    git(project, "commit", "-q", "-am", "pipeline 4.7.3")

    moved = reconfigure(project, "hostspaces='dev, qa, prod'")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "  added    chart/values-qa.yaml\n" in moved.stdout
    assert "  removed  chart/values-stage.yaml\n" in moved.stdout
    hostspaces = pipeline(project)["extends"]["parameters"]["hostspaces"]
    assert [(entry["name"], entry["environment"]) for entry in hostspaces] == [
        ("dev", "development"),
        ("qa", "preproduction"),
        ("prod", "production"),
    ]
    assert [entry["valuesFile"] for entry in hostspaces] == [
        f"chart/values-{name}.yaml" for name in ("dev", "qa", "prod")
    ]
    qa = yaml.safe_load((project / "chart" / "values-qa.yaml").read_text())
    assert qa["hosts"]["platform"]["hostname"] == "orders-qa.scale.example.com"
    assert not (project / "chart" / "values-stage.yaml").exists()
    assert recorded(project)["hostspaces"] == "dev, qa, prod"
    assert recorded(project)["app_version"] == "4.7.3"  # the earlier answer stays

    # The project is at its release still, and works.
    outdated = make_plain(project, "outdated")
    assert outdated.returncode == 0, outdated.stdout + outdated.stderr
    release = newest_release((REPO / "CHANGELOG.md").read_text())
    assert f"this project is at {release}, the newest release" in outdated.stdout
    assert_the_projects_suite_passes(project, project_venv)


@pytest.mark.parametrize(
    "answers, says",
    [
        ("hpa=maybe", "hpa=maybe: hpa is yes or no"),
        ("pod_anti_affinity=always", "pod_anti_affinity=always: pod_anti_affinity is one of preferred, required, none"),
        ("replicas=3", "replicas=3: not KEY=VALUE with one of its questions"),
        ("app_name=Orders", 'app_name = "Orders"'),  # the template's own rule, from its pre-generation hook
        ("hostspaces='dev, dev'", "hostspaces"),
        ("", 'make reconfigure ANSWERS="key=value ..."'),
    ],
)
def test_a_bad_answer_changes_nothing(project, answers, says):
    refused = reconfigure(project, answers)
    assert refused.returncode != 0, refused.stdout + refused.stderr
    assert says in refused.stderr
    assert "Traceback" not in refused.stdout + refused.stderr
    assert git(project, "status", "--porcelain", "--untracked-files=all") == ""


def test_a_hostspace_whose_values_the_team_changed_is_not_removed_silently(project):
    edit(project / "chart" / "values-stage.yaml", "cpu: 100m", "cpu: 300m")
    git(project, "commit", "-q", "-am", "stage needs more")
    removed = reconfigure(project, "hostspaces='dev, prod'")
    assert removed.returncode != 0, removed.stdout + removed.stderr
    assert "make reconfigure: your changes and the template's conflict in:" in removed.stderr
    assert "  chart/values-stage.yaml: you changed it, and the template no longer makes it" in removed.stderr
    assert "cpu: 300m" in (project / "chart" / "values-stage.yaml").read_text()
    assert [entry["name"] for entry in pipeline(project)["extends"]["parameters"]["hostspaces"]] == ["dev", "prod"]


def test_a_pipeline_ref_the_team_chose_stays(project):
    chosen = reconfigure(project, "pipeline_ref=refs/heads/release/4.7")
    assert chosen.returncode == 0, chosen.stdout + chosen.stderr
    git(project, "commit", "-q", "-am", "a branch of the pipeline")
    bumped = reconfigure(project, "app_version=4.7.1")
    assert bumped.returncode == 0, bumped.stdout + bumped.stderr
    assert pipeline(project)["resources"]["repositories"][0]["ref"] == "refs/heads/release/4.7"


def test_answers_at_a_newer_release_take_the_release_for_the_templates_files_only(project, tmp_path):
    """With VERSION, the template's files take the release and the new answers; the team's
    files take the new answers alone."""
    template = tmp_path / "template"
    release_touching_every_template_file(template, also=["README.md"])
    version = newest_release((template / "CHANGELOG.md").read_text())
    changed = reconfigure(project, "app_version=4.7.2", f"VERSION={version}")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert f"make reconfigure: app_version=4.7.2 at {version}:" in changed.stdout
    assert MARK in (project / "azure-pipelines.yaml").read_text()
    assert pipeline(project)["extends"]["parameters"]["appVersion"] == "4.7.2"
    readme = (project / "README.md").read_text()
    assert MARK not in readme and "SCALE pipeline v4.7.2" in readme  # the answer, not the release
    assert json.loads((project / ".flask-appstack.json").read_text())["release"] == version


def test_a_python_changed_in_the_pipfile_alone_is_refused_and_reconfigure_moves_the_project(project):
    """source/Pipfile is the team's; the base image and the pipeline's Python are the template's.
    A lock for a Python the image does not run is refused with the command that moves all three."""
    edit(project / "source" / "Pipfile", 'python_version = "3.13"', 'python_version = "3.12"')
    git(project, "commit", "-q", "-am", "Python 3.12, in the Pipfile only")
    refused = make_plain(project, "lock")
    out = refused.stdout + refused.stderr
    assert refused.returncode != 0 and "Traceback" not in out, out
    assert "source/Pipfile's [requires] says Python 3.12, but the Dockerfile's base image is Python 3.13" in out
    assert 'make reconfigure ANSWERS="python_version=3.12"' in out
    doctor = make_plain(project, "doctor")  # where the refusal sends a team with no Python 3.12: no traceback
    assert "Python 3.12" in doctor.stdout and "Traceback" not in doctor.stdout + doctor.stderr, doctor.stderr

    moved = reconfigure(project, "python_version=3.12")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert recorded(project)["python_version"] == "3.12"
    assert "library/python:3.12-slim" in (project / "Dockerfile").read_text()
    assert str(pipeline(project)["extends"]["parameters"]["flask"]["python"]).startswith("3.12.")
    check_pipfile_follows_the_answers(project, "3.12")  # what `make lock` checks now agrees


def test_a_dr_region_moves_the_sites_hostnames_in_the_teams_values_files_too(project):
    """A DR site's region is in the template's chart/defaults.yaml and, in each hostspace's
    hostname of that site, in the team's values files: the command `make helm-lint` names when
    the two disagree (test_quality_gates) changes both."""
    moved = reconfigure(project, "dr_passive_region=north")
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert recorded(project)["dr_passive_region"] == "north"
    assert "region: north\n" in (project / "chart" / "defaults.yaml").read_text()
    for hostspace in ("dev", "stage", "prod"):
        sites = yaml.safe_load((project / "chart" / f"values-{hostspace}.yaml").read_text())["dr"]["sites"]
        assert sites["passive"]["hostname"] == f"orders-{hostspace}.north.scale.example.com"
        assert sites["active"]["hostname"] == f"orders-{hostspace}.east.scale.example.com"
