"""Facts about the template that the tests and the benchmarks share."""

import json
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
DEFAULTS = json.loads((REPO / "cookiecutter.json").read_text())


def pipfile_requirements(project, sections=("packages", "dev-packages")):
    """The requirement strings of a baked project's Pipfile (name + version spec)."""
    pipfile = tomllib.loads((project / "source" / "Pipfile").read_text())
    return [
        name if spec == "*" else f"{name}{spec}"
        for section in sections
        for name, spec in pipfile.get(section, {}).items()
    ]


# The generated project's lock program, as the tests and the benchmarks use it: imported from
# its place in the template (it holds no Jinja, so the unrendered file is the generated one).
LOCK_PROGRAM = REPO / "{{cookiecutter.app_name}}" / "scripts" / "lock.py"


def lock_program():
    """scripts/lock.py as a module (loaded once)."""
    import importlib.util
    import sys

    if "appstack_lock_program" not in sys.modules:
        spec = importlib.util.spec_from_file_location("appstack_lock_program", LOCK_PROGRAM)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules["appstack_lock_program"] = module
    return sys.modules["appstack_lock_program"]
