"""Security scanners over what we generate and what we run: clean, or a justified skip."""

import fnmatch
import json
import random
import shutil
import string
import sys
from pathlib import Path

import pytest
from answers import COMBINATIONS, combination_id

from tools.cache import run
from tools.project import REPO, tomllib
from tools.validators import run_checkov

BANDIT = Path(sys.executable).parent / "bandit"


def bandit(*args, cwd):
    return run([BANDIT, "-q", *args], check=False, cwd=cwd)


def test_the_generated_code_passes_bandit(default_project):
    # The command of the generated Makefile's `scan` target, plus the gunicorn settings.
    result = bandit(
        "-r", "source/api", "source/scale", "source/gunicorn.conf.py", "-x", "source/scale/tests", cwd=default_project
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_templates_own_code_passes_bandit(default_project):
    # Hooks and the identity extension run on every user's machine; tasks.py and tools/ on developers' and CI's.
    result = bandit(
        "-c", "pyproject.toml", "-r", "hooks", "tasks.py", "flask_appstack_identity.py", "tools", "benchmarks", cwd=REPO
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # So do the project's lock and update programs, with the hooks' skips (they run pipenv, git, cruft).
    skips = ",".join(tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["bandit"]["skips"])
    result = bandit("-s", skips, "-r", "scripts", cwd=default_project)
    assert result.returncode == 0, result.stdout + result.stderr


# A copy of the default project with what the scan must find planted in it: a cloud key and
# its secret in the code, the key again in a dotfile, and a Dockerfile that ends as root. Made up at random, so that no
# scanner's list of known example keys lets them through.
PLANTED = "planted"
FAKE = random.Random(4711)
FAKE_KEY_ID = "AKIA" + "".join(FAKE.choice(string.ascii_uppercase + "234567") for _ in range(16))
FAKE_SECRET = "".join(FAKE.choice(string.ascii_letters + string.digits + "+/") for _ in range(40))
FAKE_KEY_ID_IN_A_DOTFILE = "AKIA" + "".join(FAKE.choice(string.ascii_uppercase + "234567") for _ in range(16))


def plant(project):
    with (project / "source/scale/settings.py").open("a") as settings:
        settings.write(f'\nAWS_ACCESS_KEY_ID = "{FAKE_KEY_ID}"\nAWS_SECRET_ACCESS_KEY = "{FAKE_SECRET}"\n')
    with (project / ".pre-commit-config.yaml").open("a") as dotfile:
        dotfile.write(f"aws_access_key_id: {FAKE_KEY_ID_IN_A_DOTFILE}\n")
    with (project / "Dockerfile").open("a") as dockerfile:
        dockerfile.write("USER root\n")
    return project


def copy_each_file_once(projects, root):
    """Copy each project's files into root/<its folder>, except a file whose path and bytes an
    earlier project's copy already has (most files are the same in every combination): a scan
    reads it once. Returns {folder: {path: the folder whose copy of it is scanned}}."""
    first = {}  # (path, bytes) -> folder
    where = {}
    for folder, project in projects.items():
        where[folder] = {}
        for file in sorted(path for path in project.rglob("*") if path.is_file()):
            path = file.relative_to(project).as_posix()
            scanned = where[folder][path] = first.setdefault((path, file.read_bytes()), folder)
            if scanned == folder:
                (root / folder / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(file, root / folder / path)
    return where


@pytest.fixture(scope="module")
def scan(bake, tmp_path_factory):
    """One checkov run (its start-up dominates a scan) of the secrets checks over every file,
    and of the Dockerfile checks, over each combination's bake (folders 0, 1, ...) and the
    planted copy, each file the same in several of them read once: {(framework, folder):
    [failed checks of its files]}, and each framework's summary."""
    root = tmp_path_factory.mktemp("scan")
    projects = {str(index): bake(**answers) for index, answers in enumerate(COMBINATIONS)}
    projects[PLANTED] = plant(shutil.copytree(bake(), tmp_path_factory.mktemp(PLANTED) / "project"))
    where = copy_each_file_once(projects, root)
    result = run_checkov(root, framework=("secrets", "dockerfile"), output="json")
    reports = {report["check_type"]: report for report in json.loads(result.stdout)}
    found = {}  # (framework, scanned folder, path) -> [failed checks]
    for framework, report in reports.items():
        for check in report["results"]["failed_checks"]:
            folder, *path = Path(check["file_path"]).parts[1:]
            found.setdefault((framework, folder, "/".join(path)), []).append(
                f"{check['check_id']} {check['check_name']}: {check['file_path']}:{check['file_line_range'][0]}"
            )
    scanned = {(folder, path) for paths in where.values() for path, folder in paths.items()}
    assert {(folder, path) for _, folder, path in found} <= scanned, "a finding in no file the scan was given"
    failed = {}
    for folder, paths in where.items():
        for path, scanned in paths.items():
            for framework in reports:
                failed.setdefault((framework, folder), []).extend(found.get((framework, scanned, path), []))
    return failed, {framework: report["summary"] for framework, report in reports.items()}, where


# The tests that read the scan run on one worker, so that it runs once.
scanned = pytest.mark.xdist_group("security-scan")


@scanned
def test_the_scan_finds_what_was_planted(scan):
    failed, summaries, where = scan
    secrets = "\n".join(failed.get(("secrets", PLANTED), []))
    assert "source/scale/settings.py" in secrets and "AWS Access Key" in secrets
    assert ".pre-commit-config.yaml" in secrets  # dotfiles are read too
    assert [check for check in failed.get(("dockerfile", PLANTED), []) if check.startswith("CKV_DOCKER_8 ")]
    # Every Dockerfile was read: each that differs from the others once.
    dockerfiles = {folder for paths in where.values() for path, folder in paths.items() if path == "Dockerfile"}
    assert summaries["dockerfile"]["resource_count"] == len(dockerfiles) > 1


@scanned
@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_no_generated_file_holds_a_secret(scan, answers):
    failed, _, _ = scan
    assert failed.get(("secrets", str(COMBINATIONS.index(answers))), []) == []


@scanned
@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_the_dockerfile_passes_checkov(scan, answers):
    failed, _, _ = scan
    assert failed.get(("dockerfile", str(COMBINATIONS.index(answers))), []) == []


def test_the_token_file_is_kept_out_of_git_and_the_image(default_project):
    assert "PYPI_TOKEN.txt" in (default_project / ".gitignore").read_text().split()
    # .dockerignore is an allow-list: everything out (`*`), then only what the image needs.
    patterns = [
        line
        for line in (default_project / ".dockerignore").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    allowed = [pattern[1:] for pattern in patterns if pattern.startswith("!")]
    assert patterns[0] == "*" and allowed and not any(fnmatch.fnmatch("PYPI_TOKEN.txt", p) for p in allowed)
