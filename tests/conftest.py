"""Fixtures only: one bake per combination of answers, shared by every test that needs it;
the chart of each combination rendered once by each helm; the locked and installed default
project; CI's rule that nothing skips; the measurements summary. What test modules share
besides fixtures is in tests/answers.py, tests/chart_matrix.py and tools/ (which the
benchmarks use too)."""

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from answers import COMBINATIONS, NO_LOCK, combination_id
from chart_matrix import Chart

from tools.helm import MissingTool, helm_binaries, helm_unittest_plugin
from tools.kube import ApiServer, kube_binaries
from tools.net import free_port
from tools.project import DEFAULTS, pipfile_requirements
from tools.venvs import cached_venv


def pytest_configure(config):
    # The tests run the projects they share (the bakes) with Python, gunicorn and pytest: no
    # __pycache__ may appear in them for the next test to find. The image sets the same.
    os.environ["PYTHONDONTWRITEBYTECODE"] = "1"


def without_helm(path):
    """PATH without its folders that hold a helm: the post-generation hook lints the chart with
    the helm on PATH (integration/test_generate.py tests that), which the shared bakes and the
    unit tier must not run, even where CI has put a helm on PATH."""
    return os.pathsep.join(folder for folder in path.split(os.pathsep) if not shutil.which("helm", path=folder))


@pytest.fixture(autouse=True)
def _no_helm_in_the_unit_tier(request, monkeypatch):
    if UNIT_TIER in Path(request.node.path).parents:
        monkeypatch.setenv("PATH", without_helm(os.environ.get("PATH", "")))


@pytest.fixture(scope="session")
def bake(cookies_session):
    """bake(**answers) -> Path of the generated project; each combination is baked once."""
    baked = {}

    def _bake(**answers):
        context = {**NO_LOCK, **answers}
        key = json.dumps(context, sort_keys=True)
        if key not in baked:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("PATH", without_helm(os.environ.get("PATH", "")))
                result = cookies_session.bake(extra_context=context)
            assert result.exit_code == 0, f"bake failed for {context}: {result.exception}"
            baked[key] = Path(result.project_path)
        return baked[key]

    return _bake


@pytest.fixture(scope="session")
def default_project(bake):
    return bake()


@pytest.fixture(scope="session")
def locked(bake):
    """(project, answers): the default project, locked by the post-generation hook. Tests that
    use it share the xdist group "default-lock", so that one worker locks it once."""
    answers = {"lock_dependencies": True}
    return bake(**answers), {**DEFAULTS, **answers}


@pytest.fixture(scope="session")
def make_environment():
    """make_environment(answers, exporting_indexes=False, **changes) -> the environment of
    `make` in a project baked with these answers: helm 3 on PATH, the suite's helm-unittest
    plugin on HELM_PLUGINS where it has one (the tests of `make check` ask for the
    `helm_unittest` fixture too, which skips without it); scripts/lock.py finds the project's
    Python and its pipenv itself. With exporting_indexes, pip index settings exported, as
    company laptops do, at an index nobody listens on (used, they would fail the install and
    the lock)."""

    def environment(answers, exporting_indexes=False, **changes):
        path = os.pathsep.join([str(helm_binaries()["3.17"].parent), os.environ["PATH"]])
        nowhere = f"http://127.0.0.1:{free_port()}/simple"
        indexes = {"PIP_INDEX_URL": nowhere, "PIP_EXTRA_INDEX_URL": nowhere} if exporting_indexes else {}
        try:
            plugins = {"HELM_PLUGINS": helm_unittest_plugin().plugins}
        except MissingTool:
            plugins = {}
        return {**os.environ, "PATH": path, **plugins, **indexes, **changes}

    return environment


