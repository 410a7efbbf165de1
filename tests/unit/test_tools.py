"""The suite's own machinery (tools/): one way to run a program, one way to build a cached thing
once, and the bare-machine provisioning fenced in one module."""

import sys

import pytest

from tools.cache import ToolFailed, built_once, run
from tools.project import REPO

# What exists only to make a bare root machine look like a hosted runner.
BARE_MACHINE_WORDS = ("apt-get", "debootstrap", "dockerd")


def test_only_tools_bare_machine_provisions_a_bare_machine():
    """apt-get, debootstrap and a dockerd of the suite's own live in tools/bare_machine.py; the
    rest of tools/, tasks.py and the benchmarks only call into it where the machine lacks something."""
    others = [path for path in sorted((REPO / "tools").glob("*.py")) if path.name != "bare_machine.py"]
    for path in [*others, REPO / "tasks.py", REPO / "benchmarks" / "run.py"]:
        text = path.read_text()
        assert [word for word in BARE_MACHINE_WORDS if word in text] == [], path.relative_to(REPO)
    fence = (REPO / "tools" / "bare_machine.py").read_text()
    assert all(word in fence for word in BARE_MACHINE_WORDS)


def test_a_cached_folder_is_built_once_and_an_interrupted_build_again_from_scratch(tmp_path):
    builds = []

    def build(path):
        builds.append(path)
        path.mkdir()  # fails if an interrupted build's leftovers were still there
        (path / "made").write_text(f"build {len(builds)}")
        if len(builds) == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        built_once(tmp_path / "venv", build)
    assert built_once(tmp_path / "venv", build) == tmp_path / "venv"
    assert built_once(tmp_path / "venv", build) == tmp_path / "venv"
    assert len(builds) == 2 and (tmp_path / "venv" / "made").read_text() == "build 2"


def test_a_cached_file_is_finished_once_it_exists(tmp_path):
    built_once(tmp_path / "helm", lambda path: path.write_text("binary"))
    built_once(tmp_path / "helm", lambda path: pytest.fail("built twice"))
    assert (tmp_path / "helm").read_text() == "binary"


def test_a_failing_program_is_named_with_the_end_of_its_output():
    lines = "import sys; print('\\n'.join(f'line {n}' for n in range(100))); sys.exit('the reason')"
    with pytest.raises(ToolFailed) as failed:
        run([sys.executable, "-c", lines])
    message = str(failed.value)
    assert message.startswith(f"`{sys.executable} -c ") and "exited with 1:\n" in message
    assert message.endswith("line 99\nthe reason") and "line 50\n" not in message
    assert run([sys.executable, "-c", "exit(3)"], check=False).returncode == 3


def test_a_program_that_outlives_its_time_is_named():
    with pytest.raises(ToolFailed, match=r"-c 'import time; time.sleep\(30\)'` did not finish in 0.5 s"):
        run([sys.executable, "-c", "import time; time.sleep(30)"], timeout=0.5)
