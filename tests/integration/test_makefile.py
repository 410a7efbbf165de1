"""The generated Makefile with the real make: each missing tool named with how to get it, and
what `make -n` shows for the container targets (the token handed over as a secret, never a
file of the image; the manual's commands)."""

import os
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest
from answers import PRIVATE_INDEX

from tools.helm import HELM_UNITTEST_VERSION, helm_binaries
from tools.project import DEFAULTS


def test_make_names_each_missing_tool_and_how_to_get_it(default_project, tmp_path):
    """Nothing on PATH: each target says which program it misses and how to get it."""
    empty = tmp_path / "bin"
    empty.mkdir()
    nothing = {"HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "pyenv")}
    lint = make(default_project, "lint", path=str(empty), **nothing)
    assert lint.returncode != 0
    assert lint.stderr.splitlines()[:4] == [
        "make lint: yamllint is not installed: run `make tools`.",
        "make lint: helm is not installed: install helm 3 (https://helm.sh/docs/intro/install/) and put it on PATH.",
        "make lint: hadolint is not installed: run `make tools`.",
        "make lint: ruff is not installed: run `make tools`.",
    ]
    for target in ("install", "lock"):  # scripts/lock.py names the project's Python itself
        result = make(default_project, target, path=str(empty), **nothing)
        assert result.returncode != 0
        assert result.stderr.splitlines()[:1] == [
            f"make {target}: python3 is not installed: scripts/lock.py needs Python 3.9 or newer as python3 "
            "(or name one: LOCK_PYTHON=/path/to/python3)."
        ]
    for target in ("test", "run"):  # source/.venv's own Python, which make install makes
        result = make(default_project, target, path=str(empty), **nothing)
        assert result.returncode != 0
        assert result.stderr.splitlines()[:1] == [
            f"make {target}: source/.venv does not exist: run `make install` first"
        ]
    for target, program in (
        ("scan", "bandit"),
        ("build", "docker"),
        ("helm-lint", "helm"),
        ("helm-unittest", "helm"),
        ("python-lint", "ruff"),
        ("yaml-lint", "yamllint"),
        ("docker-lint", "hadolint"),
    ):
        result = make(default_project, target, path=str(empty), **nothing)
        assert f"make {target}: {program} is not installed: " in result.stderr, target
    # helm without its helm-unittest plugin: the plugin is named, with the suite's own pin.
    helm = os.pathsep.join([str(helm_binaries()["3.17"].parent), "/usr/bin", "/bin"])
    result = make(default_project, "helm-unittest", path=helm, HELM_PLUGINS=str(tmp_path / "no-plugins"), **nothing)
    assert result.returncode != 0
    assert result.stderr.splitlines()[:1] == [
        "make helm-unittest: helm-unittest is not installed: install the plugin: helm plugin install "
        f"https://github.com/helm-unittest/helm-unittest --version {HELM_UNITTEST_VERSION} "
        "(with helm 4, add --verify=false)."
    ]


def make(project, *targets, path, **env):
    """The real make, in a baked project, with this PATH (and environment changes)."""
    environ = {**os.environ, "PATH": path, **env}
    return subprocess.run([shutil.which("make"), *targets], cwd=project, capture_output=True, text=True, env=environ)


def dry_run(project, target, **variables):
    """The commands `make -n target` prints, continuation lines joined, paths made relative."""
    argv = ["make", "-n", target, *(f"{name}={value}" for name, value in variables.items())]
    made = subprocess.run(argv, cwd=project, capture_output=True, text=True, check=True)
    return [line.replace(f"{project}/", "./") for line in made.stdout.replace("\\\n", "").splitlines()]


def docker_command(project, target):
    [command] = [shlex.split(line) for line in dry_run(project, target) if line.startswith("docker ")]
    return command


@pytest.mark.parametrize("target", ["build", "lock-in-container"])
def test_without_a_private_index_make_builds_and_locks_in_a_container_without_a_token_file(default_project, target):
    assert not (default_project / "PYPI_TOKEN.txt").exists()
    command = docker_command(default_project, target)
    assert [word for word in command if "PYPI_TOKEN" in word] == []
    assert command[-1] == "." if target == "build" else command[-1].startswith("mkdir -p /work/source && ")


def test_with_a_token_file_make_build_hands_it_over_as_the_secret(default_project, tmp_path):
    project = Path(shutil.copytree(default_project, tmp_path / "project"))
    (project / "PYPI_TOKEN.txt").write_text("not-a-token\n")
    command = docker_command(project, "build")
    assert command[command.index("--secret") + 1] == "id=PYPI_TOKEN,src=PYPI_TOKEN.txt"
    options = dry_run(project, "build", CA_BUNDLE="/ca.pem", BUILD_OPTIONS="--network host")
    [build] = [shlex.split(line) for line in options if line.startswith("docker ")]
    assert build[-7:] == [
        "--secret",
        "id=ca_bundle,src=/ca.pem",
        "--network",
        "host",
        "-t",
        f"{DEFAULTS['app_name']}:local",
        ".",
    ]


@pytest.mark.parametrize("target", ["build", "lock-in-container"])
def test_with_a_private_index_make_stops_without_the_token_file_and_names_the_manuals_section(bake, target):
    project = bake(**PRIVATE_INDEX)
    made = subprocess.run(["make", target], cwd=project, capture_output=True, text=True)
    assert made.returncode != 0
    assert made.stderr.splitlines()[0] == (
        f"make {target}: source/Pipfile's index needs your Artifactory token: put it in PYPI_TOKEN.txt first "
        '(docs/local-development.md, "Artifactory token")'
    )


def test_make_lock_in_container_runs_the_manuals_command(default_project, tmp_path):
    """The hook names `make lock-in-container`; it runs what docs/local-development.md's Build
    locally shows."""
    project = Path(shutil.copytree(default_project, tmp_path / "project"))
    (project / "PYPI_TOKEN.txt").write_text("not-a-token\n")
    manual = [
        line.strip()
        for line in (project / "docs" / "local-development.md").read_text().splitlines()
        if line.strip().startswith("docker run --rm -e PYPI_USER=")
    ]
    dry_run = subprocess.run(
        ["make", "-n", "lock-in-container", "PYPI_USER=<SSO_USERNAME>"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    [command] = [
        line.replace(f"{project}/", "./").replace(f'"{project}:', '".:')
        for line in dry_run.stdout.replace("\\\n", "").splitlines()
        if line.startswith("docker run")
    ]
    assert len(manual) == 1 and shlex.split(command) == shlex.split(manual[0])
    minor = ".".join(DEFAULTS["python_version"].split(".")[:2])
    assert f"{DEFAULTS['docker_registry']}/library/python:{minor}-slim sh -c" in manual[0]
    assert "python3 /work/scripts/lock.py lock && cat /work/source/Pipfile.lock > /lock/Pipfile.lock && " in manual[0]
    assert manual[0].endswith("{ chown --reference=/lock /lock/Pipfile.lock 2>/dev/null || true; }'")


def plain_machine(folder):
    """A PATH of python3, git, make and the shell's own utilities: nothing the targets add."""
    folder.mkdir()
    programs = {"python3": os.path.realpath(shutil.which("python3")), "git": shutil.which("git")}
    programs.update({name: shutil.which(name) for name in ("sh", "make", "grep", "sed", "tr", "cat", "mktemp", "rm")})
    for name, target in programs.items():
        (folder / name).symlink_to(target)
    return str(folder)


def test_make_doctor_names_each_missing_tool_with_the_command_that_installs_it(default_project, tmp_path):
    nothing = {"HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "pyenv")}
    doctor = make(default_project, "doctor", path=plain_machine(tmp_path / "bin"), **nothing)
    assert doctor.returncode != 0
    lines = doctor.stdout.splitlines()
    missing = [line.split()[1] for line in lines if line.split()[:1] == ["MISSING"]]
    assert missing == ["Python", "ruff", "bandit", "yamllint", "hadolint", "helm", "helm-unittest", "docker", "kubectl"]
    assert [line.split()[1] for line in lines if line.split()[:1] == ["ok"]] == ["git"]
    # Each missing tool's next line is the command that installs it.
    for number, line in enumerate(lines):
        if line.split()[:1] == ["MISSING"]:
            assert lines[number + 1].startswith(" " * 10) and lines[number + 1].strip(), line
    assert (
        "  make tools" in doctor.stdout
        and "helm plugin install https://github.com/helm-unittest/helm-unittest" in doctor.stdout
    )
    assert lines[-1].startswith("make doctor: 9 missing (Python 3.13, ruff, bandit")


def test_make_check_runs_what_it_can_and_names_every_gate_it_could_not(default_project, tmp_path):
    nothing = {"HOME": str(tmp_path), "PYENV_ROOT": str(tmp_path / "pyenv")}
    checked = make(default_project, "check", path=plain_machine(tmp_path / "bin"), **nothing)
    assert checked.returncode != 0
    gates = ["python-lint", "test", "scan", "yaml-lint", "helm-lint", "helm-unittest", "docker-lint"]
    assert [line for line in checked.stdout.splitlines() if line.endswith("skipped: its tools are missing")] == [
        f"make check: {gate} skipped: its tools are missing" for gate in gates
    ]
    report = checked.stderr.split("make check: these gates could not run", 1)[1].splitlines()[1:8]
    assert report == [
        "  python-lint: ruff",
        "  test: Python3.13",
        "  scan: bandit",
        "  yaml-lint: yamllint",
        "  helm-lint: helm",
        "  helm-unittest: helm,helm-unittest",
        "  docker-lint: hadolint",
    ]
