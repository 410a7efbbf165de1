"""The container image: the build, lock and run commands of the generated manual
(docs/local-development.md), for real.

The module uses the machine's docker engine as it is when one answers (a hosted CI runner:
a user in the `docker` group), with `python:3.11-slim` (or $APPSTACK_BASE_IMAGE) as the base
image. Where there is none and no registry (this project's own CI, as root), it starts an
engine of its own (Debian's docker.io, stopped again at the end) and makes its Python base
image from Debian packages, cached between runs (tools/container.py). Bookworm's Python is
3.11, hence python_version 3.11 in the bakes below.

Images are built with the command printed in the generated manual, with this test's values
(the user; BASE_IMAGE = the base image found above) and PYPI_TOKEN.txt holding a random dummy
token. Added to it is only what this machine needs: its pip settings and CA bundle
(pip_build_options; the package index is reached through a TLS-inspecting proxy), and
`--no-cache` (a cached layer would have been built with another token than the one the
leak checks look for).

The default project needs no credentials, so its token only proves that nothing copies it.
A second project points package_index at a private index that this module serves on
127.0.0.1 and that, like Artifactory, answers only to PYPI_USER and the token: there the
token really reaches pip, and still leaves no trace.
"""

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from answers import PRIVATE_INDEX, combination_id

from tools import container
from tools.container import pip_build_options
from tools.net import free_port, http_get
from tools.private_index import PrivateIndex, index_wheels
from tools.project import DEFAULTS, pipfile_requirements

pytestmark = pytest.mark.xdist_group("container")

PYTHON = "3.11"  # python:3.11-slim, and the Python of the Debian-made base image (bookworm)
APP = DEFAULTS["app_name"]
USER = "ci-user"
APP_UID = "10001"  # the Dockerfile's USER
# What the Dockerfile copies or reads: these, source/scale/*.py (not its tests) and source/api/*.py
BUILD_FILES = {
    "system-packages.txt",
    "scripts/pipenv-requirements.txt",
    "source/Pipfile",
    "source/Pipfile.lock",
    "source/gunicorn.conf.py",
}


# ---- helpers ----------------------------------------------------------------------------


def wait_for(probe, what, timeout=60):
    """probe() until it returns something true (OSError counts as not yet); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = probe()
        except OSError:
            result = None
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.3)


def manual_command(project, prefix):
    """The one-line command of the generated docs/local-development.md that starts with `prefix`."""
    page = (project / "docs" / "local-development.md").read_text()
    found = [line.strip() for line in page.splitlines() if line.strip().startswith(prefix)]
    assert len(found) == 1, f"docs/local-development.md should show one `{prefix} ...` command, found {found}"
    return found[0]


def build_argv(engine, project, base_image, *extra, tag=None):
    """The manual's build command with this test's values, `extra` options before the context."""
    argv = shlex.split(manual_command(project, "docker build"))
    assert argv[:2] == ["docker", "build"] and argv[-1] == "."
    assert "PYPI_USER=<SSO_USERNAME>" in argv and "id=PYPI_TOKEN,src=PYPI_TOKEN.txt" in argv
    values = {"PYPI_USER": USER, "BASE_IMAGE": base_image}
    argv = [f"{arg.split('=')[0]}={values[arg.split('=')[0]]}" if arg.split("=")[0] in values else arg for arg in argv]
    if tag:
        argv[argv.index("-t") + 1] = tag
    return [engine.client, *argv[1:-1], *extra, "."]


def docker_build(engine, project, argv):
    """Run a build in `project`: (CompletedProcess with the whole log in stdout, seconds)."""
    started = time.monotonic()
    result = subprocess.run(
        argv, cwd=project, env=engine.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    return result, time.monotonic() - started


def plain(log):
    """A BuildKit log as running text: step prefixes ("#10 4.599 ") gone, wrapped lines joined."""
    return " ".join(re.sub(r"^#\d+ \d+\.\d+ ", "", line).strip() for line in log.splitlines())


def copy_project(source, destination):
    return Path(shutil.copytree(source, destination))


def saved_image(engine, image, scratch):
    """All that `docker save` writes for `image` (config, history, every layer), as bytes."""
    engine.docker("save", "-o", str(scratch), image)
    try:
        return scratch.read_bytes()
    finally:
        scratch.unlink()


def docker_output(engine, *args):
    return engine.docker(*args, capture_output=True, text=True).stdout


def image_id(engine, image):
    return docker_output(engine, "image", "inspect", "-f", "{{.Id}}", image).strip()


def ca_bundle():
    """The CA bundle this machine's pip trusts, as pip_build_options passes it (or None)."""
    found = [option.split("src=", 1)[1] for option in pip_build_options() if option.startswith("id=ca_bundle,")]
    return found[0] if found else None


