"""The template's own CI: .github/workflows/ci.yml and azure-pipelines.yml validate against
their schemas (check-jsonschema's vendored ones, offline), run the README's test command with
the Pythons the suite needs, cache what it installs, and install the same pinned helm-unittest.

(The generated project's pipeline, {{cookiecutter.app_name}}/azure-pipelines.yaml, is
test_pipeline.py's.)"""

import os
import re

import pytest
import yaml
from answers import LOCK_PYTHONS

import tasks
from tools.helm import HELM_UNITTEST_INSTALL, HELM_UNITTEST_VERSION, MissingTool, _build_helm_unittest
from tools.project import CI_AZURE, CI_WORKFLOW, REPO
from tools.release import changelog_problems

WORKFLOW, AZURE = CI_WORKFLOW, CI_AZURE
PLUGIN = HELM_UNITTEST_INSTALL.removesuffix(f" {HELM_UNITTEST_VERSION}")  # as the CI files write it, their pin after


def readme_test_command():
    quickstart = (REPO / "README.md").read_text().split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    commands = [line.split("#")[0].strip() for line in quickstart.splitlines() if "tasks.py test" in line]
    assert len(commands) == 1, commands
    return commands[0]


def steps(path):
    pipeline = yaml.safe_load(path.read_text())
    if path == WORKFLOW:
        return pipeline["jobs"]["test"]["steps"]
    return pipeline["jobs"][0]["steps"]


def variables(path):
    pipeline = yaml.safe_load(path.read_text())
    return pipeline["env"] if path == WORKFLOW else pipeline["variables"]


def scripts(path):
    return [step.get("run") or step.get("script") for step in steps(path) if step.get("run") or step.get("script")]


@pytest.mark.parametrize("path", [WORKFLOW, AZURE], ids=lambda path: path.name)
def test_ci_runs_the_readme_test_command_last_with_ci_true(path):
    assert scripts(path)[-1] == readme_test_command() == "python3 tasks.py test"
    assert variables(path)["CI"] == "true"


def test_ci_provides_the_pythons_the_suite_needs():
    setup = [step for step in steps(WORKFLOW) if step.get("uses", "").startswith("actions/setup-python@")]
    assert len(setup) == 1
    assert setup[0]["with"]["python-version"].split() == list(LOCK_PYTHONS)
    azure = [step["inputs"]["versionSpec"] for step in steps(AZURE) if step.get("task") == "UsePythonVersion@0"]
    assert azure == list(LOCK_PYTHONS)
    # The last one set up is python3, which runs tasks.py: the Python of the container's base image.
    assert LOCK_PYTHONS[-1] == "3.11"


