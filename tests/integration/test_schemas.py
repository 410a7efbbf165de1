"""The template's CI files and the generated pipeline against their published schemas
(check-jsonschema's vendored ones, offline), and proof that the schema checks bite."""

import pytest
import yaml
from answers import COMBINATIONS, combination_id

from tools.project import CI_AZURE, CI_WORKFLOW
from tools.validators import check_builtin_schema

WORKFLOW, AZURE = CI_WORKFLOW, CI_AZURE
SCHEMAS = {WORKFLOW: "vendor.github-workflows", AZURE: "vendor.azure-pipelines"}


@pytest.fixture(params=COMBINATIONS, ids=combination_id)
def project(request, bake):
    """The project of each combination of answers."""
    return bake(**request.param)


@pytest.mark.parametrize("path", list(SCHEMAS), ids=lambda path: path.name)
def test_ci_file_validates_against_its_schema(path):
    result = check_builtin_schema(SCHEMAS[path], path)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_checks_bite(tmp_path):
    """A workflow job without `runs-on`, a pipeline with a boolean where Azure wants the
    string "false": the checks above reject both."""
    workflow = yaml.safe_load(WORKFLOW.read_text())
    del workflow["jobs"]["test"]["runs-on"]
    broken = tmp_path / "ci.yml"
    broken.write_text(yaml.safe_dump(workflow))
    assert check_builtin_schema(SCHEMAS[WORKFLOW], broken).returncode == 1
    text = AZURE.read_text()
    assert 'batch: "false"' in text
    broken = tmp_path / "azure-pipelines.yml"
    broken.write_text(text.replace('batch: "false"', "batch: false"))
    result = check_builtin_schema(SCHEMAS[AZURE], broken)
    assert result.returncode == 1 and "$.trigger.batch: False is not of type 'string'" in result.stdout


def test_pipeline_validates_against_the_azure_pipelines_schema(project):
    result = validate_against_azure_schema(project)
    assert result.returncode == 0, result.stdout + result.stderr


def test_schema_check_rejects_an_unquoted_boolean_in_a_typed_field(default_project, tmp_path):
    """The schema types trigger.batch as a string: proof that the validation above bites."""
    text = (default_project / "azure-pipelines.yaml").read_text()
    assert 'batch: "false"' in text
    broken = tmp_path / "azure-pipelines.yaml"
    broken.write_text(text.replace('batch: "false"', "batch: false"))
    result = validate_against_azure_schema(tmp_path)
    assert result.returncode == 1
    assert "$.trigger.batch: False is not of type 'string'" in result.stdout


def validate_against_azure_schema(project, path="azure-pipelines.yaml"):
    return check_builtin_schema("vendor.azure-pipelines", path, cwd=project)
