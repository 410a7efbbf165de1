"""A real container engine and a Python base image for the test suite (stdlib only).

What the machine has comes first.  Where an engine answers at ``$DOCKER_HOST`` or the
default socket (a GitHub Actions or Azure Pipelines hosted runner: a non-root user in the
``docker`` group), it is used as it is, and the base image is ``$APPSTACK_BASE_IMAGE`` or
``python:X.Y-slim``, present or pulled::

    from tools.container import base_image, engine

    with engine() as docker:                          # the machine's engine, else our own
        base = base_image("3.11", docker)             # python:3.11-slim, or the fallback below
        docker.docker("build", *docker.network_args(), *pip_build_options(),
                      "--build-arg", f"BASE_IMAGE={base}", "-t", "app:test", ".")

The fallback, for machines that reach PyPI and Debian's mirrors but no engine and no
container registry (as root): Debian's ``docker.io`` (dockerd 20.10 with BuildKit built
in), a dockerd of our own, and a Python base image made from Debian packages
(``localhost/appstack-python:3.11-slim``).

Caches (under ``${XDG_CACHE_HOME:-~/.cache}/flask-appstack``): ``docker/`` is the
engine's data-root, so images survive between sessions; ``rootfs/`` keeps the
debootstrapped root filesystems as tarballs, so a fresh data-root costs only a
``docker import``.  The daemon's socket, pidfile and exec-root live in a short
per-data-root directory under the temp dir (unix socket paths are limited to
108 bytes).

Run ``python -m tools.container`` to set everything up and list the images.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import hashlib
import logging
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from .cache import cache_dir, file_lock

log = logging.getLogger(__name__)

#: Debian's client (docker.io): it builds with BuildKit without the buildx plugin.
DEBIAN_DOCKER = "/usr/bin/docker"
#: Where a system engine listens when DOCKER_HOST does not say otherwise.
DEFAULT_HOST = "unix:///var/run/docker.sock"
DOCKERD = "/usr/sbin/dockerd"
#: Debian packages we need, and the binary each one provides.
PACKAGES = {"docker.io": DOCKERD, "debootstrap": "/usr/sbin/debootstrap"}
#: Python minor version -> the Debian release whose ``python3`` it is.
SUITES = {"3.9": "bullseye", "3.11": "bookworm", "3.13": "trixie"}
BASE_PACKAGES = ("python3", "python3-venv", "python3-pip", "ca-certificates")
BASE_REPO = "localhost/appstack-python"
#: Bump when the recipe below changes: it invalidates cached tarballs and images.
RECIPE_VERSION = "1"
RECIPE_LABEL = "org.flask-appstack.base-recipe"
#: Flags that make dockerd work where it cannot create a bridge or iptables rules.
#: Then builds and runs need ``--network host`` (``-p`` is silently ignored).
FALLBACK_FLAGS = ("--iptables=false", "--ip6tables=false", "--bridge=none")
DEBIAN_CODENAMES = {
    "buster",
    "bullseye",
    "bookworm",
    "trixie",
    "forky",
    "sid",
    "oldstable",
    "stable",
    "testing",
    "unstable",
}


def _run(*cmd, **kw) -> subprocess.CompletedProcess:
    kw.setdefault("check", True)
    log.debug("+ %s", " ".join(map(str, cmd)))
    return subprocess.run([str(c) for c in cmd], **kw)


def _installed(pkg: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", pkg], capture_output=True, text=True)
    return r.returncode == 0 and r.stdout.strip() == "install ok installed"


def ensure_packages(packages=tuple(PACKAGES)) -> list[str]:
    """apt-get install whichever of ``packages`` is missing; return what was installed.

    Idempotent: when everything is present it runs neither ``apt-get update`` nor
    ``install``.  ``docker.io`` pulls in containerd, runc, tini and iptables; running
    as root needs nothing else (no uidmap, no fuse-overlayfs).
    """
    missing = [p for p in packages if not _installed(p)]
    if not missing:
        return []
    if os.geteuid() != 0:
        raise PermissionError(f"need root to apt-get install {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    t0 = time.monotonic()
    _run("apt-get", "update", "-q", env=env, stdout=subprocess.DEVNULL)
    _run("apt-get", "install", "-y", "-q", "--no-install-recommends", *missing, env=env, stdout=subprocess.DEVNULL)
    log.info("apt-get installed %s in %.1fs", " ".join(missing), time.monotonic() - t0)
    return missing


def _can_build(client: str) -> bool:
    """True when ``client`` has the buildx plugin: a docker CLI of 23 or newer without it
    refuses ``docker build`` with BuildKit (``--secret`` and ``-o`` need BuildKit)."""
    try:
        r = subprocess.run([client, "buildx", "version"], capture_output=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0


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
    env = dict(os.environ, DOCKER_HOST=host)
    try:
        r = subprocess.run(
            [client or docker_client(), "version", "--format", "{{.Server.Version}}"],
            env=env,
            capture_output=True,
            text=True,
            timeout=20,
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return r.returncode == 0 and bool(r.stdout.strip())


def system_engine_host() -> str | None:
    """``$DOCKER_HOST``, else the default socket, when an engine answers there; else None."""
    client = docker_client()
    for host in (os.environ.get("DOCKER_HOST"), DEFAULT_HOST):
        if host and answers(host, client):
            return host
    return None


class Dockerd:
    """A docker engine for this session: reused if one answers, else started here.

    ``with Dockerd() as d:`` exports nothing globally; use ``d.env`` (for your own
    subprocesses), ``d.docker(...)`` and ``d.network_args()``.

    The daemon on this data-root is shared: every session that uses it holds a shared
    flock on ``<run_dir>.users``, and at exit the last one stops it (by PID: SIGTERM,
    wait, SIGKILL), whichever session started it.  So two test sessions on one machine
    (or two pytest-xdist workers) never stop the engine under each other.  A daemon
    started with ``keep=True`` (``python -m tools.container --keep``) is marked kept and
    outlives every session until ``stop_leftover()``.  A system engine that answers is
    used as is and never stopped.
    """

    def __init__(
        self,
        data_root: os.PathLike | str | None = None,
        *,
        reuse_system: bool = True,
        keep: bool = False,
        timeout: float = 60,
    ):
        self.data_root = Path(data_root or cache_dir("docker")).resolve()
        tag = hashlib.sha256(str(self.data_root).encode()).hexdigest()[:10]
        self.run_dir = Path(tempfile.gettempdir()) / f"appstack-dockerd-{tag}"
        self.exec_root = self.run_dir / "exec"
        self.pidfile = self.run_dir / "dockerd.pid"
        self.logfile = self.run_dir / "dockerd.log"
        self.host = f"unix://{self.run_dir / 'docker.sock'}"
        self.reuse_system, self.keep, self.timeout = reuse_system, keep, timeout
        self.proc: subprocess.Popen | None = None  # set only if we started dockerd
        self._users = None  # our shared flock on the users file
        self.flags: tuple[str, ...] = ()  # extra dockerd flags that were needed
        self.host_network = False  # True: no bridge, use --network host
        self.client = docker_client()  # the docker CLI that talks to it

    @classmethod
    def system(cls) -> "Dockerd | None":
        """The machine's engine (``$DOCKER_HOST`` or the default socket), used as it is and
        never stopped; None when none answers."""
        host = system_engine_host()
        if host is None:
            return None
        engine = cls(reuse_system=False)
        engine.host = host
        engine._find_network()
        return engine

    @property
    def system_engine(self) -> bool:
        """True for an engine this module neither started nor shares a data-root with."""
        return self.host != self._own_host

    # -- the client ---------------------------------------------------------------
    @property
    def env(self) -> dict:
        """Environment for ``self.client``: this engine, BuildKit on."""
        return dict(os.environ, DOCKER_HOST=self.host, DOCKER_BUILDKIT="1")

    def docker(self, *args, **kw) -> subprocess.CompletedProcess:
        """Run the docker client against this engine (``check=True`` by default)."""
        kw.setdefault("env", self.env)
        return _run(self.client, *args, **kw)

    def network_args(self) -> list[str]:
        """``["--network", "host"]`` when the engine has no bridge, else ``[]``."""
        return ["--network", "host"] if self.host_network else []

    def _answers(self, host: str) -> bool:
        return answers(host, self.client)

    def _find_network(self) -> None:
        nets = self.docker("network", "ls", "--format", "{{.Name}}", capture_output=True, text=True)
        self.host_network = "bridge" not in nets.stdout.split()

    # -- life cycle -----------------------------------------------------------------
    def start(self) -> "Dockerd":
        candidates = [self.host]
        if self.reuse_system:
            candidates += [os.environ.get("DOCKER_HOST", ""), "unix:///var/run/docker.sock"]
        with file_lock(self.run_dir.with_suffix(".lock")):
            for host in filter(None, candidates):
                if self._answers(host):
                    log.info("reusing the docker engine at %s", host)
                    self.host = host
                    break
            else:
                self._spawn(())
                if self.proc is None:
                    log.warning("dockerd failed with default flags; retrying with %s", FALLBACK_FLAGS)
                    self._spawn(FALLBACK_FLAGS)
                if self.proc is None:
                    raise RuntimeError(f"dockerd did not start; see {self.logfile}:\n{self._log_tail()}")
            if self.host == self._own_host:
                self._users = open(self.run_dir.with_suffix(".users"), "a")
                fcntl.flock(self._users, fcntl.LOCK_SH)
                if self.keep:
                    (self.run_dir / "kept").touch()
        self._find_network()
        return self

    def _spawn(self, flags: tuple[str, ...]) -> None:
        """Start dockerd with ``flags``; leave ``self.proc`` set only if it became ready."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.data_root.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / "kept").unlink()  # the mark of a daemon that is gone
        self._unmount_leftovers()
        cmd = [
            DOCKERD,
            "--data-root",
            str(self.data_root),
            "--exec-root",
            str(self.exec_root),
            "--pidfile",
            str(self.pidfile),
            "--host",
            self.host,
            *flags,
        ]
        # Debian's containerd/runc/iptables, whatever else is first on PATH.
        env = dict(os.environ, PATH="/usr/sbin:/usr/bin:/sbin:/bin:" + os.environ.get("PATH", ""))
        env.pop("DOCKER_HOST", None)
        t0 = time.monotonic()
        with open(self.logfile, "wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL, start_new_session=True
            )
        while time.monotonic() - t0 < self.timeout:
            if proc.poll() is not None:
                return
            if self._answers(self.host):
                self.proc, self.flags = proc, flags
                log.info(
                    "dockerd%s ready in %.1fs (pid %d)",
                    "".join(" " + f for f in flags),
                    time.monotonic() - t0,
                    proc.pid,
                )
                return
            time.sleep(0.2)
        self.proc = proc
        self.stop()
        raise RuntimeError(f"dockerd not ready after {self.timeout}s:\n{self._log_tail()}")

    @property
    def _own_host(self) -> str:
        return f"unix://{self.run_dir / 'docker.sock'}"

    def stop(self) -> None:
        """Leave the engine; the last session using this data-root's daemon stops it
        (SIGTERM, wait 30 s, then SIGKILL it and its children), unless it is kept."""
        proc, self.proc = self.proc, None
        users, self._users = self._users, None
        if users is None:  # a system engine, or a daemon that never became ready
            if proc is not None and proc.poll() is None:
                _terminate(proc.pid, proc)
                self._unmount_leftovers()
            return
        with file_lock(self.run_dir.with_suffix(".lock")):
            try:
                fcntl.flock(users, fcntl.LOCK_EX | fcntl.LOCK_NB)  # only if nobody else holds it
                last = True
            except BlockingIOError:
                last = False
            users.close()
            if not last or (self.run_dir / "kept").exists():
                log.info("leaving dockerd running: %s", "other sessions use it" if not last else "it is kept")
            elif proc is not None and proc.poll() is None:
                _terminate(proc.pid, proc)
                self._unmount_leftovers()
            else:
                self._stop_pidfile_daemon()

    def _release(self) -> None:
        """Drop our share of the engine without stopping it (``keep=True``)."""
        users, self._users = self._users, None
        if users is not None:
            users.close()

    def stop_leftover(self) -> bool:
        """Stop a dockerd that an earlier ``keep=True`` session left on this data-root."""
        with contextlib.suppress(FileNotFoundError):
            (self.run_dir / "kept").unlink()
        return self._stop_pidfile_daemon()

    def _stop_pidfile_daemon(self) -> bool:
        """Stop the dockerd of this data-root named by its pidfile (another session's)."""
        with contextlib.suppress(OSError, ValueError):
            pid = int(self.pidfile.read_text())
            if str(self.data_root).encode() in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                _terminate(pid)
                self._unmount_leftovers()
                return True
        return False

    def _unmount_leftovers(self) -> None:
        """Lazily unmount what a stopped dockerd left under its exec-root (e.g. netns)."""
        prefix = str(self.exec_root) + "/"
        with open("/proc/self/mountinfo") as fh:
            points = [line.split()[4] for line in fh]
        for point in sorted((p for p in points if p.startswith(prefix)), key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False, capture_output=True)

    def _log_tail(self, lines: int = 25) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        return ""

    def __enter__(self) -> "Dockerd":
        return self.start()

    def __exit__(self, *exc) -> None:
        if self.keep:
            self._release()
        else:
            self.stop()


