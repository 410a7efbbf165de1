"""Generating through cookiecutter's command line, as a team does: the printed command that
generates again, replays, a Latin-1 terminal, the organisation's answer file, and the
post-generation hook's chart lint with the real helm."""

import json
import os
import secrets
import shlex
import shutil
import subprocess
import sys

import pytest
import yaml
from releases import cookiecutter_config, git

import flask_appstack_identity
from hooks import post_gen_project as post
from tools.cache import run
from tools.helm import helm_binaries
from tools.project import DEFAULTS, REPO


def test_the_printed_command_regenerates_with_the_one_value_fixed(tmp_path):
    out = tmp_path / "out"
    given = [
        "app_name=Orders",
        "hpa=no",
        "hpa_min_replicas=3",
        'description=It\'s "ours" $(not run)',
        "lock_dependencies=no",
    ]
    rejected = run_cli("cookiecutter", "--no-input", "-o", str(out), str(REPO), *given, cwd=tmp_path)
    assert rejected.returncode != 0 and 'app_name = "Orders"' in rejected.stderr
    words = rerun_words(rejected.stderr, "cookiecutter")
    # Every answer but pipeline_ref, which follows app_version.
    assert set(given) <= set(words) and len(words) == 5 + len([k for k in DEFAULTS if not k.startswith("_")]) - 1
    fixed = [word.replace("app_name=Orders", "app_name=orders") for word in words]
    rebuilt = run_cli(*fixed, cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    project = out / "orders"
    assert yaml.safe_load((project / "chart/Chart.yaml").read_text())["description"] == 'It\'s "ours" $(not run)'
    assert "replicaCount: 3" in (project / "chart/values-prod.yaml").read_text()


def test_a_replay_with_an_edited_app_name_never_keeps_the_old_chart_name(tmp_path):
    """cookiecutter's replay file holds the derived names filled in: the hook refuses stale
    ones, and the command it prints derives them again."""
    first = run_cli(
        "cookiecutter", "--no-input", "-o", str(tmp_path / "first"), str(REPO), "lock_dependencies=no", cwd=tmp_path
    )
    assert first.returncode == 0, first.stderr
    [replay_file] = (tmp_path / "replay").iterdir()
    replay = json.loads(replay_file.read_text())
    assert replay["cookiecutter"]["__chart_name"] == "flask-app"
    replay["cookiecutter"]["app_name"] = "orders-api"  # edited by hand; the derived names stay
    replay_file.write_text(json.dumps(replay))

    out = tmp_path / "out"
    rejected = run_cli("cookiecutter", "--replay", "-o", str(out), str(REPO), cwd=tmp_path)
    assert rejected.returncode != 0
    assert '__chart_name = "flask-app": it no longer agrees with app_name' in rejected.stderr
    assert not (out / "orders-api").exists()
    rebuilt = run_cli(*rerun_words(rejected.stderr, "cookiecutter"), cwd=tmp_path)
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert yaml.safe_load((out / "orders-api/chart/Chart.yaml").read_text())["name"] == "orders-api"
    values = yaml.safe_load((out / "orders-api/chart/defaults.yaml").read_text())
    assert values["image"]["repository"].endswith("/demo/orders-api")


@pytest.mark.parametrize("config", ["COOKIECUTTER_CONFIG", "--config-file"])
def test_a_refused_token_reaches_neither_the_replay_file_nor_the_printed_command(tmp_path, config):
    """cookiecutter writes its replay file, every answer in it, before any hook runs: the
    pre-gen hook writes it again without the credentials; the message and its command show the
    URL without them, and that command generates the project."""
    token = f"s3cret-{secrets.token_hex(8)}"
    index = "https://artifactory.example.com/api/pypi/pypi/simple"
    given = f"package_index={index.replace('https://', f'https://team-user:{token}@')}"
    options = []
    if config == "--config-file":  # a config of its own, named relative to where cookiecutter runs
        (tmp_path / "org.yaml").write_text(f"replay_dir: {tmp_path / 'org-replay'}\n")
        options = ["--config-file", "org.yaml"]
    out = tmp_path / "out"
    rejected = run_cli("cookiecutter", "--no-input", *options, "-o", str(out), str(REPO), given, cwd=tmp_path)
    assert rejected.returncode != 0 and "package_index = " in rejected.stderr
    assert token not in rejected.stdout + rejected.stderr
    [replay_file] = (tmp_path / ("org-replay" if options else "replay")).iterdir()
    assert token not in replay_file.read_text()
    assert json.loads(replay_file.read_text())["cookiecutter"]["package_index"] == index
    words = rerun_words(rejected.stderr, "cookiecutter")
    assert f"package_index={index}" in words
    rebuilt = run_cli(
        *[word for word in words if word != "lock_dependencies=yes"], "lock_dependencies=no", cwd=tmp_path
    )
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert (
        "@artifactory.example.com/api/pypi/pypi/simple"
        in (out / DEFAULTS["app_name"] / "source" / "Pipfile").read_text()
    )


def test_helm_lint_runs_for_every_hostspace_and_warns_of_a_chart_it_refuses(default_project, tmp_path):

    helm = str(helm_binaries()["3.17"])
    answers = {"hostspaces": "dev, stage, prod"}
    project = tmp_path / "project"
    shutil.copytree(default_project, project)
    assert post.helm_warnings(project, answers, helm, os.environ) == []
    (project / "chart" / "values-prod.yaml").write_text("replicaCount: many\n")
    assert [problem.split(": ")[0] for problem in post.helm_warnings(project, answers, helm, os.environ)] == [
        f"{helm} refuses chart/ with values-prod.yaml"
    ]


def test_an_answer_typed_in_a_latin1_terminal_is_refused_before_anything_is_written(tmp_path):
    """'café' from a terminal set to Latin-1 reaches cookiecutter as the bytes c a f 0xE9."""
    out = tmp_path / "out"
    out.mkdir()
    env = {**cookiecutter_config(tmp_path), "LC_ALL": "C.UTF-8"}
    cookiecutter = os.path.join(os.path.dirname(sys.executable), "cookiecutter")
    words = [cookiecutter, "--no-input", "-o", str(out), str(REPO), b"description=caf\xe9", "lock_dependencies=no"]
    result = subprocess.run(words, env=env, capture_output=True)
    err = result.stderr.decode("utf-8", "backslashreplace")
    assert result.returncode != 0
    assert '  - description = "caf\\udce9": at character 4, byte 0xE9 is not UTF-8' in err
    assert list(out.iterdir()) == []


def test_an_organisation_config_file_supplies_the_platform_answers(tmp_path):
    config = tmp_path / "org.yaml"
    # The README's file, and a replay folder of the test's own instead of ~/.cookiecutter_replay.
    config.write_text(organisation_config() + f"replay_dir: {tmp_path / 'replay'}\n")
    platform = yaml.safe_load(config.read_text())["default_context"]
    assert len(platform) >= 9
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cookiecutter",
            "--no-input",
            "--config-file",
            str(config),
            "-o",
            str(tmp_path / "out"),
            str(REPO),
            "app_name=orders",
            "appcode=ord",
            "app_version=4.7.3",  # a newer pipeline than the organisation's: its templates follow
            "lock_dependencies=no",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": ""},
    )
    assert result.returncode == 0, result.stderr
    project = tmp_path / "out" / "orders"
    pipeline = yaml.safe_load((project / "azure-pipelines.yaml").read_text())
    assert pipeline["resources"]["repositories"][0] == {
        "repository": "spaces",
        "type": platform["pipeline_repository_type"],
        "name": platform["pipeline_repository"],
        "ref": "refs/tags/v4.7.3",
        "endpoint": platform["pipeline_service_connection"],
    }
    assert pipeline["extends"]["parameters"]["appVersion"] == "4.7.3"
    assert (
        pipeline["extends"]["parameters"]["hostspaces"][-1]["hostname"] == f"orders-prod.{platform['platform_domain']}"
    )
    values = yaml.safe_load((project / "chart/defaults.yaml").read_text())
    assert values["image"]["repository"] == f"{platform['docker_registry']}/ord/orders"
    assert values["dr"]["sites"]["active"]["region"] == platform["dr_active_region"]
    assert values["dr"]["sites"]["passive"]["region"] == platform["dr_passive_region"]
    pipfile = (project / "source/Pipfile").read_text()
    assert platform["package_index"].split("://", 1)[1] in pipfile
    # The README's values are examples: the summary names each that reached production's values.
    warnings = [line.split()[:3] for line in result.stdout.splitlines() if line.strip().startswith("WARNING:")]
    assert warnings == [
        ["WARNING:", "platform_domain", platform["platform_domain"]],
        ["WARNING:", "docker_registry", platform["docker_registry"]],
    ]


