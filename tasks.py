#!/usr/bin/env python3
"""flask-appstack's single entry point: `python3 tasks.py generate|test|bench [args]`.

Standard library only, so it runs on a fresh machine with nothing but Python >= 3.9.
Each command first makes `.venv` with the pinned tools of requirements/dev.txt (once;
again only when that file changes), then runs:

  generate [cookiecutter args]  cookiecutter on this template (e.g. --no-input -o ~/src)
  test [pytest args]            the template's whole test suite, in parallel
  bench [args]                  the benchmarks (benchmarks/run.py)
"""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
REQUIREMENTS = HERE / "requirements" / "dev.txt"


def _venv_python():
    return VENV / "bin" / "python"


def _make_venv():
    """Create .venv; on Debian without python3-venv, install it first (as root)."""
    try:
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
    except subprocess.CalledProcessError:
        shutil.rmtree(VENV, ignore_errors=True)
        if os.geteuid() != 0 or not shutil.which("apt-get"):
            sys.exit("tasks.py: Python's venv module is missing: install python3-venv and try again.")
        venv_package = f"python3.{sys.version_info.minor}-venv"
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", venv_package], check=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)


def ensure_venv():
    """Install the pinned tools into .venv unless they are already there."""
    digest = hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()
    stamp = VENV / ".requirements.sha256"
    if stamp.exists() and stamp.read_text() == digest and _venv_python().exists():
        return
    _make_venv()
    pip = [str(_venv_python()), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    subprocess.run([*pip, "-r", str(REQUIREMENTS)], check=True)
    stamp.write_text(digest)


def main(argv):
    commands = {
        "generate": ["-m", "cookiecutter", str(HERE)],
        "test": ["-m", "pytest", "-n", os.environ.get("APPSTACK_TEST_WORKERS", "auto"), "--dist", "loadgroup"],
        "bench": [str(HERE / "benchmarks" / "run.py")],
    }
    if not argv or argv[0] not in commands:
        sys.exit(__doc__)
    ensure_venv()
    env = dict(os.environ, PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    args = [str(_venv_python()), *commands[argv[0]], *argv[1:]]
    return subprocess.run(args, cwd=HERE if argv[0] != "generate" else None, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
