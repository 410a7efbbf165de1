"""Generation: the tree, the answers in the right places, no template debris."""
import re

import pytest
import yaml

from conftest import DEFAULTS, REPO, combination_id

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

LEFTOVER = re.compile(r"\{\{|\{%|%\}|cookiecutter\.")


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
        # Helm templates are copied verbatim and use {{ }} themselves.
        if "chart/templates" not in path.as_posix()
        for number, line in enumerate(text.splitlines(), 1)
        if LEFTOVER.search(line) and "${{" not in line
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
    assert "library/python:3.12-slim" in (custom_project / "README.md").read_text()


def test_description_survives_verbatim(custom_project):
    assert NON_DEFAULT["description"] in (custom_project / "README.md").read_text()


def test_gunicorn_workers_is_the_default_worker_count(custom_project):
    assert '"GUNICORN_WORKERS", "3"' in (custom_project / "source/gunicorn.conf.py").read_text()
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
