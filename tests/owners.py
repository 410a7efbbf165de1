"""Who owns each path of a generated project, as the template's one list says it
(templates/ownership.jinja, from which the generated README.md's table, docs/updates.md's lists
and pyproject.toml's `[tool.cruft] skip` are rendered): the template's paths, which every
release replaces, and the team's, which no release touches (but the merged ones).

A path ending in "/" is a directory and everything under it; `<hostspace>` stands for each
hostspace's name."""

import fnmatch

import jinja2

from tools.project import REPO

ROWS = (
    jinja2.Environment(loader=jinja2.FileSystemLoader(REPO / "templates")).get_template("ownership.jinja").module.rows
)
TEMPLATE_PATHS = tuple(path for row in ROWS if row["owner"] == "template" for path in row["paths"])
# Never touched by a release: `[tool.cruft] skip`.
TEAM_PATHS = tuple(path for row in ROWS if row["owner"] == "team" and not row.get("merged") for path in row["paths"])
# The team's too, but merged by `make update`, not skipped: a release that needs a new
# platform package adds its line.
TEAM_MERGED_PATHS = tuple(path for row in ROWS if row["owner"] == "team" and row.get("merged") for path in row["paths"])

OWNERS = {
    **{path: "template" for path in TEMPLATE_PATHS},
    **{path: "team" for path in TEAM_PATHS + TEAM_MERGED_PATHS},
}


def covers(row, path):
    """Whether the table's `row` (a path as above) names the generated file `path`."""
    pattern = row.replace("<hostspace>", "*")
    return path.startswith(pattern) if pattern.endswith("/") else fnmatch.fnmatchcase(path, pattern)


def owner_of(path):
    """(owner, the table's row that names it) of the generated file `path`."""
    return next((row["owner"], each) for row in ROWS for each in row["paths"] if covers(each, path))


def cruft_skip():
    """TEAM_PATHS as cruft's skip list: directories without their "/", hostspaces as a glob."""
    return [path.rstrip("/").replace("<hostspace>", "*") for path in TEAM_PATHS]