def _terminate(pid: int, proc: subprocess.Popen | None = None, timeout: float = 30) -> None:
    """SIGTERM ``pid``, wait up to ``timeout`` s, then SIGKILL it and its children."""
    children = _children(pid)  # containerd: exits by itself after a clean stop
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (proc.poll() is not None) if proc else not _alive(pid):
            return
        time.sleep(0.2)
    log.warning("dockerd %d ignored SIGTERM; killing it", pid)
    for victim in [pid, *children]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)
    if proc:
        proc.wait()


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _children(pid: int) -> list[int]:
    kids = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError, ValueError):
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == pid:
                kids.append(int(stat.split("/")[2]))
    return kids


# -- the base image ---------------------------------------------------------------------
def debian_mirror() -> str:
    """The Debian mirror apt already uses here (``$APPSTACK_DEBIAN_MIRROR`` overrides).

    Reads one-line ``.list`` and deb822 ``.sources`` files and takes the first enabled
    ``deb`` entry for a Debian release with the ``main`` component.
    """
    if os.environ.get("APPSTACK_DEBIAN_MIRROR"):
        return os.environ["APPSTACK_DEBIAN_MIRROR"]
    entries = []  # (uris, suites, components)
    for path in ["/etc/apt/sources.list", *sorted(glob.glob("/etc/apt/sources.list.d/*.list"))]:
        with contextlib.suppress(OSError):
            for line in Path(path).read_text().splitlines():
                words = [w for w in line.split("#", 1)[0].split() if not w.startswith("[")]
                if len(words) >= 4 and words[0] == "deb":
                    entries.append((words[1:2], words[2:3], words[3:]))
    for path in sorted(glob.glob("/etc/apt/sources.list.d/*.sources")):
        for stanza in Path(path).read_text().split("\n\n"):
            fields, key = {}, None
            for line in stanza.splitlines():
                if line.startswith("#") or not line.strip():
                    continue
                if line[0].isspace() and key:
                    fields[key] += " " + line.strip()
                elif ":" in line:
                    key, value = line.split(":", 1)
                    key = key.strip().lower()
                    fields[key] = value.strip()
            if "deb" in fields.get("types", "").split() and fields.get("enabled", "yes") != "no":
                entries.append(
                    (
                        fields.get("uris", "").split(),
                        fields.get("suites", "").split(),
                        fields.get("components", "").split(),
                    )
                )
    for uris, suites, components in entries:
        if uris and "main" in components and DEBIAN_CODENAMES & set(suites):
            return uris[0].rstrip("/")
    raise RuntimeError("no Debian mirror in /etc/apt/sources.list(.d); set APPSTACK_DEBIAN_MIRROR")


