"""Generation: the tree, the answers in the right places, no template debris."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import DEFAULTS, REPO, combination_id
from tools.helm import helm_binaries

EXPECTED_FILES = [
    "README.md",
    "Makefile",
    "pyproject.toml",
    ".gitignore",
    "source/Pipfile",
    "source/gunicorn.conf.py",
    "source/api/__init__.py",
    "source/api/health.py",
    "source/api/errors.py",
    "source/api/logs.py",
    "source/api/config.py",
    "source/api/greetings.py",
    "source/tests/conftest.py",
]

# Each choice and boolean value at least once; later issues extend the list.
COMBINATIONS = [
    {},
    {"hpa": False, "pvc": True, "pod_anti_affinity": "required", "pvc_access_mode": "ReadWriteMany"},
    {"dr": False, "pod_anti_affinity": "none", "custom_url": "api.example.org", "hostspaces": "dev"},
    {"pvc": True, "pvc_access_mode": "ReadWriteOnce", "package_index": "https://artifactory.example.com/api/pypi/pypi/simple"},
]

NON_DEFAULT = {
    "app_name": "orders-api",
    "appcode": "ord7",
    "python_version": "3.12.1",
    "description": 'Orders: the "single" source of truth # for \'orders\'',
    "gunicorn_workers": "3",
}

LEFTOVER = re.compile(r"\{\{|\{%|%\}|\{#|cookiecutter\.")
AZURE_EXPRESSION = re.compile(r"\$\{\{[^}]*\}\}")


def leftover(path, line):
    """Cookiecutter's Jinja left in a generated line. Helm templates are copied verbatim and
    use {{ }} themselves, and Azure's ${{ }} expressions are meant to survive."""
    if "chart/templates" in path.as_posix():
        return "cookiecutter" in line
    return LEFTOVER.search(AZURE_EXPRESSION.sub("", line)) is not None


def text_files(project):
    for path in sorted(project.rglob("*")):
        if path.is_file():
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


def test_default_bake_has_the_expected_tree(default_project):
    assert default_project.name == DEFAULTS["app_name"]
    missing = [name for name in EXPECTED_FILES if not (default_project / name).is_file()]
    assert missing == []


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_no_template_debris_is_left(bake, answers):
    project = bake(**answers)
    debris = [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path, text in text_files(project)
        for number, line in enumerate(text.splitlines(), 1)
        if leftover(path, line)
    ]
    assert debris == []


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_every_yaml_file_parses(bake, answers):
    project = bake(**answers)
    for path in project.rglob("*.y*ml"):
        if "chart/templates" in path.as_posix():
            continue
        list(yaml.safe_load_all(path.read_text()))


@pytest.fixture(scope="module")
def custom_project(bake):
    return bake(**NON_DEFAULT)


def test_app_name_names_the_directory_and_the_service(custom_project):
    assert custom_project.name == "orders-api"
    assert '"orders-api"' in (custom_project / "source/api/config.py").read_text()
    assert "# orders-api" in (custom_project / "README.md").read_text()


def test_appcode_reaches_the_rbac_groups_in_the_readme(custom_project):
    assert "ng-ngdc-ord7-*" in (custom_project / "README.md").read_text()


def test_python_version_sets_pipfile_and_base_image(custom_project):
    assert 'python_version = "3.12"' in (custom_project / "source/Pipfile").read_text()
    for name in ("README.md", "Dockerfile", "Makefile"):
        assert "library/python:3.12-slim" in (custom_project / name).read_text(), name


def test_description_survives_verbatim(custom_project):
    assert NON_DEFAULT["description"] in (custom_project / "README.md").read_text()


def test_gunicorn_workers_is_the_default_worker_count(custom_project):
    assert '"GUNICORN_WORKERS": Setting("3"' in (custom_project / "source/api/config.py").read_text()
    assert "gunicorn -w 3 -b :8080 --reload 'api:create_app()'" in (custom_project / "README.md").read_text()


def test_private_index_reaches_the_pipfile_without_credentials(bake):
    pipfile = (bake(**COMBINATIONS[3]) / "source/Pipfile").read_text()
    assert 'url = "https://${PYPI_USER}:${PYPI_TOKEN}@artifactory.example.com/api/pypi/pypi/simple"' in pipfile


PROMPTED = [name for name in DEFAULTS if not name.startswith("_")]


@pytest.mark.parametrize("name", PROMPTED)
def test_every_variable_has_a_question(name):
    assert name in DEFAULTS["__prompts__"], f"{name} has no question in __prompts__"


@pytest.mark.parametrize("name", PROMPTED)
def test_every_variable_is_in_the_readme_table(name):
    readme = (REPO / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    assert any(f"`{name}`" in row.split("|")[1] for row in rows), f"{name} is not documented in README.md"


@pytest.mark.parametrize("name", [n for n in PROMPTED if isinstance(DEFAULTS[n], list)])
def test_every_choice_option_has_a_label(name):
    labels = DEFAULTS["__prompts__"][name]
    assert set(DEFAULTS[name]) <= set(labels), f"{name}: options without a label"


def test_the_makefile_lint_target_passes(default_project):
    """`make lint`: yamllint over the project, helm lint per hostspace, hadolint."""
    helm_dir = helm_binaries()["3.17"].parent
    path = os.pathsep.join([str(Path(sys.executable).parent), str(helm_dir), os.environ["PATH"]])
    result = subprocess.run(["make", "lint"], cwd=default_project, capture_output=True, text=True,
                            env={**os.environ, "PATH": path})
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("1 chart(s) linted, 0 chart(s) failed") == len(DEFAULTS["hostspaces"].split(","))


GENERATED_README_SECTIONS = [
    "## Getting started", "## Repository structure", "## Application configuration",
    "## Local development", "### Artifactory token", "### Build locally", "### Run locally",
    "### Troubleshooting the build", "## CI/CD pipeline", "## Kubernetes deployment", "## Template updates",
]


def test_the_generated_readme_has_every_section(default_project):
    headings = [line for line in (default_project / "README.md").read_text().splitlines() if line.startswith("#")]
    assert [h for h in GENERATED_README_SECTIONS if h not in headings] == []


def test_every_environment_variable_is_in_the_configuration_table(default_project):
    source = default_project / "source"
    used = set(re.findall(r'"([A-Z][A-Z0-9_]+)":', (source / "api/config.py").read_text()))
    used |= set(re.findall(r'environ\.get\("([A-Z][A-Z0-9_]+)"', (source / "gunicorn.conf.py").read_text()))
    readme = (default_project / "README.md").read_text()
    section = readme.split("## Application configuration", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    assert used and used - documented == set()


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_generated_text_is_tidy(bake, answers):
    """No trailing spaces, and no run of blank lines longer than the file's style allows
    (two in Python, between top-level definitions; one elsewhere): what Jinja blocks leave."""
    project = bake(**answers)
    untidy = []
    for path, text in text_files(project):
        allowed = 2 if path.suffix == ".py" else 1
        blank = 0
        for number, line in enumerate(text.splitlines(), 1):
            if line != line.rstrip():
                untidy.append(f"{path.relative_to(project)}:{number}: trailing space")
            blank = blank + 1 if not line.strip() else 0
            if blank > allowed:
                untidy.append(f"{path.relative_to(project)}:{number}: {blank} blank lines")
    assert untidy == []
