"""The template's own documents: a README for the teams and the platform team that use the
template (short, its variable table written from the rules and cookiecutter.json), and
CONTRIBUTING.md with docs/ for those who change it; every relative link resolves."""

import json
import re

import pytest
from markdown_text import broken_links

import tasks
from benchmarks.figures import FIGURES, ORDER, figures_text, read_figures, row, seconds, update_figures
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


def test_the_table_says_what_each_variable_means_with_its_question(tmp_path, monkeypatch):
    """One text per variable, cookiecutter.json's question; a variable without one fails by name."""
    defaults = json.loads((REPO / "cookiecutter.json").read_text())
    table = tasks.variable_table()
    assert "| `pvc_access_mode` | Volume access mode (used only when pvc is yes) | `ReadWriteOnce` |" in table
    assert "(your ng-ngdc-&lt;appcode>-* RBAC groups)" in table  # no HTML tag for a Markdown reader
    assert f"| `gunicorn_workers` | {defaults['__prompts__']['gunicorn_workers']} | `6` |" in table
    del defaults["__prompts__"]["gunicorn_workers"]
    (tmp_path / "cookiecutter.json").write_text(json.dumps(defaults))
    monkeypatch.setattr(tasks, "HERE", tmp_path)
    with pytest.raises(SystemExit, match="gunicorn_workers of cookiecutter.json has no question in its __prompts__"):
        tasks.variable_table()


def test_the_maintainers_material_has_pages_of_its_own():
    assert {"docs/hooks.md", "docs/testing.md", "docs/benchmarks.md"} <= set(DOCUMENTS)


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_relative_link_resolves(document):
    assert broken_links(REPO, [document]) == []


# A measured duration or ratio: 14 s, 7 min, 29.4 ms, 1657 µs, 2.29×, 947 req/s. A target or a
# setting names its bound right before the number ("at most 30 s", "≤ 1.5×"): that is no measurement.
MEASURED = re.compile(r"(?<![\w.])\d+(\.\d+)? ?(s|seconds?|min|minutes?|ms|µs|h|hours?|×|req/s|[KMG]B)(?!\w)")
BOUND = re.compile(r"(≤|<=|at most|under) $")


def measured_figures(text):
    return [match.group(0) for match in MEASURED.finditer(text) if not BOUND.search(text[: match.start()])]


@pytest.mark.parametrize("document", [name for name in DOCUMENTS if name != "docs/figures.md"])
def test_no_document_but_the_figures_file_states_a_measured_time_or_ratio(document):
    assert measured_figures((REPO / document).read_text(encoding="utf-8")) == []


def test_a_measured_time_or_ratio_is_found_and_a_target_is_not():
    text = "It took 7 min 41 s (2.29×, 947 req/s, 29.4 ms, 550 MB); at most 30 s, ≤ 1.5×, Python 3.11, 50 files."
    assert measured_figures(text) == ["7 min", "41 s", "2.29×", "947 req/s", "29.4 ms", "550 MB"]


def test_the_figures_file_is_as_tasks_bench_writes_it():
    text = FIGURES.read_text(encoding="utf-8")
    rows = read_figures(text)
    assert figures_text(rows) == text
    assert list(rows) == [name for name in ORDER if name in rows] and "bake" in rows
    for entry in rows.values():
        assert re.fullmatch(r"\d{4}-\d\d-\d\d", entry["date"]) and re.fullmatch(r"—|\d+\.\d\d", entry["ratio"])


def test_a_bench_run_replaces_the_rows_it_measured_and_keeps_the_others(tmp_path):
    path = tmp_path / "figures.md"
    path.write_text(FIGURES.read_text(encoding="utf-8"), encoding="utf-8")
    before = read_figures(path.read_text(encoding="utf-8"))
    update_figures([row("bake", seconds(0.5), seconds(0.4), 1.25, 15, load_before=0.3)], path)
    after = read_figures(path.read_text(encoding="utf-8"))
    assert (after["bake"]["measured"], after["bake"]["baseline"], after["bake"]["ratio"]) == (
        "0.500 s",
        "0.400 s",
        "1.25",
    )
    assert re.fullmatch(r"\d+ cores, load 0\.3 to \d+\.\d, Python 3\.\d+\.\d+", after["bake"]["machine"])
    assert {name: entry for name, entry in after.items() if name != "bake"} == {
        name: entry for name, entry in before.items() if name != "bake"
    }
    assert [seconds(value) for value in (0.7191, 6.364, 14.04, 461.4)] == ["0.719 s", "6.36 s", "14.0 s", "7 min 41 s"]
