"""The generated documents: README.md, the team's (short, written once, with the table of who
owns which path), and docs/, the template's platform manual (an index that links every page,
links that resolve, no section left empty by a feature that is off)."""

import re
from pathlib import Path

import pytest
from answers import COMBINATIONS, combination_id
from markdown_text import broken_links, level, prose_lines, section
from owners import covers
from releases import copy_template

README_MAX_LINES = 150
DOCS_PAGES = ["configuration.md", "local-development.md", "pipeline.md", "kubernetes.md", "updates.md"]


@pytest.fixture(scope="module", params=COMBINATIONS, ids=combination_id)
def project(request, bake):
    return bake(**request.param)


def documents(project):
    """{path relative to the project: text} of README.md and every page of docs/."""
    paths = [project / "README.md", *sorted((project / "docs").glob("*.md"))]
    return {str(path.relative_to(project)): path.read_text() for path in paths}


def ownership_rows(project):
    """[(path, owner)] of the README's table, a row's paths each on their own."""
    table = section((project / "README.md").read_text(), "## Who owns what")
    rows = [line.split(" | ") for line in table.splitlines() if line.startswith("| `")]
    return [(path, owner.strip()) for paths, owner, _ in rows for path in re.findall(r"`([^`]+)`", paths)]


def test_the_readme_is_short(project):
    assert len((project / "README.md").read_text().splitlines()) <= README_MAX_LINES


def test_the_readme_says_the_team_owns_it_and_where_the_manual_is(default_project):
    readme = (default_project / "README.md").read_text()
    assert "This README is the team's." in readme
    assert "[docs/](docs/README.md)" in readme


def test_every_top_level_path_has_exactly_one_owner(project):
    """A top-level file or directory is a row of its own, or (source/, chart/) the parent of
    rows: then the next test gives each file under it its owner."""
    rows = [path for path, _ in ownership_rows(project)]
    unowned = []
    for entry in sorted(project.iterdir()):
        name = entry.name + ("/" if entry.is_dir() else "")
        own = [row for row in rows if row == name]
        below = [row for row in rows if entry.is_dir() and row.startswith(name) and row != name]
        if len(own) + bool(below) != 1:
            unowned.append((name, own, below))
    assert unowned == []


def test_every_generated_file_has_exactly_one_owner(project):
    rows = [path for path, _ in ownership_rows(project)]
    files = [str(path.relative_to(project)) for path in project.rglob("*") if path.is_file()]
    owners = {name: [row for row in rows if covers(row, name)] for name in files}
    assert {name: found for name, found in owners.items() if len(found) != 1} == {}


def test_the_manual_has_an_index_that_links_every_page(default_project):
    index = (default_project / "docs" / "README.md").read_text()
    on_disk = sorted(path.name for path in (default_project / "docs").glob("*.md") if path.name != "README.md")
    assert on_disk == sorted(DOCS_PAGES)
    assert [page for page in DOCS_PAGES if f"]({page})" not in index] == []


def test_every_relative_link_resolves(project):
    assert broken_links(project, documents(project)) == []


def test_no_section_is_left_empty(project):
    """A feature that is off leaves no heading without text under it."""
    empty = []
    for name, text in documents(project).items():
        lines = [line for line in prose_lines(text) if line.strip()] + ["# the end"]
        empty += [(name, line) for line, after in zip(lines, lines[1:]) if 0 < level(after) <= level(line)]
    assert empty == []


def test_who_owns_what_is_written_once_and_every_document_follows(tmp_path):
    """The generated README's table, docs/updates.md's lists and pyproject.toml's skip list are
    rendered from templates/ownership.jinja: a path added there reaches all three."""
    from cookiecutter.main import cookiecutter

    template = copy_template(tmp_path / "template")
    ownership = template / "templates" / "ownership.jinja"
    row = '{"paths": ["notes/"], "owner": "team", "what": "the team\'s notes"},\n'
    text = ownership.read_text()
    ownership.write_text(text.replace("{%- set rows = [\n", "{%- set rows = [\n  " + row, 1))
    project = Path(
        cookiecutter(
            str(template), no_input=True, output_dir=str(tmp_path / "out"), extra_context={"lock_dependencies": False}
        )
    )
    assert "| `notes/` | team | the team's notes |" in (project / "README.md").read_text()
    team = section((project / "docs" / "updates.md").read_text(), "## Who owns which file").split(
        "The team's files", 1
    )[1]
    assert "`notes/`" in team.split("- **", 1)[0]
    assert '    "notes",' in (project / "pyproject.toml").read_text()