def run_cli(*words, cwd):
    """A command as a user types it, with this test environment's cookiecutter and cruft, and a
    user config (COOKIECUTTER_CONFIG) that keeps replay files and clones in cwd, not in ~."""
    env = {**cookiecutter_config(cwd), "PWD": str(cwd)}  # as a shell sets it
    env["PATH"] = f"{os.path.dirname(sys.executable)}{os.pathsep}{env['PATH']}"
    return subprocess.run(words, cwd=cwd, env=env, capture_output=True, text=True)


def rerun_words(stderr, program):
    """The command the rejection ends with, split as the shell would."""
    [line] = [line for line in stderr.splitlines() if line.startswith(f"{program} ")]
    return shlex.split(line)


def test_a_tools_package_first_on_the_path_does_not_hide_the_templates_identity(tmp_path):
    """cookiecutter appends the template's folder to sys.path, after everything else: the
    extension that records the template's identity has a module name no other package takes.
    Here another project's `tools` package (with a release.py of its own) comes first."""
    decoy = tmp_path / "elsewhere" / "tools"
    decoy.mkdir(parents=True)
    (decoy / "__init__.py").write_text("")
    (decoy / "release.py").write_text('"""Another project\'s release script."""\n')
    environ = {**cookiecutter_config(tmp_path), "PYTHONPATH": str(decoy.parent)}
    command = [sys.executable, "-m", "cookiecutter", "--no-input", "-o", tmp_path / "out", REPO, "lock_dependencies=no"]
    run(command, cwd=tmp_path, env=environ)  # not from the template's folder: it would come first
    recorded = json.loads((tmp_path / "out" / DEFAULTS["app_name"] / ".flask-appstack.json").read_text())
    assert recorded["commit"] == git(REPO, "rev-parse", "HEAD").strip()
    assert recorded["release"] == flask_appstack_identity.identity_of(REPO, str(REPO))["release"] != ""


def organisation_config():
    """The user config that the README's "One answer file for the organisation" shows."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## One answer file for the organisation", 1)[1].split("\n## ", 1)[0]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]
