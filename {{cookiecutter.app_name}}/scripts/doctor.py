"""What this project's make targets need on this machine, found or missing: `make doctor`.

Each tool the targets run, with what it serves; each missing one with the one command that
installs it here (Debian, Ubuntu or macOS, as /etc/os-release or the platform says), checked
against what those systems ship. Exit status 1 when something is missing. `make check` asks it
which of its gates cannot run (`unable GATE...`). Standard library only, Python 3.9 or newer.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lock  # noqa: E402  (scripts/lock.py: the project's Python, as make install finds it)

ROOT = Path(__file__).resolve().parents[1]
# The plugin's pinned install command, as the Makefile (which runs this program) exports it.
HELM_UNITTEST = (
    os.environ.get("HELM_UNITTEST_INSTALL") or "the helm-unittest plugin: see docs/kubernetes.md, Testing the chart"
)
# The Python each release ships as pythonX.Y (with its pythonX.Y-venv package).
SHIPPED_PYTHON = {
    ("debian", "12"): "3.11",
    ("debian", "13"): "3.13",
    ("ubuntu", "22.04"): "3.10",
    ("ubuntu", "24.04"): "3.12",
    ("ubuntu", "25.04"): "3.13",
    ("ubuntu", "25.10"): "3.13",
}


def this_system():
    """("debian" | "ubuntu" | "macos" | other, its version)."""
    if platform.system() == "Darwin":
        return "macos", platform.mac_ver()[0]
    try:
        text = Path("/etc/os-release").read_text()
    except OSError:
        return "", ""
    fields = dict(re.findall(r'^(\w+)="?([^"\n]*)"?$', text, re.MULTILINE))
    return fields.get("ID", ""), fields.get("VERSION_ID", "")


def install_python(version, system):
    name, release = system
    if name == "macos":
        return f"brew install python@{version}"
    if SHIPPED_PYTHON.get(system) == version:
        return f"sudo apt-get install python{version}-venv"
    if name == "ubuntu":
        return f"sudo add-apt-repository ppa:deadsnakes/ppa && sudo apt-get install python{version}-venv"
    return f"pyenv install {version} (pyenv: https://github.com/pyenv/pyenv#installation)"


# How to install each tool: {system name: command}, "" for any system.
INSTALL = {
    "git": {"macos": "xcode-select --install", "": "sudo apt-get install git"},
    "linters": {"": "make tools"},
    "helm": {
        "macos": "brew install helm",
        "ubuntu": "sudo snap install helm --classic",
        "": "curl -fsSL https://raw.githubusercontent.com/helm/helm/main/scripts/get-helm-3 | bash",
    },
    "helm-unittest": {"": f"{HELM_UNITTEST} (with helm 4, add --verify=false)"},
    "docker": {
        "macos": "brew install --cask docker",
        "ubuntu": "sudo apt-get install docker.io docker-buildx",
        "debian": "sudo apt-get install docker.io (Debian 12 has no buildx package: export DOCKER_BUILDKIT=1)",
        "": "https://docs.docker.com/engine/install/",
    },
    "kubectl": {
        "macos": "brew install kubectl",
        "ubuntu": "sudo snap install kubectl --classic",
        "": "https://kubernetes.io/docs/tasks/tools/install-kubectl-linux/",
    },
}


def how(tool, system):
    commands = INSTALL[tool]
    return commands.get(system[0]) or commands[""]


def program(name):
    """The program `name` on PATH (the Makefile puts .tools/bin first), or None."""
    return shutil.which(name)


def output(*args):
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def helm_unittest():
    return bool(program("helm")) and re.search(r"^unittest\s", output("helm", "plugin", "list") or "", re.M) is not None


def docker_builds():
    """docker that builds with BuildKit: the buildx plugin, or DOCKER_BUILDKIT with an older client."""
    return bool(program("docker")) and (
        output("docker", "buildx", "version") is not None or os.environ.get("DOCKER_BUILDKIT") == "1"
    )


# The linters `make tools` installs into .tools/, and the targets that run them.
LINTERS = {
    "ruff": "make python-lint, lint, check",
    "bandit": "make scan, check",
    "yamllint": "make yaml-lint, lint, check",
    "hadolint": "make docker-lint, lint, check",
}


def checks(system):
    """[(tool, what it serves, found, how to install it)]."""
    version = lock.project_python_version(ROOT)
    python = lock.find_python(version)
    return [
        ("git", "make update, reconfigure, outdated", bool(program("git")), how("git", system)),
        (
            f"Python {lock.minor_version(version)}",
            "make install, test, run (source/.venv); pipenv comes with scripts/lock.py",
            python is not None,
            install_python(lock.minor_version(version), system),
        ),
        *((name, LINTERS[name], bool(program(name)), how("linters", system)) for name in LINTERS),
        ("helm", "make helm-lint, helm-unittest, dry-run", bool(program("helm")), how("helm", system)),
        ("helm-unittest", "make helm-unittest (a helm plugin)", helm_unittest(), how("helm-unittest", system)),
        ("docker", "make build, docker-run, lock-in-container (with BuildKit)", docker_builds(), how("docker", system)),
        ("kubectl", "make dry-run", bool(program("kubectl")), how("kubectl", system)),
    ]


def doctor():
    system = this_system()
    found = checks(system)
    width = max(len(tool) for tool, *_ in found)
    for tool, serves, present, install in found:
        print(
            f"  {'ok' if present else 'MISSING':8} {tool:{width}}  {serves}"
            + ("" if present else f"\n{'':{width + 13}}{install}")
        )
    missing = [tool for tool, _, present, _ in found if not present]
    if missing:
        print(f"make doctor: {len(missing)} missing ({', '.join(missing)}): each line above says how to install it.")
        return 1
    print("make doctor: every tool the targets use is here.")
    return 0


# The tools each of make check's gates runs (by checks()'s names; "python": the project's Python).
GATE_NEEDS = {
    "python-lint": ["ruff"],
    "test": ["python"],
    "scan": ["bandit"],
    "yaml-lint": ["yamllint"],
    "helm-lint": ["helm"],
    "helm-unittest": ["helm", "helm-unittest"],
    "docker-lint": ["hadolint"],
}


def unable(gates):
    """Of make check's `gates`, those whose tools are missing here, a line each: `gate:tool,tool`."""
    found = {
        ("python" if tool.startswith("Python ") else tool): (tool, present)
        for tool, _, present, _ in checks(this_system())
    }
    for gate in gates:
        lacking = [found[tool][0].replace(" ", "") for tool in GATE_NEEDS.get(gate, []) if not found[tool][1]]
        if lacking:
            print(f"{gate}:{','.join(lacking)}")
    return 0


if __name__ == "__main__":
    arguments = sys.argv[1:]
    sys.exit(unable(arguments[1:]) if arguments[:1] == ["unable"] else doctor())
