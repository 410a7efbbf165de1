"""The team's test fixtures, and its pytest settings: pytest reads this file, so markers and
warning filters go into a `pytest_configure(config)` here, e.g.
`config.addinivalue_line("markers", "slow: a test that takes seconds")`. pyproject.toml's
[tool.pytest.ini_options] is the platform's (the test paths, the coverage gate);
PYTEST_ADDOPTS adds options to one run."""

import pytest

from api import create_app


@pytest.fixture
def app():
    return create_app({"TESTING": True})


@pytest.fixture
def client(app):
    return app.test_client()
