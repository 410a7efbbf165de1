"""Facts about the template that the tests and the benchmarks share."""

import json
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = json.loads((REPO / "cookiecutter.json").read_text())
# The template's own CI files: GitHub Actions' and Azure Pipelines'.
CI_WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
CI_AZURE = REPO / "azure-pipelines.yml"


def pipfile_requirements(project, sections=("packages", "dev-packages")):
    """The requirement strings of a baked project's Pipfile (name + version spec)."""
    pipfile = tomllib.loads((project / "source" / "Pipfile").read_text())
    return [
        name if spec == "*" else f"{name}{spec}"
        for section in sections
        for name, spec in pipfile.get(section, {}).items()
    ]


# The generated project's scripts, as the tests and the benchmarks use them: imported from
# their place in the template (they hold no Jinja, so the unrendered files are the generated ones).
SCRIPTS = REPO / "{{cookiecutter.app_name}}" / "scripts"
LOCK_PROGRAM = SCRIPTS / "lock.py"


def project_script(name):
    """scripts/<name>.py of the generated project as a module (loaded once)."""
    import importlib.util
    import sys

    module_name = f"appstack_script_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, SCRIPTS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules[module_name] = module
    return sys.modules[module_name]


def lock_program():
    """scripts/lock.py as a module."""
    return project_script("lock")


# The template's hash-pinned requirements, one file per pinned pipenv (tools/pipenv_pins.py makes them).
PIPENV_PINS = REPO / "templates" / "pipenv"


def pipenv_pins(version):
    """The template's hash-pinned requirements of pipenv `version` (a generated project's
    scripts/pipenv-requirements.txt), for lock.py's functions called directly."""
    return PIPENV_PINS / f"{version}.txt"


def cached_pipenv(python=None, version=None):
    """(venv, (executable, X.Y.Z)): pipenv `version` (the default answer's) for Python `python`
    (the default answer's), installed from the template's pins into lock.py's cache as a lock
    installs it (once per machine). None where no such Python is on PATH or in pyenv."""
    import os

    lock = lock_program()
    version = version or DEFAULTS["pipenv_version"]
    target = lock.find_python(python or DEFAULTS["python_version"])
    return None if target is None else (lock.ensure_pipenv(version, *target, os.environ, pipenv_pins(version)), target)


def unpinned_pipenv_file(version):
    """scripts/pipenv-requirements.txt as it renders for a project whose pipenv `version` the
    template does not pin (templates/pipenv/unknown.txt; the pre-generation rule refuses such a
    version now, so only projects made before it have one)."""
    import os

    import jinja2

    loader = jinja2.FileSystemLoader([REPO, PIPENV_PINS.parent])
    # A pip requirements file, rendered as cookiecutter renders it: no HTML, nothing to escape.
    environment = jinja2.Environment(  # nosec B701
        loader=loader, autoescape=False, extensions=["flask_appstack_identity.TemplateIdentity"]
    )
    source = environment.get_template("{{cookiecutter.app_name}}/scripts/pipenv-requirements.txt")
    here = os.getcwd()
    os.chdir(REPO)  # cookiecutter renders from inside the template, where its Jinja extension looks
    try:
        return source.render(cookiecutter={"pipenv_version": version})
    finally:
        os.chdir(here)


def pinned_pipenvs():
    """The pipenv releases the template pins with hashes, by their files."""
    from flask_appstack_identity import pinned_pipenvs

    return pinned_pipenvs(REPO)
