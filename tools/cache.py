"""How the suite's tools run a program, and keep what they build in the cache, built once."""

import fcntl
import os
import shlex
import shutil
import subprocess
from contextlib import contextmanager
from pathlib import Path


class ToolFailed(RuntimeError):
    """A program failed or outlived its time; the message names it and ends with its output."""


def run(args, *, check=True, timeout=900, **options):
    """Run the program ``args`` (a list, never through a shell), its output captured as text,
    and return the CompletedProcess. Raises ToolFailed, naming the command and the tail of
    its output, when it outlives ``timeout`` s, or exits non-zero while ``check``."""
    args = [str(arg) for arg in args]
    try:
        done = subprocess.run(args, **{"capture_output": True, "text": True, "timeout": timeout, **options})
    except subprocess.TimeoutExpired as expired:
        raise ToolFailed(_failure(args, f"did not finish in {timeout} s", expired.stdout, expired.stderr)) from None
    if check and done.returncode:
        raise ToolFailed(_failure(args, f"exited with {done.returncode}", done.stdout, done.stderr))
    return done


def _failure(args, what, *outputs, lines=40):
    texts = [o.decode(errors="replace") if isinstance(o, bytes) else o for o in outputs if o]
    tail = "\n".join(line for text in texts for line in text.strip().splitlines())
    return f"`{shlex.join(args)}` {what}:\n" + "\n".join(tail.splitlines()[-lines:])


def cache_dir(*parts):
    """``${XDG_CACHE_HOME:-~/.cache}/flask-appstack/<parts>``, created."""
    root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    path = root.joinpath("flask-appstack", *parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextmanager
def file_lock(path):
    """Hold an exclusive lock on ``path`` (created) for the block: pytest-xdist workers
    and parallel sessions take turns."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def built_once(path, build):
    """``path`` in the cache, made by ``build(path)`` once, whichever process gets the lock
    beside it first (the others wait, then find it finished). A finished folder holds the mark
    ``.complete``, written after ``build`` returns; a file is finished once it exists (``build``
    writes it whole, then renames it into place). Whatever an interrupted build left at ``path``
    is removed before building again."""
    path = Path(path)
    with file_lock(path.with_name(path.name + ".lock")):
        if (path / ".complete").is_file() or path.is_file():
            return path
        if path.is_dir():
            shutil.rmtree(path)
        build(path)
        if path.is_dir():
            (path / ".complete").touch()
    return path
