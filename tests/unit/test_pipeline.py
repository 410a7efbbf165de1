"""CI/CD pipeline: azure-pipelines.yaml lints, validates against Microsoft's schema, passes
the SCALE template only the parameters of the allow-list below, and agrees with the chart and
the rest of the project."""

import re

import pytest
import yaml
from answers import COMBINATIONS, NON_DEFAULT, answered, combination_id

from hooks import pre_gen_project as pre
from tools.project import tomllib

TEMPLATE = "devops/flask.yml@spaces"
ENVIRONMENTS = ("development", "preproduction", "production")
# The parameters the pipeline may pass to devops/flask.yml: those the platform's documentation
# names (appVersion, flask.python, flask.pipenvVersion, hostspaces, the skip switch), and the
# fields of a hostspace entry, which are this template's assumption (the generated
# docs/pipeline.md, "Pipeline parameters"). Azure refuses to start a run when the extended
# template gets a parameter it does not declare: anything else belongs in the chart or
# pyproject.toml.
ALLOWED_PARAMETERS = {"appVersion", "flask", "hostspaces", "skipDeployments"}
ALLOWED_FLASK = {"python", "pipenvVersion"}
ALLOWED_HOSTSPACE_FIELDS = {"name", "valuesFile", "environment", "hostname", "customUrl", "skip"}
DOCUMENTED_BY_THE_PLATFORM = ["appVersion", "flask.python", "flask.pipenvVersion", "hostspaces", "skipDeployments"]
# A value a values file does not hold (dig).
MISSING = object()
# pipenv pinned anywhere in the project: `pipenv==X` (docs/, Makefile) or PIPENV_VERSION=X (Dockerfile).
PIPENV_PIN = re.compile(r"(?:pipenv==|PIPENV_VERSION[=:]\s*[\"']?)([0-9][^\s'\"&;)`]*)")


def hostspaces_of(answers):
    return pre.hostspaces(answered(answers))


def dig(data, dotted):
    for key in dotted.split("."):
        if not isinstance(data, dict) or key not in data:
            return MISSING
        data = data[key]
    return data


def load_pipeline(project):
    return yaml.safe_load((project / "azure-pipelines.yaml").read_text())


@pytest.fixture(params=COMBINATIONS, ids=combination_id)
def case(request, bake):
    """(answers, baked project, parsed pipeline) of one combination."""
    project = bake(**request.param)
    return answered(request.param), project, load_pipeline(project)


# --- the file: YAML, lint, Microsoft's schema ---------------------------------------------


def scalars(data):
    if isinstance(data, dict):
        for value in data.values():
            yield from scalars(value)
    elif isinstance(data, list):
        for value in data:
            yield from scalars(value)
    else:
        yield data


def test_booleans_are_written_one_way_quoted_throughout(case):
    """The schema types booleans as strings (above): every boolean of the file is quoted."""
    _, project, pipeline = case
    assert [value for value in scalars(pipeline) if isinstance(value, bool)] == []
    text = (project / "azure-pipelines.yaml").read_text()
    assert re.findall(r':\s*"(true|false)"', text) and not re.search(r":\s*(true|false)\s*(#|$)", text, re.MULTILINE)


def test_azure_template_expression_survives_baking(default_project):
    pipeline = load_pipeline(default_project)
    assert pipeline["extends"]["parameters"]["skipDeployments"] == "${{ parameters.skipDeployments }}"


# --- structure -----------------------------------------------------------------------------


def test_pipeline_extends_the_flask_template_from_the_spaces_repository(case):
    answers, _, pipeline = case
    assert pipeline["extends"]["template"] == TEMPLATE
    repositories = {repo["repository"]: repo for repo in pipeline["resources"]["repositories"]}
    assert repositories["spaces"] == {
        "repository": "spaces",
        "type": answers["pipeline_repository_type"],
        "name": answers["pipeline_repository"],
        "ref": answers["pipeline_ref"],
        **({"endpoint": answers["pipeline_service_connection"]} if answers["pipeline_service_connection"] else {}),
    }
    assert pipeline["extends"]["parameters"]["appVersion"] == answers["app_version"]


def test_pipeline_passes_only_the_allowed_parameters(case):
    _, _, pipeline = case
    parameters = pipeline["extends"]["parameters"]
    assert set(parameters) - ALLOWED_PARAMETERS == set()
    assert set(parameters["flask"]) == ALLOWED_FLASK
    fields = {field for hostspace in parameters["hostspaces"] for field in hostspace}
    assert fields - ALLOWED_HOSTSPACE_FIELDS == set()