def assert_token_absent(token, *texts):
    for text in texts:
        assert (token.encode() if isinstance(text, bytes) else token) not in text


# ---- the engine, the base image and the happy-path build -----------------------------


@pytest.fixture(scope="module")
def engine():
    """The machine's docker engine as it is, else (root on Debian/Ubuntu) one started here
    and stopped at the end of the module (by PID)."""
    if container.system_engine_host() is None and (os.geteuid() != 0 or not shutil.which("apt-get")):
        # No engine, and none can be installed and started. (A skip fails the run in CI.)
        pytest.skip(
            f"no docker engine answers at {os.environ.get('DOCKER_HOST') or container.DEFAULT_HOST}, "
            "and only root on Debian/Ubuntu can start one: start docker, or run as root"
        )
    with container.engine() as running:
        yield running


@pytest.fixture(scope="module")
def base_image(engine):
    return container.base_image(PYTHON, engine)


@pytest.fixture(scope="module")
def built(engine, base_image, bake, tmp_path_factory):
    """The project baked with Python 3.11 and locked by the post-gen hook (a copy: the tests
    write into it), built with the manual's command."""
    baked = bake(python_version=PYTHON, lock_dependencies=True)
    assert (baked / "source" / "Pipfile.lock").is_file(), "the post-gen hook did not lock the project"
    project = copy_project(baked, tmp_path_factory.mktemp("container") / APP)
    token = secrets.token_urlsafe(24)
    (project / "PYPI_TOKEN.txt").write_text(token + "\n")
    argv = build_argv(engine, project, base_image, *pip_build_options(), *engine.network_args(), "--no-cache")
    result, seconds = docker_build(engine, project, argv)
    assert result.returncode == 0, result.stdout
    # By its ID from here on: another test session on this machine may reuse the tag.
    image = image_id(engine, f"{APP}:local")
    yield SimpleNamespace(project=project, image=image, token=token, log=result.stdout, seconds=seconds)
    engine.docker("rmi", image, check=False, capture_output=True)


def test_a_socket_file_nobody_answers_on_is_no_engine(tmp_path, monkeypatch):
    """A socket left behind by an engine that died is not used: the suite would otherwise
    neither start its own engine nor reach one."""
    import socket

    stale = tmp_path / "docker.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(stale))  # the file stays after close, with nobody listening
    assert stale.is_socket()
    monkeypatch.setenv("DOCKER_HOST", f"unix://{stale}")
    assert not container.answers(f"unix://{stale}")
    assert container.system_engine_host() != f"unix://{stale}"


# ---- the build context ----------------------------------------------------------------


def test_dockerignore_leaves_only_what_the_image_needs_in_the_context(engine, default_project, tmp_path):
    project = copy_project(default_project, tmp_path / APP)
    decoys = [
        "PYPI_TOKEN.txt",
        ".git/HEAD",
        ".env",
        "source/.venv/bin/python",
        "source/api/__pycache__/x.pyc",
        ".pytest_cache/README.md",
        "coverage.xml",
        "source/tests/__pycache__/y.pyc",
    ]
    for decoy in decoys:
        (project / decoy).parent.mkdir(parents=True, exist_ok=True)
        (project / decoy).write_text("decoy\n")
    (project / "source" / "Pipfile.lock").write_text("{}\n")  # the fast bake has none
    # A build whose only output is its context shows what `docker build` receives.
    subprocess.run(
        [engine.client, "build", "-q", "-f", "-", "-o", f"type=local,dest={tmp_path / 'context'}", "."],
        input="FROM scratch\nCOPY . /\n",
        cwd=project,
        env=engine.env,
        check=True,
        capture_output=True,
        text=True,
    )
    context = {
        path.relative_to(tmp_path / "context").as_posix()
        for path in (tmp_path / "context").rglob("*")
        if path.is_file()
    }
    code = {
        path.relative_to(project).as_posix()
        for package in ("api", "scale")
        for path in (project / "source" / package).glob("*.py")
    }
    assert (project / "source/scale/tests/conftest.py").is_file()  # in the project, not in the context
    assert code and context == BUILD_FILES | code


