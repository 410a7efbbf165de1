"""The template's own documents: a README for the teams and the platform team that use the
template (short, its variable table written from the rules and cookiecutter.json), and
CONTRIBUTING.md with docs/ for those who change it; every relative link resolves."""

import pytest
from markdown_text import broken_links

import tasks
from tools.project import REPO

README_MAX_LINES = 250
DOCUMENTS = [
    "README.md",
    "CONTRIBUTING.md",
    *sorted(str(path.relative_to(REPO)) for path in (REPO / "docs").glob("*.md")),
]


def test_the_readme_is_at_most_250_lines():
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= README_MAX_LINES


def test_the_readmes_variable_table_is_the_one_tasks_docs_writes():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert tasks.readme_with_table(readme) == readme, "README.md's variable table is stale: python3 tasks.py docs"


def test_tasks_docs_check_fails_on_a_stale_table_and_docs_writes_it_again(tmp_path, monkeypatch, capsys):
    readme = tmp_path / "README.md"
    current = (REPO / "README.md").read_text(encoding="utf-8")
    readme.write_text(current.replace("| `hpa_cpu_target` |", "| `hpa_cpu_goal` |"), encoding="utf-8")
    monkeypatch.setattr(tasks, "README", readme)
    assert tasks.docs(["--check"]) == 1
    assert "variable table is stale: run `python3 tasks.py docs`" in capsys.readouterr().err
    assert tasks.docs([]) == 0
    assert readme.read_text(encoding="utf-8") == current
    assert tasks.docs(["--check"]) == 0


def test_every_question_needs_a_meaning_for_the_table(monkeypatch):
    monkeypatch.delitem(tasks.MEANINGS, "gunicorn_workers")
    with pytest.raises(SystemExit, match="gunicorn_workers of cookiecutter.json has no meaning"):
        tasks.variable_table()


def test_the_maintainers_material_has_pages_of_its_own():
    assert {"docs/hooks.md", "docs/testing.md", "docs/benchmarks.md"} <= set(DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_relative_link_resolves(document):
    assert broken_links(REPO, [document]) == []