def test_ci_caches_pip_and_the_suites_tools():
    setup = next(step for step in steps(WORKFLOW) if step.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["cache"] == "pip"
    cached = [step["with"]["path"] for step in steps(WORKFLOW) if step.get("uses", "").startswith("actions/cache@")]
    assert cached[0] == "~/.cache/flask-appstack"
    assert [path for path in cached[1:] if not path.startswith("~/.cache/flask-appstack/tools/kube-")] == []
    azure = {step["inputs"]["path"] for step in steps(AZURE) if step.get("task") == "Cache@2"}
    assert {"$(PIP_CACHE_DIR)", "$(XDG_CACHE_HOME)/flask-appstack"} <= azure
    assert variables(AZURE)["PIP_CACHE_DIR"].startswith("$(Pipeline.Workspace)")


def test_ci_installs_the_same_pinned_helm_unittest_and_helm(default_project):
    """One helm-unittest pin (templates/appstack.jinja): the CI files install the release that the
    suite builds where the plugin is not installed (tools/helm.py reads the pin), and the
    generated Makefile, make doctor and manual render it."""
    pins = set()
    for path in (WORKFLOW, AZURE):
        installs = [script for script in scripts(path) if script.startswith(PLUGIN)]
        assert len(installs) == 1, path.name
        assert re.fullmatch(r"v\d+\.\d+\.\d+", variables(path)["HELM_UNITTEST_VERSION"]), path.name
        pins.add((variables(path)["HELM_UNITTEST_VERSION"], variables(path)["HELM_VERSION"]))
    assert len(pins) == 1, pins
    assert next(iter(pins))[0] == HELM_UNITTEST_VERSION
    for named in ("Makefile", "docs/kubernetes.md", "docs/local-development.md"):
        versions = re.findall(r"helm-unittest --version (\S+?)[`\s]", (default_project / named).read_text())
        assert versions == [HELM_UNITTEST_VERSION], named
    # helm 4 runs the plugin (a legacy one to it) but refuses to install it unverified without
    # --verify=false, so both install it with a helm 3.17 (the line tools/helm.py checks the chart on).
    assert next(iter(pins))[1].startswith("v3.17.")


def test_without_the_plugin_or_go_the_suite_says_how_to_get_either(tmp_path):
    """Where helm-unittest is not installed, the suite builds it with Go; with neither, it
    stops with both ways to get it (the tests that need it skip, which CI counts as failing)."""
    target = tmp_path / "plugins" / "unittest"
    with pytest.raises(MissingTool) as missing:
        _build_helm_unittest(target, {"PATH": str(tmp_path)})
    message = str(missing.value)
    assert HELM_UNITTEST_INSTALL in message and "install Go (https://go.dev/doc/install)" in message
    assert HELM_UNITTEST_INSTALL.endswith(f"helm-unittest/helm-unittest --version {HELM_UNITTEST_VERSION}")
    assert not target.exists()


def test_changelog_has_a_section_per_release_and_the_readme_shows_how_to_take_one():
    """Releases for `make update VERSION=X.Y.Z`: [Unreleased] on top, then semantic
    versions, newest first, each saying what a project gets and what to do by hand: the checks
    of tools/release.py's changelog_problems, which `tools/release.py cut` passes too."""
    assert changelog_problems((REPO / "CHANGELOG.md").read_text()) == []
    keeping = (REPO / "README.md").read_text().split("## Keeping your project current", 1)[1].split("\n## ", 1)[0]
    assert re.search(r"make update VERSION=\d+\.\d+\.\d+", keeping) and "make outdated" in keeping


# ---- releases: the tag CI makes ---------------------------------------------------------------

RELEASE_COMMAND = "python3 tools/release.py tag"


def jobs(path):
    pipeline = yaml.safe_load(path.read_text())
    return pipeline["jobs"] if path == WORKFLOW else {job["job"]: job for job in pipeline["jobs"]}


def test_the_workflow_tags_releases_in_a_job_of_its_own_after_the_suite_on_main_pushes_only():
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"] == {"contents": "read"}  # every job reads only ...
    release = workflow["jobs"]["release"]
    assert release["permissions"] == {"contents": "write"}  # ... but this one, which pushes a tag
    assert [job for job, spec in workflow["jobs"].items() if "permissions" in spec] == ["release"]
    assert release["needs"] == "test"
    assert release["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    checkout = release["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 0
    assert [step.get("run") for step in release["steps"] if step.get("run")] == [RELEASE_COMMAND]


def test_the_azure_pipeline_tags_releases_in_a_job_of_its_own_after_the_suite_on_main():
    azure = jobs(AZURE)
    release = azure["release"]
    assert release["dependsOn"] == "test"
    assert release["condition"].startswith("and(succeeded(), eq(variables['Build.SourceBranch'], 'refs/heads/main')")
    checkout = release["steps"][0]
    assert checkout["checkout"] == "self" and checkout["fetchDepth"] == "0" and checkout["fetchTags"] == "true"
    # The job's token stays in the checkout for the push in this job only.
    assert checkout["persistCredentials"] == "true"
    assert "persistCredentials" not in str(azure["test"])
    assert [step.get("script") for step in release["steps"] if step.get("script")] == [RELEASE_COMMAND]


CHECK_COMMAND = "python3 tools/release.py check"


@pytest.mark.parametrize("path", [WORKFLOW, AZURE], ids=lambda path: path.name)
def test_the_test_job_checks_released_sections_against_their_tags_first(path):
    """A released CHANGELOG section never changes: the test job runs `tools/release.py check`
    right after its checkout, which fetches every tag, and before the suite."""
    job = steps(path)
    checkout, check = job[0], job[1]
    if path == WORKFLOW:
        assert checkout["uses"].startswith("actions/checkout@") and checkout["with"]["fetch-depth"] == 0
        assert check["run"] == CHECK_COMMAND
    else:
        assert checkout["checkout"] == "self" and checkout["fetchDepth"] == "0" and checkout["fetchTags"] == "true"
        assert check["script"] == CHECK_COMMAND
    assert scripts(path).count(CHECK_COMMAND) == 1 and scripts(path)[-1] == readme_test_command()


def test_the_readme_says_how_to_cut_a_release():
    section = (REPO / "README.md").read_text().split("## Releases", 1)[1].split("\n## ", 1)[0]
    assert "## [Unreleased]" in section and "CHANGELOG.md" in section
    assert "python3 tools/release.py cut X.Y.Z" in section
    assert CHECK_COMMAND in section and "never changes" in section
    assert "tools/release.py" in section and "tag" in section


def test_the_fast_tier_is_the_unit_folder_and_the_suite_is_everything():
    assert tasks.pytest_arguments(["--fast", "-k", "rules"], environ={})[-3:] == [
        str(REPO / "tests" / "unit"),
        "-k",
        "rules",
    ]
    assert tasks.pytest_arguments(["-q", "--fast"], environ={})[-2:] == [str(REPO / "tests" / "unit"), "-q"]
    assert tasks.pytest_arguments([], environ={})[:2] == ["-m", "pytest"]
    assert "tests/unit" in (REPO / "CONTRIBUTING.md").read_text()


def test_the_suite_runs_a_worker_more_than_the_cores_it_may_use_and_the_unit_tier_one_per_core(monkeypatch):
    """The integration tests also wait on what runs outside their worker (docker builds, the
    index, servers starting): a worker more keeps the cores busy through those waits. The unit
    tier waits on nothing. APPSTACK_TEST_WORKERS says how many, for either."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)  # 3 of the machine's cores
    assert tasks.pytest_arguments([], environ={})[2:] == ["-n", "4", "--dist", "loadgroup"]
    assert tasks.pytest_arguments(["--fast"], environ={})[2:4] == ["-n", "3"]
    assert tasks.pytest_arguments(["--fast"], environ={"APPSTACK_TEST_WORKERS": "1"})[2:4] == ["-n", "1"]


def test_the_templates_pre_commit_hooks_pin_the_tools_of_requirements_dev_txt():
    """Each tool a hook of .pre-commit-config.yaml installs is a line of requirements/dev.txt, as
    written there (markers included), so that a commit is checked by the tools the suite uses."""
    config = yaml.safe_load((REPO / ".pre-commit-config.yaml").read_text())
    pinned = {line.strip() for line in (REPO / "requirements" / "dev.txt").read_text().splitlines()}
    hooks = [hook for repo in config["repos"] for hook in repo["hooks"]]
    assert {repo["repo"] for repo in config["repos"]} == {"local"}
    installed = [dependency for hook in hooks for dependency in hook.get("additional_dependencies", [])]
    assert installed and [dependency for dependency in installed if dependency not in pinned] == []
    assert config["exclude"] == r"^\{\{cookiecutter\.app_name\}\}/"


@pytest.mark.parametrize("path", [WORKFLOW, AZURE], ids=lambda path: path.name)
def test_ci_caches_the_kubernetes_binaries_the_suite_pins_under_their_versions(path):
    """tools/kube.py builds kube-apiserver, kubectl and etcd once per version; CI keeps them."""
    from tools.kube import ETCD_VERSION, KUBERNETES_VERSION

    assert (variables(path)["KUBERNETES_VERSION"], variables(path)["ETCD_VERSION"]) == (
        KUBERNETES_VERSION,
        ETCD_VERSION,
    )
    text = path.read_text()
    folder = (
        "kube-${{ env.KUBERNETES_VERSION }}-etcd-${{ env.ETCD_VERSION }}"
        if path == WORKFLOW
        else ("kube-$(KUBERNETES_VERSION)-etcd-$(ETCD_VERSION)")
    )
    assert f"flask-appstack/tools/{folder}" in text
