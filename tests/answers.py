"""Answers the test modules share: how the fast tier bakes, and how a combination is named."""

from tools.project import DEFAULTS

# The fast tier never locks: the real lock has its own tests (test_lock.py).
NO_LOCK = {"lock_dependencies": False}
# The Pythons the lock tests lock for (the default answer, and 3.11 for the pipenv the
# platform's documentation shows), which the template's own CI (.github/workflows/ci.yml, azure-pipelines.yml) provides.
LOCK_PYTHONS = (DEFAULTS["python_version"], "3.11")


def combination_id(answers):
    """Readable test id for a combination of answers: key:value joined by '-'."""
    return "-".join(f"{key}:{value}" for key, value in answers.items()) or "defaults"
