"""The hash-pinned requirements of each pipenv the template pins: templates/pipenv/<version>.txt.

A generated project's scripts/pipenv-requirements.txt is the file of its pipenv_version (or
templates/pipenv/unknown.txt, which says that none is pinned): scripts/lock.py and the image
build install pipenv only from it, with pip's --require-hashes and wheels only, since both
install it where the token is (in the environment, or in the index URL). Every dependency is
pinned with the hashes of its files, for every Python the pipenv runs on (uv's universal
resolution, with markers), so pip resolves nothing of its own.

    python3 -m tools.pipenv_pins 2026.10.3     write templates/pipenv/2026.10.3.txt anew

To pin a new pipenv, run it and test (tests/unit/test_lock_program.py checks every file): the
folder's files are the only list of pinned releases, which the pre-generation hook accepts and
unknown.txt names (the template's Jinja extension reads them). What stays trusted: the index the
files were made from, at the moment they were made (the hashes are its files' hashes then), and
the pip of the Python that installs them.
"""

import re
import sys
import tempfile
from pathlib import Path

from .cache import run
from .project import PIPENV_PINS as PINS
from .validators import uv


def lowest_python(version):
    """The oldest Python the pins cover: pipenv's Requires-Python is >= 3.10 from 2025 on;
    scripts/lock.py itself needs 3.9."""
    return "3.10" if int(version.split(".")[0]) >= 2025 else "3.9"


def pipenv_requirements(version):
    """pipenv and what it needs beside it: pipenv releases of 2022 break with virtualenv
    newer than 20.16.2 (seen with 2022.7.24 on Python 3.11), and import pkg_resources, which
    setuptools 82 no longer has."""
    requirements = [f"pipenv=={version}"]
    if int(version.split(".")[0]) < 2023:
        requirements += ["virtualenv==20.16.2", "setuptools<82"]
    return requirements


def header(version):
    requirements = " ".join(pipenv_requirements(version))
    return (
        f"# pipenv {version} and every package it needs, pinned with the hashes of their files, for Python\n"
        f"# {lowest_python(version)} and newer: scripts/lock.py and the Dockerfile install pipenv only from this file\n"
        "# (pip install --require-hashes --only-binary=:all: -r), since both install it where the token is.\n"
        f"# The template's file, made from `{requirements}` with\n"
        "# `uv pip compile --universal --generate-hashes --only-binary :all:`; a template release brings it.\n"
    )


def compile_pins(version):
    """The file's text for pipenv `version`, resolved now from the default index."""
    with tempfile.TemporaryDirectory() as folder:
        wanted = Path(folder) / "requirements.in"
        wanted.write_text("\n".join(pipenv_requirements(version)) + "\n")
        argv = [
            uv(),
            "pip",
            "compile",
            "--quiet",
            "--universal",
            "--generate-hashes",
            "--no-header",
            "--annotation-style",
            "line",
        ]
        argv += ["--only-binary", ":all:", "--python-version", lowest_python(version), wanted]
        out = run(argv, capture_output=True, text=True).stdout
    return header(version) + re.sub(r"-r \S+requirements\.in", "the header", out)


def main(argv):
    for version in argv:
        (PINS / f"{version}.txt").write_text(compile_pins(version))
        print(PINS / f"{version}.txt")


if __name__ == "__main__":
    main(sys.argv[1:])
