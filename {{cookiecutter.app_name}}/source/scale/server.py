"""gunicorn's side of the platform: its worker class, its error answers and the metrics files.

gunicorn.conf.py uses what is here; it runs in gunicorn's master, so this module imports
gunicorn and the standard library only, never Flask or the application (see scale/__init__.py).
prometheus_client is imported only when a worker has exited, by then long after every fork.
"""

import atexit
import glob
import json
import os
import shutil
import sys
import tempfile

from gunicorn import util
from gunicorn.arbiter import Arbiter
from gunicorn.workers import gthread

from . import NOT_WIRED, wired_in_this_process
from .jsonlog import without_query

# --- the worker ----------------------------------------------------------------------------


class ThreadWorker(gthread.ThreadWorker):
    """gunicorn's threaded worker (docs/configuration.md, "Workers and slow clients" says why),
    which also answers the connections still queued on the listening socket when it stops.

    gunicorn stops accepting at SIGTERM and closes the listening socket when the last worker
    exits: the kernel then resets every connection that was queued on it, requests already
    sent included. Taken here, they are answered like any other, within the graceful timeout.
    A worker that restarts alone (--max-requests) does the same, while the master and the
    other workers go on listening.
    """

    def set_accept_enabled(self, enabled):
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


def worker_exited(pid, path=None):
    """Fold a dead worker's counts into the "dead" files and delete its own, so that the
    directory holds at most the live workers' files and one more per type however many workers
    restart. Counters and histograms add up, so the totals /metrics serves do not go down
    (Prometheus would take a drop for a restart of the service). Gauges of a dead process mean
    nothing: its gauge files are deleted."""
    from prometheus_client.mmap_dict import MmapedDict

    path = path or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if not path:
        return
    for kind in ("counter", "histogram", "summary"):
        source = os.path.join(path, f"{kind}_{pid}.db")
        if not os.path.exists(source):
            continue
        merged = MmapedDict(os.path.join(path, f"{kind}_{DEAD}.db"))
        try:
            for key, value, timestamp, _ in MmapedDict.read_all_values_from_file(source):
                merged.write_value(key, merged.read_value(key)[0] + value, timestamp)
        finally:
            merged.close()
        os.remove(source)
    for gauge in glob.glob(os.path.join(path, f"gauge_*_{pid}.db")):
        os.remove(gauge)