def _apt_proxy_env() -> dict:
    """http(s)_proxy for debootstrap from apt's Acquire::http(s)::Proxy, if apt has one."""
    env = {}
    for scheme in ("http", "https"):
        r = subprocess.run(["apt-config", "dump", f"Acquire::{scheme}::Proxy"], capture_output=True, text=True)
        for line in r.stdout.splitlines():
            key, _, value = line.partition(" ")
            if key == f"Acquire::{scheme}::Proxy" and value.strip('";') not in ("", "DIRECT", "false"):
                env[f"{scheme}_proxy"] = value.strip('";')
    return env


def _python_minor(python: str) -> str:
    minor = ".".join(str(python).split(".")[:2])
    if minor not in SUITES:
        raise ValueError(
            f"no Debian release ships Python {python}; the base image can be made for "
            + ", ".join(f"{v} ({s})" for v, s in SUITES.items())
        )
    return minor


def base_image_tag(python: str = "3.11") -> str:
    """``localhost/appstack-python:X.Y-slim`` — a valid ``BASE_IMAGE`` build-arg value."""
    return f"{BASE_REPO}:{_python_minor(python)}-slim"


def rootfs_tarball(python: str = "3.11") -> Path:
    """Debootstrap (once) a minimal Debian with Python; return the cached tarball."""
    minor = _python_minor(python)
    suite = SUITES[minor]
    recipe = hashlib.sha256(f"{RECIPE_VERSION} {suite} {' '.join(BASE_PACKAGES)}".encode()).hexdigest()[:12]
    tarball = cache_dir("rootfs") / f"{suite}-python{minor}-{recipe}.tar"
    with file_lock(tarball.with_suffix(".lock")):
        if tarball.exists():
            return tarball
        mirror = debian_mirror()
        work = Path(tempfile.mkdtemp(prefix=f"{suite}-", dir=tarball.parent))
        try:
            t0 = time.monotonic()
            _run(
                PACKAGES["debootstrap"],
                "--variant=minbase",
                "--include=" + ",".join(BASE_PACKAGES),
                suite,
                work / "rootfs",
                mirror,
                stdout=subprocess.DEVNULL,
                env=dict(os.environ, **_apt_proxy_env()),
            )
            log.info("debootstrap %s from %s in %.1fs", suite, mirror, time.monotonic() - t0)
            root = work / "rootfs"
            for pattern in (
                "var/cache/apt/archives/*.deb",
                "var/cache/apt/*.bin",
                "var/lib/apt/lists/*",
                "usr/share/doc/*",
                "usr/share/man/*",
                "usr/share/info/*",
                "var/log/*",
                "tmp/*",
            ):
                for path in glob.glob(str(root / pattern)):
                    if os.path.isdir(path) and not os.path.islink(path):
                        shutil.rmtree(path)
                    else:
                        os.unlink(path)
            _run("tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", work / "rootfs.tar", ".")
            os.replace(work / "rootfs.tar", tarball)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return tarball


