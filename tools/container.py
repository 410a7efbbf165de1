"""A real container engine and a Python base image for the container tests (stdlib only).

The machine's engine, as it is: the one answering at ``$DOCKER_HOST`` or the default socket
(a GitHub Actions or Azure Pipelines hosted runner: a non-root user in the ``docker`` group, or
a workstation), with the base image ``$APPSTACK_BASE_IMAGE`` or ``python:X.Y-slim``, present or
pulled::

    from tools.container import base_image, engine, pip_build_options

    with engine() as docker:
        base = base_image("3.11", docker)
        docker.docker("build", *docker.network_args(), *pip_build_options(),
                      "--build-arg", f"BASE_IMAGE={base}", "-t", "app:test", ".")

Where the machine has no engine or no registry to pull from, ``tools/bare_machine.py`` provides
them (as root on Debian only; never on a hosted runner).

Run ``python -m tools.container [X.Y] [--keep | --stop]`` to set everything up and list the
images (``--keep``/``--stop``: see ``bare_machine.Dockerd``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import sys
from urllib.parse import urlsplit

from .cache import ToolFailed, run

log = logging.getLogger(__name__)

#: Debian's client (docker.io): it builds with BuildKit without the buildx plugin.
DEBIAN_DOCKER = "/usr/bin/docker"
#: Where a system engine listens when DOCKER_HOST does not say otherwise.
DEFAULT_HOST = "unix:///var/run/docker.sock"


def _can_build(client: str) -> bool:
    """True when ``client`` has the buildx plugin: a docker CLI of 23 or newer without it
    refuses ``docker build`` with BuildKit (``--secret`` and ``-o`` need BuildKit)."""
    try:
        return run([client, "buildx", "version"], check=False, timeout=20).returncode == 0
    except (OSError, ToolFailed):
        return False


def docker_client() -> str:
    """The docker client to use: the one on PATH when it can build, else Debian's.

    A hosted runner's ``docker`` has buildx; a newer static client earlier on PATH without
    it (as on this project's CI machine) cannot build, and Debian's ``/usr/bin/docker`` can.
    """
    on_path = shutil.which("docker")
    if on_path and (os.path.realpath(on_path) == os.path.realpath(DEBIAN_DOCKER) or _can_build(on_path)):
        return on_path
    if os.path.exists(DEBIAN_DOCKER):
        return DEBIAN_DOCKER
    return on_path or DEBIAN_DOCKER


def answers(host: str, client: str | None = None) -> bool:
    """True when an engine answers at ``host``: a socket file alone (stale after a crash)
    is no engine, so ask the server for its version."""
    if host.startswith("unix://") and not os.path.exists(host[len("unix://") :]):
        return False
    command = [client or docker_client(), "version", "--format", "{{.Server.Version}}"]
    try:
        version = run(command, check=False, timeout=20, env=dict(os.environ, DOCKER_HOST=host))
    except (OSError, ToolFailed):
        return False
    return version.returncode == 0 and bool(version.stdout.strip())


def system_engine_host() -> str | None:
    """``$DOCKER_HOST``, else the default socket, when an engine answers there; else None."""
    client = docker_client()
    for host in (os.environ.get("DOCKER_HOST"), DEFAULT_HOST):
        if host and answers(host, client):
            return host
    return None


class Engine:
    """A docker engine the tests talk to: ``env`` (for your own subprocesses), ``docker(...)``
    and ``network_args()``. This one is the machine's, used as it is and never stopped."""

    system_engine = True

    def __init__(self, host: str, client: str | None = None):
        self.host = host
        self.client = client or docker_client()  # the docker CLI that talks to it
        self.host_network = False  # True: no bridge, use --network host

    @property
    def env(self) -> dict:
        """Environment for ``self.client``: this engine, BuildKit on."""
        return dict(os.environ, DOCKER_HOST=self.host, DOCKER_BUILDKIT="1")

    def docker(self, *args, **options):
        """Run the docker client against this engine (``tools.cache.run``: raises on failure
        unless ``check=False``)."""
        return run([self.client, *args], **{"env": self.env, **options})

    def network_args(self) -> list[str]:
        """``["--network", "host"]`` when the engine has no bridge, else ``[]``."""
        return ["--network", "host"] if self.host_network else []

    def find_network(self) -> Engine:
        """Whether builds and runs need the host's network (an engine without a bridge)."""
        self.host_network = "bridge" not in self.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        return self


@contextlib.contextmanager
def engine(keep: bool = False):
    """The engine to use: the machine's, as it is, when one answers at ``$DOCKER_HOST`` or
    the default socket; else one of the bare machine's own (``bare_machine.own_engine``)."""
    host = system_engine_host()
    if host is not None:
        found = Engine(host).find_network()
        log.info("using the docker engine at %s with %s", found.host, found.client)
        yield found
        return
    from . import bare_machine

    with bare_machine.own_engine(keep) as own:
        yield own


def official_image(python: str = "3.11") -> str:
    """``python:X.Y-slim``: the image the generated Dockerfile's base stands for."""
    return f"python:{'.'.join(str(python).split('.')[:2])}-slim"


def base_image(python: str, engine: Engine) -> str:
    """The base image the tests build on; return its name.

    1. ``$APPSTACK_BASE_IMAGE`` when set (pulled if the engine does not have it);
    2. else ``python:X.Y-slim`` when the engine has it or can pull it (a hosted runner);
    3. else the bare machine's own (``bare_machine.base_image``: as root only).
    """

    def present_or_pulled(image: str) -> bool:
        if engine.docker("image", "inspect", image, check=False).returncode == 0:
            return True
        pulled = engine.docker("pull", "--quiet", image, check=False)
        if pulled.returncode:
            log.info("cannot pull %s: %s", image, pulled.stderr.strip())
        return pulled.returncode == 0

    configured = os.environ.get("APPSTACK_BASE_IMAGE")
    if configured:
        if not present_or_pulled(configured):
            raise RuntimeError(
                f"APPSTACK_BASE_IMAGE = {configured!r}: the engine neither has nor can pull it; "
                "expected an image name the engine has or can pull, e.g. python:3.11-slim"
            )
        return configured
    official = official_image(python)
    if present_or_pulled(official):
        return official
    from . import bare_machine

    return bare_machine.base_image(python, engine, official)


# -- how the host's pip settings reach a build -------------------------------------------
def _host_pip_config() -> dict:
    """pip's effective settings on this host: config files, overridden by PIP_* env vars."""
    r = run([sys.executable, "-m", "pip", "config", "list"], check=False)
    config, rank = {}, {"global": 0, "install": 1, ":env:": 2}  # later wins
    lines = [line.partition("=") for line in r.stdout.splitlines()]  # global.index-url='https://...'
    for key, _, value in sorted(lines, key=lambda kv: rank.get(kv[0].split(".", 1)[0], -1)):
        section, _, name = key.partition(".")
        if section in rank:
            config[name] = value.strip("'\"")
    return config


def _ca_bundle(config: dict) -> str | None:
    for candidate in (
        config.get("cert"),
        os.environ.get("REQUESTS_CA_BUNDLE"),
        os.environ.get("SSL_CERT_FILE"),
        "/etc/ssl/certs/ca-certificates.crt",
    ):
        if candidate and os.path.isfile(candidate):
            return candidate
    return None


# B107 is moot: the default is the name of a BuildKit secret mount, not a password.
def pip_build_options(secret_id: str = "ca_bundle") -> list[str]:  # nosec B107
    """``docker build`` options that make pip inside the build use the host's index and CA.

    - The index: ``--build-arg PIP_INDEX_URL`` / ``PIP_EXTRA_INDEX_URL`` /
      ``PIP_TRUSTED_HOST`` only when the host configures them (otherwise pip's default
      index, as on the host).  Local ``file://`` indexes and paths are dropped: the build
      cannot see them.  A URL with credentials is refused: build args show in
      ``docker history``; credentials belong in the PYPI_TOKEN secret.
    - The CA: the bundle the host's pip trusts, as ``--secret id=<secret_id>``; the
      Dockerfile mounts it for the pip RUN step (``--mount=type=secret,id=ca_bundle``) and
      points ``PIP_CERT`` at ``/run/secrets/ca_bundle`` when the file is non-empty.  It is
      never part of a layer.  An undeclared secret mount is simply absent.
    """
    config, opts = _host_pip_config(), []
    for key in ("index-url", "extra-index-url", "trusted-host"):
        values = config.get(key, "").split()
        if key != "trusted-host":
            values = [v for v in values if urlsplit(v).scheme in ("http", "https")]
            if any(urlsplit(v).username or urlsplit(v).password for v in values):
                raise ValueError(f"pip's {key} carries credentials; they would end up in docker history")
        if not values:
            continue
        opts += ["--build-arg", f"PIP_{key.replace('-', '_').upper()}={' '.join(values)}"]
    bundle = _ca_bundle(config)
    if bundle:
        opts += ["--secret", f"id={secret_id},src={bundle}"]
    return opts


def main() -> int:
    """``python -m tools.container [X.Y] [--keep | --stop]``: set up, list images, stop.

    ``--keep`` leaves an engine of the bare machine's own running for later sessions to reuse;
    ``--stop`` stops such a leftover engine and does nothing else.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    python = next((a for a in sys.argv[1:] if not a.startswith("-")), "3.11")
    if "--stop" in sys.argv:
        from .bare_machine import Dockerd

        print("stopped" if Dockerd().stop_leftover() else "no leftover engine")
        return 0
    with engine(keep="--keep" in sys.argv) as docker:
        log.info("engine %s (client %s), host network only: %s", docker.host, docker.client, docker.host_network)
        log.info("base image: %s", base_image(python, docker))
        log.info("images:\n%s", docker.docker("images").stdout)
        log.info("pip build options: %s", " ".join(pip_build_options()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
