"""docs/figures.md: the one file that holds measured figures, as `python3 tasks.py bench` writes it.

One row per figure, each with the date and the machine it was measured on, so that a run of
some benchmarks (`--only bake`) replaces their rows and keeps the others as they were. The
prose of the documents says what the figures mean and the targets, and links here.
"""

import os
import platform
import re
import time
from pathlib import Path

FIGURES = Path(__file__).resolve().parents[1] / "docs" / "figures.md"
COLUMNS = ("figure", "measured", "baseline", "ratio", "rounds", "date", "machine")
# The rows in the file's order; one the file holds that is not here is kept, last.
ORDER = (
    "bake",
    "bake vs cookiecutter-django",
    "lock",
    "serve requests/s",
    "serve p99",
    "serve CPU per request",
    "serve p99 with slow clients",
    "serve slow clients survived",
    "image size",
    "reconfigure",
    "first generate",
    "first generate, cold cache",
    "suite",
    "fast tier",
    "suite, fresh clone",
)
HEAD = """# Measured figures

Written by `python3 tasks.py bench` (`benchmarks/run.py`): a run replaces the rows of what it
measured and keeps the others. Not edited by hand, apart from `image size` (the container tests
print it). What each figure measures, and the targets: [benchmarks.md](benchmarks.md),
[testing.md](testing.md).
"""
ROW = re.compile(r"^\|(.*)\|$")


def seconds(value):
    """A duration as the file shows it: 0.719 s, 6.36 s, 7 min 41 s."""
    if value >= 60:
        minutes, rest = divmod(round(value), 60)
        return f"{minutes} min {rest} s"
    return f"{value:.{3 if value < 1 else 2 if value < 10 else 1}f} s"


def machine(load_before):
    """Cores, the load average before and after, Python: what a figure depends on most."""
    after = os.getloadavg()[0]
    return f"{os.cpu_count()} cores, load {load_before:.1f} to {after:.1f}, Python {platform.python_version()}"


def row(name, measured, baseline="—", ratio=None, rounds=1, load_before=0.0):
    return {
        "figure": name,
        "measured": measured,
        "baseline": baseline,
        "ratio": "—" if ratio is None else f"{ratio:.2f}",
        "rounds": str(rounds),
        "date": time.strftime("%Y-%m-%d", time.gmtime()),
        "machine": machine(load_before),
    }


def read_figures(text):
    """{figure: row} of the file's table, in its order."""
    rows = {}
    for line in text.splitlines():
        match = ROW.match(line)
        cells = [cell.strip() for cell in match.group(1).split("|")] if match else []
        if len(cells) == len(COLUMNS) and cells[0] not in ("figure", "---"):
            rows[cells[0]] = dict(zip(COLUMNS, cells))
    return rows


def figures_text(rows):
    """The file for these rows: ORDER's first, then any other, as they came."""
    ordered = [rows[name] for name in ORDER if name in rows] + [rows[name] for name in rows if name not in ORDER]
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(entry[column] for column in COLUMNS) + " |" for entry in ordered]
    return HEAD + "\n" + "\n".join(lines) + "\n"


def update_figures(new_rows, path=FIGURES):
    """Replace the rows measured now, keep the others; returns the file's text."""
    rows = read_figures(path.read_text(encoding="utf-8")) if path.exists() else {}
    rows.update({entry["figure"]: entry for entry in new_rows})
    text = figures_text(rows)
    path.write_text(text, encoding="utf-8")
    return text