# ---- the manual's run command and the image's own ----------------------------------------


@pytest.fixture(scope="module")
def manual_run(engine, built):
    """The image run with the manual's command: the source mounted, gunicorn reloading."""
    port = free_port()
    argv = shlex.split(manual_command(built.project, f"docker run --rm --name {APP}"))
    assert argv[argv.index("-p") + 1] == "8080:8080" and argv[-2:] == ["--reload", "api:create_app()"]
    argv[argv.index("-p") + 1] = f"127.0.0.1:{port}:8080"  # this machine's loopback, a free port
    argv = [engine.client] + [arg.replace("$(pwd)", str(built.project)) for arg in argv[1:]]
    argv[argv.index(f"{APP}:local")] = built.image  # the image this session built
    # A name of this session's own: sessions on one machine share the engine, and one that
    # removed "flask-app" before its run would stop another's container under its tests.
    name = argv[argv.index("--name") + 1] = f"{APP}-{secrets.token_hex(4)}"
    server = subprocess.Popen(argv, env=engine.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    run = SimpleNamespace(server=server, url=f"http://127.0.0.1:{port}")
    try:
        wait_for(
            lambda: server.poll() is not None or http_get(f"{run.url}/livez")[0] == 200,
            "/livez of the manual's run command",
        )
        yield run
    finally:
        engine.docker("stop", name, check=False, capture_output=True)
        server.communicate(timeout=60)


def test_the_manuals_run_command_serves_livez(manual_run):
    assert manual_run.server.poll() is None, manual_run.server.stdout.read()
    assert http_get(f"{manual_run.url}/livez") == (200, '{"status":"ok"}\n')


def test_the_manuals_run_command_reloads_an_edited_module(manual_run, built):
    """The manual's promise: edit source/api/ and the app reloads, no rebuild, no restart."""
    greetings = built.project / "source" / "api" / "greetings.py"
    original = greetings.read_text()
    assert http_get(f"{manual_run.url}/api/v1/hello")[1] == '{"message":"Hello, world!"}\n'
    edited = original.replace('"world"', '"reloaded world"')
    written = []

    def reloaded():
        # gunicorn's reloader takes its first look at the files in a thread of its own once the
        # worker serves: an edit made before that look is the file it starts from. So the edit
        # is made again (a new modification time) every few seconds until the app shows it.
        if not written or time.monotonic() - written[-1] > 5:
            greetings.write_text(edited)
            written.append(time.monotonic())
        return "reloaded world" in http_get(f"{manual_run.url}/api/v1/hello")[1]

    try:
        wait_for(reloaded, "the reload of an edited module", timeout=60)
    finally:
        greetings.write_text(original)


@pytest.fixture(scope="module")
def serving(engine, built):
    """The image run with no command at all: gunicorn.conf.py serves the app."""
    port, name = free_port(), f"{APP}-no-command-{secrets.token_hex(4)}"  # this session's own, as above
    # A 1 s health interval instead of 30 s, so that the HEALTHCHECK's verdict comes quickly.
    engine.docker(
        "run",
        "-d",
        "--rm",
        "--name",
        name,
        "--health-interval",
        "1s",
        "-p",
        f"127.0.0.1:{port}:8080",
        built.image,
        capture_output=True,
    )
    try:
        yield SimpleNamespace(name=name, url=f"http://127.0.0.1:{port}")
    finally:
        engine.docker("stop", name, check=False, capture_output=True)


def test_image_serves_livez_without_a_command_and_logs_no_error(engine, serving):
    assert wait_for(lambda: http_get(f"{serving.url}/livez")[0], "/livez of the image's own command") == 200
    logs = engine.docker("logs", serving.name, capture_output=True, text=True)
    lines = [json.loads(line) for line in (logs.stdout + logs.stderr).splitlines()]
    assert any(line["message"].startswith("Booting worker") for line in lines)
    assert [line for line in lines if line["level"] not in ("DEBUG", "INFO")] == []


def test_image_reports_healthy(engine, serving):
    def verdict():
        status = docker_output(engine, "inspect", "-f", "{{.State.Health.Status}}", serving.name).strip()
        return status if status != "starting" else None

    assert wait_for(verdict, "the HEALTHCHECK's verdict") == "healthy"


def test_container_runs_as_the_numeric_non_root_user_with_only_tmp_writable(engine, serving):
    assert docker_output(engine, "exec", serving.name, "id", "-u").split() == [APP_UID]
    assert docker_output(engine, "exec", serving.name, "sh", "-c", 'echo "$HOME"').split() == ["/home/app"]
    # Everything this user may write on the image's filesystem (not /proc, /dev, /sys).
    writable = engine.docker(
        "exec",
        serving.name,
        "find",
        "/",
        "-xdev",
        "-writable",
        "-not",
        "-type",
        "l",
        "-prune",
        capture_output=True,
        text=True,
        check=False,
    ).stdout.split()
    assert writable == ["/tmp"]


def test_runtime_image_holds_the_locked_packages_and_no_pipenv_or_compiler(engine, built):
    probe = (
        "for tool in pipenv gcc cc c++ make; do command -v $tool; done; ls /opt; "
        'python3 -c \'import importlib.metadata as m; print(*sorted(d.metadata["Name"].lower() '
        "for d in m.distributions()))'"
    )
    output = docker_output(engine, "run", "--rm", built.image, "sh", "-c", probe).splitlines()
    locked = json.loads((built.project / "source" / "Pipfile.lock").read_text())["default"]
    # Names compared normalised (PEP 503): the lock says prometheus-client, its metadata prometheus_client.
    normalised = [re.sub(r"[-_.]+", "-", name) for name in output[1].split()]
    assert [output[0], " ".join(sorted(normalised))] == ["venv", " ".join(sorted(locked))]


def test_image_configuration(engine, built):
    config = json.loads(docker_output(engine, "image", "inspect", "-f", "{{json .Config}}", built.image))
    assert config["User"] == f"{APP_UID}:{APP_UID}"
    assert config["WorkingDir"] == "/app"
    assert list(config["ExposedPorts"]) == ["8080/tcp"]
    assert config["Cmd"] == ["gunicorn"]
    assert {"PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1"} <= set(config["Env"])
    assert [var for var in config["Env"] if var.startswith("PATH=")][0].startswith("PATH=/opt/venv/bin:")


# ---- secrets -----------------------------------------------------------------------------


def test_token_and_ca_bundle_are_in_no_layer_history_or_log(engine, built, base_image, tmp_path):
    saved = saved_image(engine, built.image, tmp_path / "image.tar")
    history = docker_output(engine, "history", "--no-trunc", built.image)
    assert_token_absent(built.token, built.log, saved, history)

    assert ca_bundle(), "this machine's pip trusts a CA bundle, which the build got as the ca_bundle secret"
    bundle = Path(ca_bundle()).read_bytes()
    certificates = re.findall(rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", bundle, re.S)
    # The base image's own CA certificates are in the image, of course; no other one may be.
    base = saved_image(engine, base_image, tmp_path / "base.tar")
    foreign = [certificate for certificate in certificates if certificate not in base]
    assert bundle not in saved
    assert [certificate for certificate in foreign if certificate in saved] == []


# ---- the lock ------------------------------------------------------------------------------


def make_with_engine(engine, project, *argv):
    """`make argv...` in `project`, its `docker` this engine's client (first on PATH):
    (CompletedProcess with the whole log in stdout)."""
    bin_dir = project.parent / "engine-bin"
    bin_dir.mkdir(exist_ok=True)
    if not (bin_dir / "docker").exists():
        (bin_dir / "docker").symlink_to(shutil.which(engine.client))
    env = {**engine.env, "PATH": os.pathsep.join([str(bin_dir), engine.env["PATH"]])}
    return subprocess.run(
        ["make", *argv], cwd=project, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )


def make_build(engine, project, base_image, tag):
    """`make build` with this test's values and this machine's pip options (BUILD_OPTIONS)."""
    options = shlex.join([*pip_build_options(), *engine.network_args()])
    return make_with_engine(
        engine,
        project,
        "build",
        f"IMAGE={tag}",
        f"BASE_IMAGE={base_image}",
        f"PYPI_USER={USER}",
        f"BUILD_OPTIONS={options}",
    )


def test_make_build_needs_no_token_file_without_a_private_index_and_a_pipfile_edited_after_locking_fails_it(
    engine, base_image, built, tmp_path
):
    """The default project has no private index: `make build` without PYPI_TOKEN.txt runs the
    build (no secret, which the Dockerfile takes as none) up to pipenv's check of the lock,
    which refuses a Pipfile edited after locking."""
    project = copy_project(built.project, tmp_path / APP)
    (project / "PYPI_TOKEN.txt").unlink()
    pipfile = project / "source" / "Pipfile"
    pipfile.write_text(pipfile.read_text().replace("[packages]\n", '[packages]\nrequests = "*"\n'))
    result = make_build(engine, project, base_image, tag=f"{APP}:stale")
    assert result.returncode != 0
    command = result.stdout[result.stdout.index("docker build ") :].split(" -t ", 1)[0]  # what make ran, to its tag
    assert "PYPI_TOKEN" not in command
    assert re.search(r"Your Pipfile\.lock \(\w+\) is out of date\. Expected: \(\w+\)\.", plain(result.stdout)), (
        result.stdout
    )
    assert "ERROR:: Aborting deploy" in result.stdout


def image_with_index_settings(engine, base_image, scratch, mirror):
    """The base image with pip settings baked into its environment, as a company's images have:
    an index setting, PIPENV_PYPI_MIRROR at `mirror`, which pip (installing pipenv) does not
    read and a pipenv that gets it locks against; and this machine's CA bundle as PIP_CERT.
    (PEP 668 allowed, as the official images allow it: the Debian-made base image refuses the
    system-wide pip install of a bare `pipenv lock`.)"""
    scratch.mkdir()
    lines = [f"FROM {base_image}", f"ENV PIPENV_PYPI_MIRROR={mirror} PIP_BREAK_SYSTEM_PACKAGES=1"]
    if ca_bundle():
        shutil.copyfile(ca_bundle(), scratch / "ca.pem")
        lines += ["COPY ca.pem /etc/ca.pem", "ENV PIP_CERT=/etc/ca.pem"]
    (scratch / "Dockerfile").write_text("\n".join(lines) + "\n")
    tag = f"{APP}-base-with-index-settings:{secrets.token_hex(4)}"
    engine.docker("build", "-q", "-t", tag, str(scratch), capture_output=True)
    return tag


def test_make_lock_in_container_locks_with_lock_py_and_keeps_the_images_index_settings_from_pipenv(
    engine, base_image, bake, tmp_path
):
    """`make lock-in-container` runs scripts/lock.py in the image, as `make lock` runs it here:
    an index setting in the image's environment (a mirror nobody answers at) does not reach
    pipenv, the lock is the hook's, the token file's token is in no output, and this machine's
    source/.venv is neither used nor replaced."""
    baked = bake(python_version=PYTHON, lock_dependencies=True)
    project = copy_project(baked, tmp_path / APP)
    hooks_lock = json.loads((project / "source" / "Pipfile.lock").read_text())
    (project / "source" / "Pipfile.lock").unlink()
    token = secrets.token_urlsafe(24)
    (project / "PYPI_TOKEN.txt").write_text(token + "\n")
    (project / "source" / ".venv").mkdir()
    (project / "source" / ".venv" / "this-machines").write_text("venv\n")
    if os.geteuid() == 0:  # the project of a user who is not root, as on a workstation
        for path in [project / "source", *(project / "source").rglob("*")]:
            os.lchown(path, 12345, 12345)
    mirror = f"http://127.0.0.1:{free_port()}/simple"
    image = image_with_index_settings(engine, base_image, tmp_path / "image", mirror)
    try:
        made = make_with_engine(
            engine,
            project,
            "lock-in-container",
            f"BASE_IMAGE={image}",
            f"PYPI_USER={USER}",
            f"LOCK_OPTIONS={shlex.join(engine.network_args())}",
        )
    finally:
        engine.docker("rmi", image, check=False, capture_output=True)
    assert made.returncode == 0, made.stdout
    assert f"lock.py: locked source/Pipfile.lock with pipenv {DEFAULTS['pipenv_version']} for Python {PYTHON}" in (
        made.stdout
    )
    lock = json.loads((project / "source" / "Pipfile.lock").read_text())
    assert lock["_meta"]["hash"] == hooks_lock["_meta"]["hash"]
    assert sorted(lock["default"]) == sorted(hooks_lock["default"])
    assert_token_absent(token, made.stdout)
    assert [path.name for path in (project / "source" / ".venv").iterdir()] == ["this-machines"]
    # The container runs as root; the new lock is the user's, as source/ is, not root's.
    owner, locked = (project / "source").stat(), (project / "source" / "Pipfile.lock").stat()
    assert (locked.st_uid, locked.st_gid) == (owner.st_uid, owner.st_gid)


# The platform's own form of step 3 of "Build locally" (the other, `make lock-in-container`'s, is
# the test above's).
PLATFORMS_LOCK_COMMAND = "docker run -e PYPI_USER="


def test_the_platforms_lock_command_in_the_base_image_writes_the_same_lock(engine, base_image, built, tmp_path):
    """pipenv lock inside the base image, as the platform's documentation shows it, agrees with the hook's lock."""
    project = copy_project(built.project, tmp_path / APP)
    (project / "PYPI_TOKEN.txt").write_text(built.token + "\n")
    hooks_lock = json.loads((project / "source" / "Pipfile.lock").read_text())
    (project / "source" / "Pipfile.lock").unlink()
    argv = shlex.split(manual_command(project, PLATFORMS_LOCK_COMMAND))
    image = next(arg for arg in argv if arg.endswith(f"/library/python:{PYTHON}-slim"))
    # What this machine needs in addition: Docker 20.10 takes no relative bind paths; the
    # Debian-made base image refuses a system-wide pip install (PEP 668), which the official
    # images allow; and the CA bundle (the manual's troubleshooting table shows these options).
    machine = ["-e", "PIP_BREAK_SYSTEM_PACKAGES=1"]
    if ca_bundle():
        machine += ["-v", f"{ca_bundle()}:/ca.pem:ro", "-e", "PIP_CERT=/ca.pem"]
    assert argv[:2] == ["docker", "run"]
    values = {"./source:/source": f"{project / 'source'}:/source", image: base_image}
    argv = [
        engine.client,
        "run",
        *machine,
        *(
            values.get(arg, arg).replace("$(cat ./PYPI_TOKEN.txt)", built.token).replace("<SSO_USERNAME>", USER)
            for arg in argv[2:]
        ),
    ]
    result = subprocess.run(argv, cwd=project, env=engine.env, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    lock = json.loads((project / "source" / "Pipfile.lock").read_text())
    assert lock["_meta"]["hash"] == hooks_lock["_meta"]["hash"]
    assert sorted(lock["default"]) == sorted(hooks_lock["default"])


# ---- a private index, like Artifactory: the token is used, and still leaves no trace --------


def pinned(pins):
    """The requirements of a hash-pinned requirements file (`name==version ; marker`), without hashes."""
    return [line.rstrip(" \\") for line in pins.read_text().splitlines() if re.match(r"[A-Za-z0-9]", line)]


@pytest.fixture(scope="module")
def private_index(default_project):
    """The index, holding what the Pipfile and the image's pipenv need, and its token."""
    token = secrets.token_urlsafe(24)
    requirements = [
        *pipfile_requirements(default_project),
        *pinned(default_project / "scripts" / "pipenv-requirements.txt"),
    ]
    with PrivateIndex(index_wheels(requirements, PYTHON), USER, token) as index:
        yield SimpleNamespace(index=index, token=token)


def test_private_index_gets_the_token_from_the_secret_and_it_leaves_no_trace(
    engine, base_image, bake, private_index, monkeypatch, tmp_path
):
    index, token = private_index.index, private_index.token
    with monkeypatch.context() as env:  # pipenv lock (the post-gen hook) reads them from the environment
        env.setenv("PYPI_USER", USER)
        env.setenv("PYPI_TOKEN", token)
        baked = bake(python_version=PYTHON, lock_dependencies=True, package_index=index.url)
    assert (baked / "source" / "Pipfile.lock").is_file(), "the post-gen hook did not lock against the index"
    project = copy_project(baked, tmp_path / APP)
    (project / "PYPI_TOKEN.txt").write_text(token + "\n")
    # The index listens on 127.0.0.1: the build joins the host's network to reach it.
    argv = build_argv(
        engine, project, base_image, *pip_build_options(), "--network", "host", "--no-cache", tag=f"{APP}:private-index"
    )
    served = index.served
    result, _ = docker_build(engine, project, argv)
    assert result.returncode == 0, result.stdout
    assert index.served > served, "the build installed nothing from the private index"
    image = image_id(engine, f"{APP}:private-index")
    saved = saved_image(engine, image, tmp_path / "image.tar")
    history = docker_output(engine, "history", "--no-trunc", image)
    engine.docker("rmi", image, capture_output=True)
    assert_token_absent(token, result.stdout, saved, history)

    # A wrong token: the index refuses it (pip says so only with -v), and the build stops
    # with the Dockerfile's pointer to the manual's troubleshooting table.
    wrong = secrets.token_urlsafe(24)
    (project / "PYPI_TOKEN.txt").write_text(wrong + "\n")
    refused = index.refused
    result, _ = docker_build(engine, project, argv)
    assert result.returncode != 0 and index.refused > refused
    assert "No matching distribution found for certifi==" in result.stdout  # the first of the pins
    assert "see docs/local-development.md, Troubleshooting the build" in result.stdout
    assert_token_absent(wrong, result.stdout)

    # pipenv's wheel, served by the index, does not match its hash in the pins: not installed.
    (project / "PYPI_TOKEN.txt").write_text(token + "\n")
    pins = project / "scripts" / "pipenv-requirements.txt"
    entry = re.search(
        rf"^pipenv=={re.escape(DEFAULTS['pipenv_version'])} \\\n(\s+--hash=.*\n)+", pins.read_text(), re.M
    )[0]
    pins.write_text(pins.read_text().replace(entry, re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, entry)))
    result, _ = docker_build(engine, project, argv)
    assert result.returncode != 0
    assert "THESE PACKAGES DO NOT MATCH THE HASHES FROM THE REQUIREMENTS FILE" in result.stdout
    assert re.search(rf"pipenv=={re.escape(DEFAULTS['pipenv_version'])} from \S+/pipenv-", plain(result.stdout))
    assert_token_absent(token, result.stdout)


# ---- hadolint ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "answers",
    [{}, PRIVATE_INDEX],
    ids=combination_id,
)
def test_hadolint_reports_nothing(bake, answers):
    hadolint = Path(sys.executable).with_name("hadolint")
    result = subprocess.run(
        [str(hadolint), "--no-color", "Dockerfile"], cwd=bake(**answers), capture_output=True, text=True
    )
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


# ---- sizes ---------------------------------------------------------------------------------


def test_report_image_and_base_image_sizes(engine, built, base_image, record_property):
    size, base = (
        int(docker_output(engine, "image", "inspect", "-f", "{{.Size}}", image)) for image in (built.image, base_image)
    )
    assert size > base  # the base image is part of the image
    record_property(
        "measurement",
        f"container: the image is {size / 1e6:.1f} MB, its base image {base_image} "
        f"{base / 1e6:.1f} MB (+{(size - base) / 1e6:.1f} MB); "
        f"the happy-path build took {built.seconds:.0f} s",
    )
    origin = "the machine's engine" if engine.system_engine else "an engine of the suite's own"
    record_property("measurement", f"container: {origin} at {engine.host}, client {engine.client}")