def test_pipeline_runs_for_main_release_tags_and_pull_requests(case):
    _, _, pipeline = case
    assert pipeline["trigger"]["branches"] == {"include": ["main"]}
    assert pipeline["trigger"]["tags"] == {"include": ["v*"]}
    assert pipeline["pr"]["branches"] == {"include": ["main"]}
    # Each push is built: batched pushes wait behind a run, and a run can wait days for an approval.
    assert pipeline["trigger"]["batch"] == "false"


# `az repos policy build create`'s required parameters (Azure CLI, azure-devops extension).
BUILD_POLICY_PARAMETERS = (
    "--blocking",
    "--branch",
    "--build-definition-id",
    "--display-name",
    "--enabled",
    "--manual-queue-only",
    "--queue-on-source-update-only",
    "--repository-id",
    "--valid-duration",
)


def test_the_manual_sets_up_pull_request_builds_on_azure_repos(default_project):
    """Azure Repos ignores the YAML's pr: trigger: pull requests are built by a branch policy."""
    manual = (default_project / "docs" / "pipeline.md").read_text()
    section = manual.split("### Pull request builds", 1)[1].split("\n## ", 1)[0]
    command = section.split("az repos policy build create", 1)[1].split("```", 1)[0].replace("\\\n", " ")
    assert [name for name in BUILD_POLICY_PARAMETERS if f"{name} " not in command] == []
    assert "--branch main " in command and "--blocking true " in command
    assert "Build Validation" in section and "Edit policies" in section


def test_flask_parameters_are_the_python_and_pipenv_answers(case):
    answers, _, pipeline = case
    python = answers["python_version"]
    expected_python = python if python.count(".") == 2 else f"{python}.0"
    assert pipeline["extends"]["parameters"]["flask"] == {
        "python": expected_python,
        "pipenvVersion": answers["pipenv_version"],
    }
    # Written as the platform's documentation shows it: plain X.Y.Z, not quoted.
    assert f"      python: {expected_python}  #" in (case[1] / "azure-pipelines.yaml").read_text()


def test_hostspaces_are_the_answer_in_promotion_order(case):
    answers, _, pipeline = case
    hostspaces = pipeline["extends"]["parameters"]["hostspaces"]
    names = hostspaces_of(answers)
    assert [hostspace["name"] for hostspace in hostspaces] == names
    assert [hostspace["valuesFile"] for hostspace in hostspaces] == [f"chart/values-{name}.yaml" for name in names]
    assert [hostspace["hostname"] for hostspace in hostspaces] == [
        f"{answers['app_name']}-{name}.{answers['platform_domain']}" for name in names
    ]


def test_preproduction_and_production_hostspaces_are_gated(case):
    answers, _, pipeline = case
    environments = [hostspace["environment"] for hostspace in pipeline["extends"]["parameters"]["hostspaces"]]
    assert set(environments) <= set(ENVIRONMENTS)
    # The last hostspace is production, even alone; only a first one before it deploys
    # without an approval.
    if len(environments) == 1:
        assert environments == ["production"]
    else:
        assert environments == ["development", *["preproduction"] * (len(environments) - 2), "production"]


def test_deployments_can_be_skipped_per_hostspace_and_per_run(case):
    """A hostspace of skip_hostspaces (an answer: make reconfigure changes it) is skipped; the others deploy."""
    answers, _, pipeline = case
    skipped = [name.strip() for name in answers["skip_hostspaces"].split(",") if name.strip()]
    hostspaces = pipeline["extends"]["parameters"]["hostspaces"]
    assert {entry["name"]: entry["skip"] for entry in hostspaces} == {
        name: "true" if name in skipped else "false" for name in hostspaces_of(answers)
    }
    run_parameters = {parameter["name"]: parameter for parameter in pipeline["parameters"]}
    assert run_parameters["skipDeployments"]["type"] == "boolean"
    assert run_parameters["skipDeployments"]["default"] == "false"
    assert pipeline["extends"]["parameters"]["skipDeployments"] == "${{ parameters.skipDeployments }}"


def test_custom_url_is_served_by_the_production_hostspace_only(case):
    answers, _, pipeline = case
    custom_urls = [hostspace.get("customUrl") for hostspace in pipeline["extends"]["parameters"]["hostspaces"]]
    expected = [None] * len(custom_urls)
    if answers["custom_url"]:
        expected[-1] = answers["custom_url"]
    assert custom_urls == expected


