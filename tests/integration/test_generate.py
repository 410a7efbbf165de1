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
from releases import cookiecutter_config, git, make_template_repo

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


# ---- the Quickstart: python3 tasks.py generate ------------------------------------------------


@pytest.fixture(scope="module")
def quickstart(tmp_path_factory):
    """A clone of the template as it is in this working tree, released, with its tools (.venv):
    what `python3 tasks.py generate` generates from (cruft create, at its newest release tag)."""
    template = make_template_repo(tmp_path_factory.mktemp("quickstart") / "flask-appstack")
    (template / ".venv").symlink_to(REPO / ".venv")
    return template


def run_quickstart(quickstart, *words, cwd, stdin=None):
    command = [sys.executable, str(quickstart / "tasks.py"), "generate", *words]
    env = {**cookiecutter_config(cwd), "PWD": str(cwd)}
    return subprocess.run(command, cwd=cwd, env=env, input=stdin, capture_output=True, text=True, timeout=600)


def assert_one_message(result, first_line):
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr and "╭" not in result.stderr and "Error:" not in result.stderr
    assert result.stderr.splitlines()[0] == first_line, result.stderr


def test_the_quickstart_refuses_a_yes_no_or_choice_answer_cookiecutter_cannot_take_with_the_hooks_message(
    quickstart, tmp_path
):
    """cookiecutter turns yes/no answers into booleans and checks choices before any hook runs:
    hpa=maybe and pod_anti_affinity=always were 101-line tracebacks. tasks.py checks the answers
    given with the hook's rules first: every one named at once, and the command to run again."""
    out = tmp_path / "out"
    given = ["hpa=maybe", "pod_anti_affinity=always", "app_name=Orders", "dr=Y", "lock_dependencies=no"]
    refused = run_quickstart(quickstart, "--no-input", "-o", str(out), *given, cwd=tmp_path)
    assert_one_message(refused, "flask-appstack: 3 answer(s) cannot be used, so nothing was generated:")
    assert [line.split(":")[0] for line in refused.stderr.splitlines()[1:4]] == [
        '  - app_name = "Orders"',
        '  - hpa = "maybe"',
        '  - pod_anti_affinity = "always"',
    ]
    assert "expected preferred, required or none" in refused.stderr
    words = shlex.split(refused.stderr.splitlines()[-1])
    assert words == ["python3", str(quickstart / "tasks.py"), "generate", "--no-input", "-o", str(out), *given]
    assert not out.exists()
    fixed = {
        "hpa=maybe": "hpa=no",
        "pod_anti_affinity=always": "pod_anti_affinity=none",
        "app_name=Orders": "app_name=orders",
    }
    made = run_quickstart(quickstart, *[fixed.get(word, word) for word in words[3:]], cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    assert json.loads((out / "orders" / ".cruft.json").read_text())["context"]["cookiecutter"]["hpa"] is False


def test_the_quickstart_refuses_a_wrong_answer_of_the_organisation_file_with_the_command_that_overrides_it(
    quickstart, tmp_path
):
    """A default_context value cookiecutter cannot convert is a warning to it, and the
    organisation's answers after it are dropped: tasks.py refuses it, naming it."""
    (tmp_path / "org.yaml").write_text("default_context:\n  pvc: sometimes\n  platform_domain: apps.example.corp\n")
    refused = run_quickstart(quickstart, "--no-input", "--config-file", "org.yaml", "-o", "out", cwd=tmp_path)
    assert_one_message(refused, "flask-appstack: 1 answer(s) cannot be used, so nothing was generated:")
    assert '  - pvc = "sometimes": expected true or false' in refused.stderr
    assert shlex.split(refused.stderr.splitlines()[-1])[3:] == [
        "--no-input",
        "--config-file",
        "org.yaml",
        "-o",
        "out",
        "pvc=sometimes",
    ]


@pytest.mark.parametrize("how", ["--no-input", "-f", "prompted"])
def test_the_quickstart_over_an_existing_project_is_the_hooks_refusal_without_a_traceback(quickstart, tmp_path, how):
    """Without -f, cookiecutter and cruft refuse any existing directory before the hooks run (cruft
    in a 59-line traceback); tasks.py says what the hook says: `make update`."""
    project = tmp_path / "out" / "orders"
    (project / "source").mkdir(parents=True)
    (project / "source" / "Pipfile").write_text("# the team's\n")
    options = {"--no-input": ["--no-input"], "-f": ["--no-input", "-f"], "prompted": []}[how]
    stdin = "\n" * 60 if how == "prompted" else None  # every question: its default, app_name given
    refused = run_quickstart(quickstart, *options, "-o", "out", "app_name=orders", cwd=tmp_path, stdin=stdin)
    assert_one_message(refused, refused.stderr.splitlines()[0])
    message = refused.stderr[refused.stderr.index("flask-appstack: ") :]
    assert message.splitlines()[0].endswith(
        "out/orders already holds files (source/Pipfile), so nothing was generated:"
    )
    assert "run `make update` there" in message
    assert (project / "source" / "Pipfile").read_text() == "# the team's\n"


def test_the_quickstart_into_an_existing_empty_or_incomplete_directory_says_what_to_add(quickstart, tmp_path):
    (tmp_path / "orders" / ".git").mkdir(parents=True)
    refused = run_quickstart(quickstart, "--no-input", "-o", str(tmp_path), "app_name=orders", cwd=tmp_path)
    assert_one_message(
        refused,
        f"flask-appstack: {tmp_path / 'orders'} exists, so nothing was generated: it holds no files (a .git folder "
        "alone does not count); to generate into it, add -f to the command.",
    )
    (tmp_path / "orders" / "GENERATION-INCOMPLETE.txt").write_text("flask-appstack: the mark\ncommand\n")
    marked = run_quickstart(quickstart, "--no-input", "-o", str(tmp_path), "app_name=orders", cwd=tmp_path)
    assert_one_message(marked, "flask-appstack: the mark")


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
    assert recorded["release"] == flask_appstack_identity.identity_of(REPO, str(REPO))["release"]


def organisation_config():
    """The user config that the README's "One answer file for the organisation" shows."""
    readme = (REPO / "README.md").read_text()
    section = readme.split("## One answer file for the organisation", 1)[1].split("\n## ", 1)[0]
    return section.split("```yaml\n", 1)[1].split("```", 1)[0]
