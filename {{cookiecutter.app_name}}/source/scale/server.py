"""gunicorn's side of the platform: its worker class, its error answers and the metrics files.

gunicorn.conf.py uses what is here; it runs in gunicorn's master, so this module imports
gunicorn and the standard library only, never Flask or the application (see scale/__init__.py).
prometheus_client is imported only when a worker has exited, by then long after every fork, or
in a worker (/metrics).
"""

import atexit
import contextlib
import fcntl
import glob
import json
import logging
import os
import shutil
import struct
import sys
import tempfile
import time

from gunicorn import util
from gunicorn.arbiter import Arbiter
from gunicorn.workers import gthread

from . import NOT_WIRED, wired_in_this_process
from .jsonlog import without_query

# --- the worker ----------------------------------------------------------------------------


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's threaded worker (docs/configuration.md, "Workers and slow clients" says why),
    which takes no connection while all its threads are busy, and answers the connections still
    queued on the listening socket when it stops.

    gunicorn's own worker accepts every connection it can and queues it for a thread: one whose
    threads all hold slow clients (bodies sent a byte at a time) still takes the probes and lets
    them wait for a thread, past their timeout. This one stops accepting while its threads are
    all busy, so that a new connection goes to a worker with a free thread, or waits in the
    listening socket's queue for the first thread that frees.

    gunicorn stops accepting at SIGTERM and closes the listening socket when the last worker
    exits: the kernel then resets every connection that was queued on it, requests already
    sent included. Taken here, they are answered like any other, within the graceful timeout.
    A worker that restarts alone (--max-requests) does the same, while the master and the
    other workers go on listening.
    """

    # Connections handed to the thread pool and not yet back: the busy threads, and those
    # waiting for one. Changed by the worker's main thread only (gunicorn calls enqueue_req and
    # finish_request there).
    busy = 0

    def saturated(self):
        """Whether every thread is busy: a connection accepted now would wait for one."""
        return self.alive and self.busy >= self.cfg.threads

    def enqueue_req(self, conn):
        self.busy += 1
        super().enqueue_req(conn)
        if self.saturated():
            self.set_accept_enabled(False)

    def finish_request(self, conn, fs):
        # gunicorn's loop then asks set_accept_enabled(True) again: accepted, now that one is free.
        self.busy -= 1
        super().finish_request(conn, fs)

    def set_accept_enabled(self, enabled):
        enabled = enabled and not self.saturated()
        stopping = not enabled and not self.alive
        if stopping:
            for listener in self.sockets:
                while self.accept_queued(listener):
                    pass
        super().set_accept_enabled(enabled)
        if stopping:
            # This worker's hold on the listening socket goes now, not when its last request is
            # done: once every process has let go, a new connection is refused, not queued to
            # be reset at the end.
            for listener in self.sockets:
                listener.close()

    def accept_queued(self, listener):
        """Take one connection queued on ``listener`` for the thread pool; False when none is left."""
        listener.setblocking(False)
        try:
            client, address = listener.accept()
        except OSError:  # none queued (EAGAIN), or the listener is closed already
            return False
        self.nr_conns += 1
        client.setblocking(True)
        self.enqueue_req(gthread.TConn(self.cfg, client, address, listener.getsockname()))
        return True


def refuse_without_the_platform(worker):
    """gunicorn's post_worker_init, once the worker has loaded the app: a create_app() that
    never called ``scale.init_app(app)`` (a project made before 2.0.0 and updated without that
    release's hand work) would be served without /metrics, request IDs or limits, and look
    healthy. The first worker to find it logs why, in one error line, and exits with gunicorn's
    "App failed to load." status, on which gunicorn stops the whole server; the others exit
    quietly (a second such status would make gunicorn's master stop with a traceback)."""
    if wired_in_this_process():
        return
    if first_to_refuse():
        worker.log.error(NOT_WIRED)
        sys.exit(Arbiter.APP_LOAD_ERROR)
    sys.exit(0)


# In the metrics directory: a worker has refused to serve, and stopped the server.
REFUSED = "refused"


def first_to_refuse(path=None):
    """Whether no other worker of this server has refused to serve yet (it marks the server's
    metrics directory; without one, each worker is the first)."""
    path = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return True
    try:
        os.close(os.open(os.path.join(path, REFUSED), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    except OSError:  # no such directory: nothing to tell the others by
        return True
    return True


# --- errors gunicorn answers itself --------------------------------------------------------


def write_json_error(sock, status_int, reason, mesg):
    """gunicorn's answer to a request it cannot parse (a bad request line, method or version,
    headers too large, a bad chunked body), as JSON like every answer of the application."""
    body = json.dumps({"error": reason, "message": without_query(mesg)}).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nX-Content-Type-Options: nosniff\r\n\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)


# gunicorn writes these answers with util.write_error, an HTML page, and has no setting for
# them: its workers call the function through the module, so replacing it here (the master,
# before any fork) changes every worker's answers.
util.write_error = write_json_error


# --- the metrics directory -----------------------------------------------------------------

# The merged counts of the workers that have exited, one file per metric type.
DEAD = "dead"
# The types whose counts add up across processes; a gauge of a dead process means nothing.
ADDED_UP = ("counter", "histogram", "summary")
# Held shared by each /metrics while it reads the directory, exclusive by the master while it
# moves a dead worker's counts into the totals: a scrape sees them before or after, never
# twice (the totals would go up, then down, which Prometheus reads as a reset) nor not at all.
LOCK = "merge.lock"
# How long the master waits for scrapes in progress before it leaves a dead worker's files
# for the next exit: its main loop (signals, restarting workers) waits meanwhile.
MERGE_WAIT = 0.5
# What reading a metrics file that is not whole raises: prometheus_client's parser on a file
# cut short (a worker killed while it made it) or damaged.
UNREADABLE = (OSError, ValueError, RuntimeError, struct.error)

# {metrics directory: pids of exited workers whose files are not merged yet}
_unmerged = {}


def make_metrics_dir():
    """A new, empty metrics directory for this server's workers, in PROMETHEUS_MULTIPROC_DIR
    (which they inherit). Called once the server is bound and about to fork, so a server that
    never gets that far leaves no directory behind; removed when this process (the master)
    exits, however it ends short of SIGKILL. Not in gunicorn's on_exit hook: gunicorn skips it
    when a worker fails to boot."""
    path = tempfile.mkdtemp(prefix="prometheus-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    atexit.register(remove_metrics_dir, path, os.getpid())
    return path


def remove_metrics_dir(path, owner):
    """Remove ``path`` if this is the process ``owner`` that made it: the workers, forked from
    it, inherit its exit handlers too."""
    if os.getpid() == owner:
        shutil.rmtree(path, ignore_errors=True)


def read_values(filename):
    """[(key, value, timestamp)] of one of prometheus_client's metrics files, read whole; one of
    UNREADABLE when it is not whole (empty while its worker makes it, cut short, damaged)."""
    from prometheus_client.mmap_dict import MmapedDict

    values = list(MmapedDict.read_all_values_from_file(filename))
    for key, *_ in values:
        if not isinstance(json.loads(key), list):  # what the collector parses each key as
            raise ValueError(f"not a metric's key: {key[:80]!r}")
    return [(key, value, timestamp) for key, value, timestamp, _ in values]


def write_values(filename, values):
    """Write {key: (value, timestamp)} to ``filename`` in prometheus_client's format
    (prometheus_client/mmap_dict.py): the bytes used and 4 of padding, then for each value the
    length of its key, the key padded to a multiple of 8 bytes with the length, the value and
    its timestamp. Written with plain writes, not through a memory map: a full disk is an
    OSError here, where a memory map would kill the process (SIGBUS)."""
    entries = []
    for key, (value, timestamp) in values.items():
        encoded = key.encode("utf-8")
        padded = encoded + b" " * (8 - (len(encoded) + 4) % 8)
        entries.append(struct.pack(f"i{len(padded)}sdd", len(encoded), padded, value, timestamp))
    body = b"".join(entries)
    with open(filename, "wb") as out:
        out.write(struct.pack("ii", 8 + len(body), 0) + body)


def collect(path):
    """The metrics of every readable file in ``path``, added up (what /metrics serves), read
    while no dead worker's counts are being moved. A file that is not whole is left out: a
    worker's first file while the worker makes it (it holds no count yet), or a damaged one,
    whose counts the master drops when its worker exits (worker_exited), so they are never
    served and then taken back."""
    from prometheus_client.multiprocess import MultiProcessCollector

    with _locked(path, fcntl.LOCK_SH):
        files = []
        for filename in glob.glob(os.path.join(path, "*.db")):
            try:
                read_values(filename)
            except UNREADABLE:
                continue
            files.append(filename)
        return MultiProcessCollector.merge(files, accumulate=True)


def worker_exited(pid, path=None, log=None, live=()):
    """Fold a dead worker's counts into the "dead" files and delete its own, so that the
    directory holds at most the live workers' files and one more per type however many workers
    restart. Counters and histograms add up, so the totals /metrics serves do not go down
    (Prometheus would take a drop for a restart of the service). Gauges of a dead process mean
    nothing: its gauge files are deleted.

    gunicorn's master calls it (gunicorn.conf.py's child_exit), and nothing here may stop the
    master: a file it cannot read loses that worker's counts alone, which were never served
    (collect leaves such a file out), and says so in the log; anything else (scrapes that hold
    the directory longer than MERGE_WAIT, a full disk) leaves the files for the next worker's
    exit, and they count as a live worker's meanwhile. ``live``: the pids of the workers running
    now, whose files are theirs (a pid used again)."""
    path = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    log = log or logging.getLogger("gunicorn.error")
    unmerged = _unmerged.setdefault(path, set())
    unmerged.add(pid)
    unmerged.difference_update(live)
    pids = sorted(unmerged)
    try:
        merged = merge_dead_workers(path, pids, log)
    except Exception:  # never out of gunicorn's main loop: it would stop the server
        log.exception("metrics of exited workers %s: merged at a later exit", pids)
        return
    if merged:
        unmerged.difference_update(pids)
    else:
        log.warning("metrics of exited workers %s: merged at a later exit (scrapes held the directory)", pids)


def merge_dead_workers(path, pids, log):
    """Move the counts of the exited workers ``pids`` into the "dead" files: each total made
    in a new file, then, with the lock held, put in the old one's place and the workers' files
    deleted, so that a scrape sees the counts either in those files or in the totals. False if
    the lock stayed held for MERGE_WAIT seconds: nothing changed."""
    replacements, deleted = [], []
    for kind in ADDED_UP:
        sources = [name for pid in pids if os.path.exists(name := os.path.join(path, f"{kind}_{pid}.db"))]
        if not sources:
            continue
        totals_file = os.path.join(path, f"{kind}_{DEAD}.db")
        totals = {}
        for source in [totals_file, *sources] if os.path.exists(totals_file) else sources:
            try:
                values = read_values(source)
            except UNREADABLE as error:
                log.error(
                    "metrics lost: %s is not whole (%s: %s); its counts were never served",
                    os.path.basename(source),
                    type(error).__name__,
                    error,
                )
                values = []
            for key, value, timestamp in values:
                totals[key] = (totals.get(key, (0.0, 0.0))[0] + value, timestamp)
        new_totals = os.path.join(path, f".{kind}_{DEAD}.new")  # not *.db, which /metrics reads
        write_values(new_totals, totals)
        replacements.append((new_totals, totals_file))
        deleted += sources
    deleted += [name for pid in pids for name in glob.glob(os.path.join(path, f"gauge_*_{pid}.db"))]
    if not deleted:
        return True
    with _locked(path, fcntl.LOCK_EX, MERGE_WAIT) as locked:
        if locked:
            for new_totals, totals_file in replacements:
                os.replace(new_totals, totals_file)
            for name in deleted:
                os.remove(name)
            return True
    for new_totals, _ in replacements:
        os.remove(new_totals)
    return False


@contextlib.contextmanager
def _locked(path, operation, wait=None):
    """Hold the directory's lock, shared or exclusive, as long as the block runs: True; False
    if it was not free within ``wait`` seconds (None: wait as long as it takes). No directory,
    nothing to hold still: True."""
    try:
        descriptor = os.open(os.path.join(path, LOCK), os.O_RDWR | os.O_CREAT, 0o600)
    except FileNotFoundError:
        yield True
        return
    try:
        yield _lock(descriptor, operation, wait)
    finally:
        os.close(descriptor)  # and with it the lock


def _lock(descriptor, operation, wait):
    if wait is None:
        fcntl.flock(descriptor, operation)
        return True
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(descriptor, operation | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.005)
