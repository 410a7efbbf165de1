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
    for target in ("install", "lock", "test", "run"):  # scripts/lock.py names the project's Python itself
        result = make(default_project, target, path=str(empty), **nothing)
        assert result.returncode != 0
        assert result.stderr.splitlines()[:1] == [
            f"make {target}: python3 is not installed: scripts/lock.py needs Python 3.9 or newer as python3 "
            "(or name one: LOCK_PYTHON=/path/to/python3)."
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