def ensure_base_image(python: str = "3.11", engine: Dockerd | None = None) -> str:
    """Make sure ``base_image_tag(python)`` exists in ``engine``; return the tag.

    Costs nothing if the engine already has it (same recipe label), a ``docker import``
    (~3 s) if only the cached tarball exists, and a debootstrap (~40-60 s) otherwise.
    ``engine=None`` uses ``$DOCKER_HOST``.
    """
    tag = base_image_tag(python)
    run = engine.docker if engine else (lambda *a, **kw: _run(docker_client(), *a, **kw))
    tarball = rootfs_tarball(python)
    recipe = tarball.stem.rsplit("-", 1)[1]
    have = run(
        "image",
        "inspect",
        "--format",
        '{{index .Config.Labels "%s"}}' % RECIPE_LABEL,
        tag,
        check=False,
        capture_output=True,
        text=True,
    )
    if have.returncode == 0 and have.stdout.strip() == recipe:
        return tag
    t0 = time.monotonic()
    run(
        "import",
        "--change",
        "ENV LANG=C.UTF-8",
        "--change",
        'CMD ["python3"]',
        "--change",
        f"LABEL {RECIPE_LABEL}={recipe}",
        tarball,
        tag,
        stdout=subprocess.DEVNULL,
    )
    log.info("docker import %s in %.1fs", tag, time.monotonic() - t0)
    return tag


