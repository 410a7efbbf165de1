"""tasks.py's install step: what it says, and how it makes .venv (no tool runs: the commands are
recorded). A first `python3 tasks.py generate` spends most of its time here."""

import importlib.metadata
import subprocess
import sys

import pytest

import tasks


@pytest.fixture
def commands(tmp_path, monkeypatch, capsys):
    """The commands ensure_venv runs, in order, .venv being in tmp_path; the line that says what is
    installed comes first (its place among them: "say")."""
    monkeypatch.setattr(tasks, "VENV", tmp_path / ".venv")
    ran = []

    def record(args, check=False, **options):
        if not ran and "installing" in capsys.readouterr().err:
            ran.append("say")
        ran.append([str(arg) for arg in args])
        if args[1:3] == ["-m", "venv"]:
            (tmp_path / ".venv" / "bin").mkdir(parents=True, exist_ok=True)
            (tmp_path / ".venv" / "bin" / "python").touch()
        return subprocess.CompletedProcess(args, 0)

    monkeypatch.setattr(tasks.subprocess, "run", record)
    return ran


def test_generate_says_what_it_installs_then_installs_with_this_pythons_pip_into_a_venv_without_one(commands):
    tasks.ensure_venv(tasks.GENERATE)
    venv, python = str(tasks.VENV), str(tasks.VENV / "bin" / "python")
    assert commands[:2] == ["say", [sys.executable, "-m", "venv", "--clear", "--without-pip", venv]]
    assert commands[2][:5] == [sys.executable, "-m", "pip", "--python", python]
    assert commands[2][5:] == [
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "-r",
        str(tasks.GENERATE),
    ]
    assert len(commands) == 3
    tasks.ensure_venv(tasks.GENERATE)  # installed: nothing runs again
    assert len(commands) == 3


@pytest.mark.parametrize("version", ["22.2.2", None], ids=["pip too old for --python", "no pip"])
def test_without_a_pip_that_installs_elsewhere_the_venv_gets_its_own(commands, monkeypatch, version):
    def pip_version(name):
        if version is None:
            raise importlib.metadata.PackageNotFoundError(name)
        return version

    monkeypatch.setattr(importlib.metadata, "version", pip_version)
    tasks.ensure_venv(tasks.GENERATE)
    python = str(tasks.VENV / "bin" / "python")
    assert commands[:2] == ["say", [sys.executable, "-m", "venv", "--clear", str(tasks.VENV)]]
    assert commands[2][:4] == [python, "-m", "pip", "install"]


def test_the_test_tools_keep_a_pip_in_the_venv(commands, monkeypatch):
    """The suite runs `python -m pip` (pip config list, downloads of wheels)."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    tasks.ensure_venv(tasks.REQUIREMENTS)
    assert commands[1] == [sys.executable, "-m", "venv", "--clear", str(tasks.VENV)]
    assert commands[2][:4] == [str(tasks.VENV / "bin" / "python"), "-m", "pip", "install"]
    assert commands[2][-2:] == ["-r", str(tasks.REQUIREMENTS)]
    assert len(commands) == 3  # Python compiles what the suite imports as it first does


@pytest.mark.parametrize("requirements", ["REQUIREMENTS", "GENERATE"])
def test_where_python_writes_no_bytecode_the_test_tools_are_compiled_once_at_install(
    commands, monkeypatch, requirements
):
    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    tasks.ensure_venv(getattr(tasks, requirements))
    compiled = [command for command in commands if "compileall" in command]
    if requirements == "GENERATE":  # a first generate compiles only what cruft imports
        assert compiled == []
    else:
        assert compiled == [
            [str(tasks.VENV / "bin" / "python"), "-m", "compileall", "-qq", "-j", "0", str(tasks.VENV / "lib")]
        ]
