"""Who owns each path of a generated project, in one place: the template's paths, which every
release replaces, and the team's, which no release touches. The generated README's table
shows the same split and docs/updates.md names every path (tests/unit/test_docs.py checks both);
`cruft_skip()` is what the generated pyproject.toml's `[tool.cruft] skip` should list.

A path ending in "/" is a directory and everything under it; `<hostspace>` stands for each
hostspace's name."""

import fnmatch

TEMPLATE_PATHS = (
    "source/scale/",
    "source/gunicorn.conf.py",
    "scripts/",
    ".flask-appstack.json",
    "docs/",
    "Makefile",
    "Dockerfile",
    ".dockerignore",
    "chart/Chart.yaml",
    "chart/defaults.yaml",
    "chart/values.schema.json",
    "chart/templates/",
    "chart/tests/",
    "chart/.checkov.yaml",
    "chart/.helmignore",
    "azure-pipelines.yaml",
    "pyproject.toml",
    "renovate.json",
    ".editorconfig",
    ".gitignore",
    ".pre-commit-config.yaml",
    ".yamllint.yaml",
)
# Never touched by a release: `[tool.cruft] skip`.
TEAM_PATHS = (
    "README.md",
    "source/api/",
    "source/tests/",
    "source/Pipfile.lock",
    "chart/values.yaml",
    "chart/values-<hostspace>.yaml",
    "team.mk",
    "ruff.toml",
    "system-packages.txt",
)
# The team's too, but merged by `make update`, not skipped: a release that needs a new
# platform package adds its line.
TEAM_MERGED_PATHS = ("source/Pipfile",)

OWNERS = {
    **{path: "template" for path in TEMPLATE_PATHS},
    **{path: "team" for path in TEAM_PATHS + TEAM_MERGED_PATHS},
}


def covers(row, path):
    """Whether the table's `row` (a path as above) names the generated file `path`."""
    pattern = row.replace("<hostspace>", "*")
    return path.startswith(pattern) if pattern.endswith("/") else fnmatch.fnmatchcase(path, pattern)


def cruft_skip():
    """TEAM_PATHS as cruft's skip list: directories without their "/", hostspaces as a glob."""
    return [path.rstrip("/").replace("<hostspace>", "*") for path in TEAM_PATHS]