@pytest.fixture(scope="session")
def installed(locked, make_environment, tmp_path_factory):
    """(project, environment): a copy of the locked default project after `make install` (its
    packages in source/.venv), in a shell that exports pip index settings, and `make tools`
    (its linters in .tools/). Tests that change it take `installed_copy`."""
    project, answers = locked
    copy = tmp_path_factory.mktemp("installed") / project.name
    shutil.copytree(project, copy)
    environment = make_environment(answers)
    for target, env in (("install", make_environment(answers, exporting_indexes=True)), ("tools", environment)):
        result = subprocess.run(["make", target], cwd=copy, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"make {target}: {result.stdout}{result.stderr}"
    return copy, environment


@pytest.fixture
def installed_copy(installed, tmp_path):
    """(project, environment): a copy of the installed project for one test to change. Its
    packages (source/.venv) and linters (.tools) are links to the installed project's, which no
    test changes: copying their thousands of files would cost each test seconds."""
    project, environment = installed
    copy = tmp_path / project.name
    shared = {project / "source" / ".venv", project / ".tools"}
    shutil.copytree(
        project,
        copy,
        symlinks=True,
        ignore=lambda folder, names: [name for name in names if Path(folder) / name in shared],
    )
    for folder in shared:
        (copy / folder.relative_to(project)).symlink_to(folder, target_is_directory=True)
    return copy, environment


@pytest.fixture(scope="session")
def project_venv(default_project):
    """A cached venv with the default project's Pipfile packages (dev included)."""
    return cached_venv(pipfile_requirements(default_project))


# The unit tier (tests/unit) runs no real tool: none of its tests may ask for a fixture that
# brings one. Asking is refused when the suite is collected, naming the test and the fixture.
REAL_TOOL_FIXTURES = {
    "helms", "helm_unittest", "charts", "chart", "default_chart", "api_server", "kube",
    "locked", "installed", "installed_copy", "make_environment", "project_venv",
}  # fmt: skip
UNIT_TIER = Path(__file__).parent / "unit"


def pytest_collection_modifyitems(items):
    wrong = [
        f"{item.nodeid} uses {', '.join(sorted(REAL_TOOL_FIXTURES & set(item.fixturenames)))}"
        for item in items
        if UNIT_TIER in Path(item.path).parents and REAL_TOOL_FIXTURES & set(getattr(item, "fixturenames", ()))
    ]
    if wrong:
        raise pytest.UsageError("tests/unit runs no real tool; move these to tests/integration:\n" + "\n".join(wrong))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """In CI (CI=true) a skipped test is a failure: every tool must be there."""
    report = yield
    if report.skipped and os.environ.get("CI") == "true" and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every check must run: {reason}"
    return report


# ---- measurements: what a test measured, printed at the end of the run -------------------------
# A test calls record_property("measurement", "image size: 183 MB"); the line is printed in the
# terminal summary, also under pytest-xdist (user_properties travel with the reports).
MEASUREMENTS = []


def pytest_runtest_logreport(report):
    if report.when == "call":
        MEASUREMENTS.extend(value for name, value in report.user_properties if name == "measurement")


def pytest_terminal_summary(terminalreporter):
    if MEASUREMENTS:
        terminalreporter.section("measurements")
        for line in MEASUREMENTS:
            terminalreporter.write_line(line)


# ---- the chart: real helm 3.17 and 4 ------------------------------------------------------------


@pytest.fixture(scope="session")
def helms(tmp_path_factory):
    """{"3.17": path, "4": path} and an environment that keeps helm off any real cluster."""
    home = tmp_path_factory.mktemp("helm-home")
    env = dict(
        os.environ,
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_DATA_HOME=str(home / "data"),
        KUBECONFIG=str(home / "no-kubeconfig"),
    )
    return {label: str(path) for label, path in helm_binaries().items()}, env


@pytest.fixture(scope="session")
def helm_unittest():
    """The helm-unittest plugin (tools/helm.py): the installed one, else the suite's own build of
    the pinned release. Without either (no Go to build it), the tests that run it skip, saying
    how to get either, and CI (CI=true) counts that as a failure."""
    try:
        return helm_unittest_plugin()
    except MissingTool as missing:
        pytest.skip(str(missing))


# The tests that use the API server share this xdist group, so that one worker starts it.
API_SERVER_GROUP = "api-server"
_api_servers = {}  # the running ApiServer of this worker, while its group's tests run


@pytest.fixture(scope="session")
def kube(tmp_path_factory):
    """(the API server's binaries, a folder for its servers): tools/kube.py's, else a skip that
    says how to get them (CI, CI=true, counts it as a failure)."""
    try:
        return kube_binaries(), tmp_path_factory.mktemp("api-server")
    except MissingTool as missing:
        pytest.skip(str(missing))


@pytest.fixture
def api_server(kube):
    """A real Kubernetes API server (tools/kube.py: kube-apiserver and etcd on 127.0.0.1) with the
    CRDs of the chart's Ambassador and Prometheus objects. Started by the first test that asks for
    it and stopped after the last test of its xdist group that runs in a row (so it does not idle
    through the rest of the run); a later one starts it again."""
    if "server" not in _api_servers:
        binaries, folder = kube
        server = ApiServer(folder / str(len(list(folder.iterdir()))), binaries).start()
        try:
            server.install_crds()
        except BaseException:
            server.stop()
            raise
        _api_servers["server"] = server
    return _api_servers["server"]


def in_the_api_server_group(item):
    """Whether xdist schedules `item` with the API server's group: that group's mark, and no other."""
    names = {mark.kwargs.get("name", *mark.args[:1]) for mark in item.iter_markers("xdist_group")} if item else set()
    return names == {API_SERVER_GROUP}


@pytest.hookimpl(trylast=True)  # after pytest's own teardown: the test's fixtures may still use the server
def pytest_runtest_teardown(item, nextitem):
    if "server" in _api_servers and not in_the_api_server_group(nextitem):
        _api_servers.pop("server").stop()


def pytest_sessionfinish(session):
    if "server" in _api_servers:  # a run stopped early
        _api_servers.pop("server").stop()


@pytest.fixture(scope="session")
def charts(bake, helms):
    """charts(answers) -> the Chart of that combination, baked and rendered once per worker."""
    made = {}

    def _chart(answers):
        key = json.dumps(answers, sort_keys=True)
        if key not in made:
            made[key] = Chart(bake(**answers), answers, helms)
        return made[key]

    return _chart


@pytest.fixture(scope="module", params=COMBINATIONS, ids=combination_id)
def chart(request, charts):
    """Each of the COMBINATIONS in turn."""
    return charts(request.param)


@pytest.fixture(scope="module")
def default_chart(charts):
    return charts({})
