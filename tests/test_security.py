"""Security scanners over what we generate and what we run: clean, or a justified skip."""

import fnmatch
import subprocess
import sys
from pathlib import Path

import pytest
from answers import combination_id

from tools.project import REPO
from tools.validators import run_checkov

BANDIT = Path(sys.executable).parent / "bandit"

# Each with something that could leak: the default, a private index with credentials from
# the environment, and every optional part switched on.
COMBINATIONS = [
    {},
    {"package_index": "https://artifactory.example.com/api/pypi/pypi/simple"},
    {
        "pvc": True,
        "pvc_access_mode": "ReadWriteMany",
        "custom_url": "orders.example.org",
        "pod_anti_affinity": "required",
    },
]


def bandit(*args, cwd):
    return subprocess.run([str(BANDIT), "-q", *args], cwd=cwd, capture_output=True, text=True)


@pytest.mark.slow
def test_the_generated_code_passes_bandit(default_project):
    # The command of the generated Makefile's `scan` target, plus the gunicorn settings.
    result = bandit(
        "-r", "source/api", "source/gunicorn.conf.py", "source/settings.py", "source/jsonlog.py", cwd=default_project
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.slow
def test_the_templates_own_code_passes_bandit():
    # Hooks run on every user's machine; tasks.py and tools/ on developers' and CI's.
    result = bandit("-c", "pyproject.toml", "-r", "hooks", "tasks.py", "tools", "benchmarks", cwd=REPO)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("answers", COMBINATIONS[:2], ids=combination_id)
@pytest.mark.slow
def test_the_dockerfile_passes_checkov(bake, answers):
    result = run_checkov(bake(**answers) / "Dockerfile", framework="dockerfile")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
@pytest.mark.slow
def test_no_generated_file_holds_a_secret(bake, answers):
    result = run_checkov(bake(**answers), framework="secrets")
    assert result.returncode == 0, result.stdout + result.stderr


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
