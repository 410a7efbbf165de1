"""Day 100, part 3: every decision of the team has a home of its own. Each customisation the
generated manual documents is made in the file the manual names, all of them in one project of
several hostspaces: `make check` stays green, each hostspace's render shows them, and a release
that changes every file of the template's merges without a conflict and leaves each of them as
it was."""

import json

import pytest
import yaml
from owners import TEAM_PATHS, covers
from releases import (
    MARK,
    committed_project,
    git,
    make_plain,
    make_template_repo,
    release_touching_every_template_file,
)

from tools.cache import run
from tools.helm import helm_binaries
from tools.project import DEFAULTS

HOSTSPACES = [name.strip() for name in DEFAULTS["hostspaces"].split(",")]
PRODUCTION = HOSTSPACES[-1]

# docs/kubernetes.md: the values every hostspace shares go into chart/values.yaml.
SHARED_VALUES = """
networkPolicy:
  enabled: true
  from:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: ambassador
persistence:
  enabled: true
env:
  ORDERS_PAGE_SIZE: "50"
envFrom:
  - secretRef:
      name: orders-credentials
extraVolumes:
  - name: certificates
    secret:
      secretName: orders-client-cert
extraVolumeMounts:
  - name: certificates
    mountPath: /etc/orders/certificates
    readOnly: true
podAnnotations:
  team.example.com/owner: orders
"""
# docs/kubernetes.md, "Variables from Secrets": production's database, in its own values file.
PRODUCTION_VALUES = """
env:
  DATABASE_URL:
    valueFrom:
      secretKeyRef:
        name: orders-database
        key: url
"""
# docs/local-development.md, "Your own targets, settings and system packages".
TEAM_TARGET = "\nhello:  ## say hello from the team's own target\n\t@echo hello from team.mk\n"
TEAM_RUFF = '\n[lint]\nextend-select = ["PIE"]\n'
TEAM_MARKER = """

def pytest_configure(config):
    config.addinivalue_line("markers", "orders: the team's own marker")
"""
MARKED_TEST = """import pytest


@pytest.mark.orders
def test_the_teams_marker_is_known(client):
    assert client.get("/livez").status_code == 200
"""
SYSTEM_PACKAGE = "tzdata\n"


def append(path, text):
    path.write_text(path.read_text() + text)


def customise(project):
    """Every customisation the manual documents, each in the place it names."""
    append(project / "chart" / "values.yaml", SHARED_VALUES)
    append(project / "chart" / f"values-{PRODUCTION}.yaml", PRODUCTION_VALUES)
    append(project / "team.mk", TEAM_TARGET)
    append(project / "ruff.toml", TEAM_RUFF)
    append(project / "source" / "tests" / "conftest.py", TEAM_MARKER)
    (project / "source" / "tests" / "test_orders_marker.py").write_text(MARKED_TEST)
    append(project / "system-packages.txt", SYSTEM_PACKAGE)


def rendered(project, hostspace):
    """{kind: [objects]} of the chart as the pipeline deploys it to `hostspace`."""
    chart = project / "chart"
    done = run(
        [helm_binaries()["3.17"], "template", "orders", chart]
        + ["-f", chart / "values.yaml", "-f", chart / f"values-{hostspace}.yaml"]
    )
    objects = {}
    for document in yaml.safe_load_all(done.stdout):
        if document:
            objects.setdefault(document["kind"], []).append(document)
    return objects


def container(objects):
    [deployment] = objects["Deployment"]
    return deployment["spec"]["template"]["spec"]["containers"][0], deployment["spec"]["template"]["metadata"]


def assert_every_hostspace_shows_them(project):
    for hostspace in HOSTSPACES:
        objects = rendered(project, hostspace)
        app, pod = container(objects)
        env = {variable["name"]: variable for variable in app["env"]}
        assert "NetworkPolicy" in objects and "PersistentVolumeClaim" in objects, hostspace
        assert env["ORDERS_PAGE_SIZE"]["value"] == "50", hostspace
        assert {"secretRef": {"name": "orders-credentials"}} in app["envFrom"], hostspace
        assert {"name": "certificates", "mountPath": "/etc/orders/certificates", "readOnly": True} in app[
            "volumeMounts"
        ]
        assert pod["annotations"]["team.example.com/owner"] == "orders"
        database = env.get("DATABASE_URL", {}).get("valueFrom")
        assert (database == {"secretKeyRef": {"name": "orders-database", "key": "url"}}) == (hostspace == PRODUCTION)


@pytest.mark.xdist_group("default-lock")  # the installed project, made once per worker
def test_every_customisation_keeps_make_check_green_and_reaches_every_hostspace(installed_copy, helm_unittest):
    project, environment = installed_copy
    customise(project)

    checked = run(["make", "check"], cwd=project, env=environment, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "test_orders_marker.py ." in checked.stdout
    assert checked.stdout.splitlines()[-1] == "make check: every gate passed"
    assert_every_hostspace_shows_them(project)

    helped = run(["make", "help"], cwd=project, env=environment)
    assert "  hello              say hello from the team's own target" in helped.stdout
    assert run(["make", "hello"], cwd=project, env=environment).stdout == "hello from team.mk\n"
    # ruff reads the team's rules: a PIE defect fails the gate.
    append(project / "source" / "api" / "greetings.py", "\n\ndef planted():\n    pass\n    pass\n")
    linted = run(["make", "python-lint"], cwd=project, env=environment, check=False)
    assert linted.returncode != 0 and "PIE790" in linted.stdout, linted.stdout + linted.stderr


def test_a_release_that_changes_every_template_file_leaves_every_customisation(tmp_path):
    template = make_template_repo(tmp_path / "template")
    project = committed_project(template, tmp_path, app_name="orders")
    customise(project)
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the team's customisations")
    skipped = make_plain(project, "reconfigure", env={"ANSWERS": "skip_hostspaces=stage app_version=4.7.2"})
    assert skipped.returncode == 0, skipped.stdout + skipped.stderr
    git(project, "commit", "-q", "-am", "stage skipped for now, pipeline 4.7.2")
    teams = [path for path in git(project, "ls-files").split() if any(covers(row, path) for row in TEAM_PATHS)]
    before = {path: (project / path).read_bytes() for path in teams}

    marked = release_touching_every_template_file(template)
    updated = make_plain(project, "update")
    assert updated.returncode == 0, updated.stdout + updated.stderr
    assert "conflict" not in updated.stdout + updated.stderr
    assert [path for path in marked if (project / path).exists() and MARK not in (project / path).read_text()] == []
    assert {path: (project / path).read_bytes() for path in teams} == before
    parameters = yaml.safe_load((project / "azure-pipelines.yaml").read_text())["extends"]["parameters"]
    assert {entry["name"]: entry["skip"] for entry in parameters["hostspaces"]} == {
        "dev": "false",
        "stage": "true",
        "prod": "false",
    }
    assert parameters["appVersion"] == "4.7.2"
    answers = json.loads((project / ".cruft.json").read_text())["context"]["cookiecutter"]
    assert (answers["skip_hostspaces"], answers["app_version"]) == ("stage", "4.7.2")
    assert_every_hostspace_shows_them(project)
