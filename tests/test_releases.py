"""Day 100: a project its team has worked on takes a template release with `make update`. Every
file the template owns takes the release, every file of the team's stays as the team left it,
and the served app has the release."""

import http.client
import json
import subprocess
import time

import pytest
from owners import TEAM_PATHS, covers
from releases import (
    DOCKERFILE_LINE,
    MARK,
    PIPFILE_PACKAGE,
    README_PARAGRAPH,
    RELEASE_HEADER,
    committed_project,
    git,
    make_template_repo,
    make_update,
    release_touching_every_template_file,
    teams_week,
)

from tools.net import free_port

pytestmark = pytest.mark.slow

# The template's copies of the team's files: a release that changes them must not reach a project.
TEAMS_FILES_IN_THE_TEMPLATE = ("README.md", "source/api/__init__.py", "source/tests/conftest.py")


class Served:
    """The project's app under real gunicorn on 127.0.0.1, in the given virtualenv."""

    def __init__(self, project, venv):
        self.port = free_port()
        command = [str(venv / "bin" / "python"), "-m", "gunicorn", "-b", f"127.0.0.1:{self.port}", "-w", "1"]
        self.process = subprocess.Popen(command, cwd=project / "source", stdout=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                self.get("/livez")
                return
            except OSError:
                assert self.process.poll() is None, "gunicorn stopped"
                time.sleep(0.1)
        raise AssertionError("gunicorn did not answer within 30 s")

    def get(self, path):
        """(status, headers, body) of a GET."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            connection.request("GET", path)
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read().decode()
        finally:
            connection.close()

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def served(project_venv):
    servers = []

    def serve(project):
        servers.append(Served(project, project_venv))
        return servers[-1]

    yield serve
    for server in servers:
        server.stop()


@pytest.fixture
def worked_on(tmp_path):
    """(template repository, project): a project made from the template, committed, after the
    team's first week (tests/releases.py, teams_week)."""
    template = make_template_repo(tmp_path / "template")
    project = committed_project(template, tmp_path)
    teams_week(project)
    return template, project


def files_of(project, *paths):
    return {path: (project / path).read_bytes() for path in paths}


def test_a_release_that_changes_every_template_file_merges_without_conflict(worked_on, project_venv, served):
    template, project = worked_on
    teams = [path for path in git(project, "ls-files").split() if any(covers(row, path) for row in TEAM_PATHS)]
    assert "chart/values-prod.yaml" in teams and "source/api/orders.py" in teams
    before = files_of(project, *teams)
    marked = release_touching_every_template_file(template, also=TEAMS_FILES_IN_THE_TEMPLATE)

    updated = make_update(project)
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "conflict" not in (updated.stdout + updated.stderr).lower()
    assert git(project, "ls-files", "--others", "--", "*.rej") == ""
    markers = subprocess.run(["git", "grep", "-l", "-E", "^(<<<<<<<|>>>>>>>)( |$)"], cwd=project, capture_output=True)
    assert markers.stdout == b""

    # Every file of the template's took the release; none of the team's changed.
    missing = [path for path in marked if (project / path).exists() and MARK not in (project / path).read_text()]
    assert missing == []
    assert [path for path in marked if not (project / path).exists()] == []
    assert files_of(project, *teams) == before
    assert not (project / "source/api/greetings.py").exists()  # the team deleted the example
    # The files both own lines of keep the team's lines beside the release's.
    assert DOCKERFILE_LINE in (project / "Dockerfile").read_text()
    assert PIPFILE_PACKAGE in (project / "source/Pipfile").read_text()
    assert README_PARAGRAPH in (project / "README.md").read_text()

    tested = subprocess.run(
        [str(project_venv / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert tested.returncode == 0, tested.stdout + tested.stderr
    server = served(project)
    status, headers, body = server.get("/api/v1/orders")
    assert (status, json.loads(body)) == (200, {"orders": []})
    assert headers.get(RELEASE_HEADER[0]) == RELEASE_HEADER[1]
    assert server.get("/api/v1/hello")[0] == 404
