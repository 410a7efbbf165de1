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
