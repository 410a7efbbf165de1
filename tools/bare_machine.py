"""Provisioning a bare machine to look like a hosted runner (stdlib only).

Used only where the machine lacks what a GitHub Actions or Azure Pipelines hosted runner has, and
only as root on Debian or Ubuntu (this project's own CI machine): never on a hosted runner, whose
engine, registry and Python are used as they are (``tools/container.py``, ``tasks.py``). It
provisions:

- Debian packages, with apt-get, when missing: ``docker.io`` and ``debootstrap`` for the container
  tests, ``python3.X-venv`` for ``tasks.py`` (Debian's python3 comes without its venv module);
- a docker engine where none answers: a dockerd of the suite's own (``Dockerd``), its data-root
  cached under ``${XDG_CACHE_HOME:-~/.cache}/flask-appstack/docker`` so images survive between
  sessions, stopped by the last session that uses it; its socket, pidfile and exec-root live in
  a short per-data-root directory under the temp dir (unix socket paths are limited to 108 bytes);
- a Python base image where no registry can be pulled from: ``localhost/appstack-python:X.Y-slim``,
  debootstrapped from Debian packages once (the root filesystem is cached as a tarball under
  ``rootfs/``, so a fresh data-root costs only a ``docker import``).
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

from .cache import ToolFailed, built_once, cache_dir, file_lock, run
from .container import DEFAULT_HOST, Engine, answers

log = logging.getLogger(__name__)

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


# -- Debian packages ---------------------------------------------------------------------
def _installed(pkg: str) -> bool:
    r = run(["dpkg-query", "-W", "-f=${Status}", pkg], check=False)
    return r.returncode == 0 and r.stdout.strip() == "install ok installed"


def ensure_packages(packages=tuple(PACKAGES), show=False) -> list[str]:
    """apt-get install whichever of ``packages`` is missing; return what was installed.
    ``show``: apt-get's output goes to the terminal as it comes (a person is waiting for it).

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
    run(["apt-get", "update", "-q"], env=env, capture_output=not show)
    run(["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing], env=env, capture_output=not show)
    log.info("apt-get installed %s in %.1fs", " ".join(missing), time.monotonic() - t0)
    return missing


def provide_venv_module() -> bool:
    """For tasks.py, whose Python has no venv module: install Debian's python3.X-venv, as root
    where apt-get exists; False where that cannot be done (then the user installs it)."""
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return False
    try:
        ensure_packages([f"python3.{sys.version_info.minor}-venv"], show=True)
    except ToolFailed:  # apt-get's own output, shown above, says why
        return False
    return True


# -- a docker engine of our own ----------------------------------------------------------
@contextlib.contextmanager
def own_engine(keep: bool = False):
    """Where no engine answers (root only): Debian's docker.io, installed when missing, and
    a dockerd of our own on the cached data-root."""
    if os.geteuid() != 0:
        raise PermissionError(
            f"no docker engine answers at {os.environ.get('DOCKER_HOST') or DEFAULT_HOST}, "
            "and only root can start one: start docker, or run as root"
        )
    ensure_packages()
    with Dockerd(keep=keep) as own:
        yield own


class Dockerd(Engine):
    """A dockerd of the suite's own on a cached data-root: reused if one answers on its
    socket, else started here. ``with Dockerd() as d:`` exports nothing globally.

    The daemon on this data-root is shared: every session that uses it holds a shared
    flock on ``<run_dir>.users``, and at exit the last one stops it (by PID: SIGTERM,
    wait, SIGKILL), whichever session started it.  So two test sessions on one machine
    (or two pytest-xdist workers) never stop the engine under each other.  A daemon
    started with ``keep=True`` (``python -m tools.container --keep``) is marked kept and
    outlives every session until ``stop_leftover()``.
    """

    system_engine = False

    def __init__(self, *, keep: bool = False, timeout: float = 60):
        self.data_root = cache_dir("docker").resolve()
        tag = hashlib.sha256(str(self.data_root).encode()).hexdigest()[:10]
        self.run_dir = Path(tempfile.gettempdir()) / f"appstack-dockerd-{tag}"
        self.exec_root = self.run_dir / "exec"
        self.pidfile = self.run_dir / "dockerd.pid"
        self.logfile = self.run_dir / "dockerd.log"
        super().__init__(f"unix://{self.run_dir / 'docker.sock'}")
        self.keep, self.timeout = keep, timeout
        self.proc: subprocess.Popen | None = None  # set only if we started dockerd
        self._users = None  # our shared flock on the users file

    # -- life cycle -----------------------------------------------------------------
    def start(self) -> "Dockerd":
        with file_lock(self.run_dir.with_suffix(".lock")):
            if answers(self.host, self.client):
                log.info("reusing the docker engine at %s", self.host)
            else:
                self._spawn(())
                if self.proc is None:
                    log.warning("dockerd failed with default flags; retrying with %s", FALLBACK_FLAGS)
                    self._spawn(FALLBACK_FLAGS)
                if self.proc is None:
                    raise RuntimeError(f"dockerd did not start; see {self.logfile}:\n{self._log_tail()}")
            self._users = open(self.run_dir.with_suffix(".users"), "a")
            fcntl.flock(self._users, fcntl.LOCK_SH)
            if self.keep:
                (self.run_dir / "kept").touch()
        return self.find_network()

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
            if answers(self.host, self.client):
                self.proc = proc
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

    def stop(self) -> None:
        """Leave the engine; the last session using this data-root's daemon stops it
        (SIGTERM, wait 30 s, then SIGKILL it and its children), unless it is kept."""
        proc, self.proc = self.proc, None
        users, self._users = self._users, None
        if users is None:  # a daemon that never became ready
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
            run(["umount", "-l", point], check=False)

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


# -- the base image --------------------------------------------------------------------
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
        r = run(["apt-config", "dump", f"Acquire::{scheme}::Proxy"], check=False)
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
    return built_once(tarball, lambda path: _debootstrap(suite, path))


def _debootstrap(suite: str, tarball: Path) -> None:
    mirror = debian_mirror()
    work = Path(tempfile.mkdtemp(prefix=f"{suite}-", dir=tarball.parent))
    try:
        t0 = time.monotonic()
        root = work / "rootfs"
        include = "--include=" + ",".join(BASE_PACKAGES)
        env = dict(os.environ, **_apt_proxy_env())
        run([PACKAGES["debootstrap"], "--variant=minbase", include, suite, root, mirror], env=env)
        log.info("debootstrap %s from %s in %.1fs", suite, mirror, time.monotonic() - t0)
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
        run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", work / "rootfs.tar", "."])
        os.replace(work / "rootfs.tar", tarball)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def ensure_base_image(python: str, engine: Engine) -> str:
    """Make sure ``base_image_tag(python)`` exists in ``engine``; return the tag.

    Costs nothing if the engine already has it (same recipe label), a ``docker import``
    (~3 s) if only the cached tarball exists, and a debootstrap (~40-60 s) otherwise.
    """
    tag = base_image_tag(python)
    tarball = rootfs_tarball(python)
    recipe = tarball.stem.rsplit("-", 1)[1]
    label = '{{index .Config.Labels "%s"}}' % RECIPE_LABEL
    have = engine.docker("image", "inspect", "--format", label, tag, check=False)
    if have.returncode == 0 and have.stdout.strip() == recipe:
        return tag
    t0 = time.monotonic()
    changes = ["ENV LANG=C.UTF-8", 'CMD ["python3"]', f"LABEL {RECIPE_LABEL}={recipe}"]
    engine.docker("import", *(arg for change in changes for arg in ("--change", change)), tarball, tag)
    log.info("docker import %s in %.1fs", tag, time.monotonic() - t0)
    return tag


def base_image(python: str, engine: Engine, official: str) -> str:
    """Where the engine neither has nor can pull ``official``: the Debian-made base image, made
    as root only, with debootstrap installed when missing."""
    if os.geteuid() != 0:
        raise RuntimeError(
            f"the engine neither has nor can pull {official}, and only root can make the "
            "Debian-made base image: pull it, or set APPSTACK_BASE_IMAGE to an image "
            "with Python " + official.split(":")[1].split("-")[0]
        )
    ensure_packages(("debootstrap",))
    return ensure_base_image(python, engine)