# --- one source of truth -------------------------------------------------------------------


def test_pipeline_and_chart_values_agree(case):
    """Each hostspace's values file serves the hostnames the pipeline names for it."""
    answers, project, pipeline = case
    parameters = pipeline["extends"]["parameters"]
    disagreements = []
    for hostspace in parameters["hostspaces"]:
        values_file = project / hostspace["valuesFile"]
        assert values_file.is_file(), f"{hostspace['valuesFile']} is missing"
        own = yaml.safe_load(values_file.read_text())
        expected = {"platform": hostspace["hostname"], "custom": hostspace.get("customUrl", MISSING)}
        for key, hostname in expected.items():
            in_chart = dig(own, f"hosts.{key}.hostname")
            if in_chart != hostname:
                disagreements.append(f"{hostspace['name']}: hostname {key}={hostname!r}, values file {in_chart!r}")
        if answers["dr"]:
            if dig(own, "dr.globalHostname") != hostspace["hostname"]:
                disagreements.append(f"{hostspace['name']}: DR global hostname {dig(own, 'dr.globalHostname')!r}")
            for site in ("active", "passive"):
                region = answers[f"dr_{site}_region"]
                site_hostname = f"{answers['app_name']}-{hostspace['name']}.{region}.{answers['platform_domain']}"
                if dig(own, f"dr.sites.{site}.hostname") != site_hostname:
                    disagreements.append(f"{hostspace['name']}: DR {site} site is not in {region}")
    assert disagreements == []


def test_every_hostspace_values_file_is_deployed(case):
    _, project, pipeline = case
    deployed = {hostspace["valuesFile"] for hostspace in pipeline["extends"]["parameters"]["hostspaces"]}
    on_disk = {str(path.relative_to(project)) for path in (project / "chart").glob("values-*.yaml")}
    assert on_disk == deployed


def test_python_and_pipenv_agree_with_the_rest_of_the_project(case):
    _, project, pipeline = case
    parameters = pipeline["extends"]["parameters"]
    pipfile = tomllib.loads((project / "source/Pipfile").read_text())
    assert parameters["flask"]["python"].startswith(pipfile["requires"]["python_version"] + ".")
    pins = {
        (str(path.relative_to(project)), pin)
        for path in project.rglob("*")
        if path.is_file() and path.name != "Pipfile.lock" and path.suffix != ".pyc"
        for pin in PIPENV_PIN.findall(path.read_text(errors="ignore"))
    }
    assert ("docs/local-development.md", parameters["flask"]["pipenvVersion"]) in pins
    assert {pin for pin in pins if pin[1] != parameters["flask"]["pipenvVersion"]} == set()


# --- the manual documents the pipeline --------------------------------------------------


def parameter_paths(data, prefix=""):
    """Dotted paths of every setting: hostspaces[].name for the items of a list."""
    if isinstance(data, dict):
        for key, value in data.items():
            yield from parameter_paths(value, f"{prefix}{key}.")
    elif isinstance(data, list) and data and isinstance(data[0], dict):
        for item in data:
            yield from parameter_paths(item, f"{prefix[:-1]}[].")
    else:
        yield prefix[:-1]


@pytest.mark.parametrize("answers", [{}, NON_DEFAULT], ids=combination_id)
def test_the_manual_documents_every_pipeline_parameter(bake, answers):
    project = bake(**answers)
    section = (project / "docs" / "pipeline.md").read_text()
    parameters = load_pipeline(project)["extends"]["parameters"]
    undocumented = sorted({path for path in parameter_paths(parameters) if f"`{path}`" not in section})
    assert undocumented == []
    rows = {line.split("|")[1].strip(): line for line in section.splitlines() if line.startswith("| `")}
    for path in DOCUMENTED_BY_THE_PLATFORM:
        assert "the platform's documentation" in rows[f"`{path}`"], path
    for field in sorted(ALLOWED_HOSTSPACE_FIELDS):
        assert "this template's assumption" in rows[f"`hostspaces[].{field}`"], field
    assert "compare them\nwith the `hostspaces` parameter that `devops/flask.yml` declares" in section
    for heading in (
        "Pipeline definition",
        "Defining hostspaces",
        "Skipping deployments",
        "Custom pipenv version",
        "Upgrading to pipeline v4.7",
        "Troubleshooting",
    ):
        assert f"\n## {heading}\n" in section