def official_image(python: str = "3.11") -> str:
    """``python:X.Y-slim``: the image the generated Dockerfile's base stands for."""
    return f"python:{'.'.join(str(python).split('.')[:2])}-slim"


def base_image(python: str = "3.11", engine: Dockerd | None = None) -> str:
    """The base image the tests build on; return its name.

    1. ``$APPSTACK_BASE_IMAGE`` when set (pulled if the engine does not have it);
    2. else ``python:X.Y-slim`` when the engine has it or can pull it (a hosted runner);
    3. else, as root only, the Debian-made ``localhost/appstack-python:X.Y-slim``
       (``ensure_base_image``: debootstrap, installed with apt when missing).
    """
    run = engine.docker if engine else (lambda *a, **kw: _run(docker_client(), *a, **kw))

    def present_or_pulled(image: str) -> bool:
        if run("image", "inspect", image, check=False, capture_output=True).returncode == 0:
            return True
        pulled = run("pull", "--quiet", image, check=False, capture_output=True, text=True)
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
    if os.geteuid() != 0:
        raise RuntimeError(
            f"the engine neither has nor can pull {official}, and only root can make the "
            "Debian-made base image: pull it, or set APPSTACK_BASE_IMAGE to an image "
            "with Python " + official.split(":")[1].split("-")[0]
        )
    ensure_packages(("debootstrap",))
    return ensure_base_image(python, engine)


