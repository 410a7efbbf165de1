"""Cached virtual environments for the test suite, shared by pytest-xdist workers.

A venv is keyed by its interpreter and requirements; it is built once under
${XDG_CACHE_HOME:-~/.cache}/flask-appstack/venvs and reused while they do not change.
"""

import hashlib
import shutil
import subprocess
import sys

from .cache import cache_dir, file_lock


def cached_venv(requirements, python=sys.executable):
    """Return the path of a venv made with ``python`` holding ``requirements``."""
    requirements = sorted(requirements)
    key = hashlib.sha256("\n".join([str(python), *requirements]).encode()).hexdigest()[:16]
    root = cache_dir("venvs")
    venv = root / key
    with file_lock(root / f"{key}.lock"):
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([str(python), "-m", "venv", str(venv)], check=True)
            subprocess.run(
                [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", *requirements],
                check=True,
            )
            (venv / ".complete").write_text("\n".join(requirements) + "\n")
    return venv
