"""Where the test tooling keeps what it installs, and how concurrent installers take turns."""

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path


def cache_dir(*parts):
    """``${XDG_CACHE_HOME:-~/.cache}/flask-appstack/<parts>``, created."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = root.joinpath("flask-appstack", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def file_lock(path):
    """Hold an exclusive lock on ``path`` (created) for the block: pytest-xdist workers
    and parallel sessions install each thing once."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