@contextlib.contextmanager
def engine(keep: bool = False):
    """The engine to use: the machine's, as it is, when one answers at ``$DOCKER_HOST`` or
    the default socket; else (root) Debian's docker.io, installed when missing, and a
    dockerd of our own on the cached data-root (``Dockerd``)."""
    system = Dockerd.system()
    if system is not None:
        log.info("using the docker engine at %s with %s", system.host, system.client)
        yield system
        return
    if os.geteuid() != 0:
        raise PermissionError(
            f"no docker engine answers at {os.environ.get('DOCKER_HOST') or DEFAULT_HOST}, "
            "and only root can start one: start docker, or run as root"
        )
    ensure_packages()
    with Dockerd(keep=keep) as own:
        yield own


# -- how the host's pip settings reach a build -------------------------------------------
def _host_pip_config() -> dict:
    """pip's effective settings on this host: config files, overridden by PIP_* env vars."""
    r = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True)
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

    ``--keep`` leaves the daemon running for later sessions to reuse; ``--stop`` stops
    such a leftover daemon and does nothing else.
    """
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    python = next((a for a in sys.argv[1:] if not a.startswith("-")), "3.11")
    if "--stop" in sys.argv:
        print("stopped" if Dockerd().stop_leftover() else "no leftover dockerd")
        return 0
    with engine(keep="--keep" in sys.argv) as docker:
        log.info(
            "engine %s (client %s), dockerd flags %s, host network only: %s",
            docker.host,
            docker.client,
            " ".join(docker.flags) or "(defaults)",
            docker.host_network,
        )
        log.info("base image: %s", base_image(python, docker))
        docker.docker("images")
        log.info("pip build options: %s", " ".join(pip_build_options()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
