"""Cached virtual environments for the test suite, shared by pytest-xdist workers.

A venv is keyed by its interpreter and requirements; it is built once under
${XDG_CACHE_HOME:-~/.cache}/flask-appstack/venvs and reused while they do not change.
"""

import hashlib
import sys

from .cache import built_once, cache_dir, run


def cached_venv(requirements, python=sys.executable):
    """Return the path of a venv made with ``python`` holding ``requirements``."""
    requirements = sorted(requirements)
    key = hashlib.sha256("\n".join([str(python), *requirements]).encode()).hexdigest()[:16]

    def build(venv):
        run([python, "-m", "venv", venv])
        run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", *requirements])

    return built_once(cache_dir("venvs") / key, build)
