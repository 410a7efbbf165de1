"""gunicorn's side of the platform (scale/server.py): its metrics directory and error answers.
The worker itself is tested under a real gunicorn by the template's suite."""

import json
import logging
import os
import socket
import tempfile
import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.mmap_dict import MmapedDict, mmap_key
from prometheus_client.multiprocess import MultiProcessCollector

import scale
from scale import server

REQUESTS_KEY = mmap_key("http_requests", "http_requests_total", ["method"], ["GET"], "Requests.")


def write_worker_files(path, pid, count):
    """The files a worker ``pid`` leaves after counting ``count`` requests: prometheus_client's
    own format, a counter and a gauge (a team's, in "all" mode)."""
    counter = MmapedDict(str(path / f"counter_{pid}.db"))
    counter.write_value(REQUESTS_KEY, float(count), 0.0)
    counter.close()
    gauge = MmapedDict(str(path / f"gauge_all_{pid}.db"))
    gauge.write_value(mmap_key("busy", "busy", [], [], "Busy."), 1.0, 0.0)
    gauge.close()


def total_requests(path):
    registry = CollectorRegistry()
    MultiProcessCollector(registry, str(path))
    text = generate_latest(registry).decode()
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith("http_requests_total"))


def test_restarted_workers_leave_a_bounded_number_of_files_and_totals_that_never_drop(tmp_path):
    write_worker_files(tmp_path, 1, 5)  # a live worker
    restarts = 300
    for pid in range(1000, 1000 + restarts):
        write_worker_files(tmp_path, pid, 2)
        server.worker_exited(pid, str(tmp_path))
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "counter_1.db",
        "counter_dead.db",
        "gauge_all_1.db",
        server.LOCK,
    ]
    assert total_requests(tmp_path) == 5 + 2 * restarts


def test_the_totals_file_is_prometheus_clients_own_format(tmp_path):
    values = {REQUESTS_KEY: (7.0, 0.0), mmap_key("h", "h_sum", ["endpoint"], ["/é"], "H."): (0.25, 1.5)}
    server.write_values(str(tmp_path / "counter_dead.db"), values)
    read = MmapedDict.read_all_values_from_file(str(tmp_path / "counter_dead.db"))
    assert {key: (value, timestamp) for key, value, timestamp, _ in read} == values
    assert total_requests(tmp_path) == 7


def not_whole(path, pid):
    """A worker's files as the master may find them: its counter file empty (the worker was
    killed while it made it) and its histogram file cut short of what its header says it holds."""
    (path / f"counter_{pid}.db").write_bytes(b"")
    histogram = MmapedDict(str(path / f"histogram_{pid}.db"))
    histogram.write_value(mmap_key("h", "h_count", [], [], "H."), 3.0, 0.0)
    histogram.close()
    with open(path / f"histogram_{pid}.db", "r+b") as cut:
        cut.truncate(20)


def test_a_dead_workers_files_that_are_not_whole_lose_its_counts_alone_and_say_so(caplog, tmp_path):
    write_worker_files(tmp_path, 1, 5)  # a live worker
    write_worker_files(tmp_path, 2, 2)
    server.worker_exited(2, str(tmp_path))
    not_whole(tmp_path, 3)
    with caplog.at_level(logging.ERROR, logger="gunicorn.error"):
        server.worker_exited(3, str(tmp_path))  # gunicorn's master: what it raises stops the server
    lost = [record.getMessage() for record in caplog.records]
    assert len(lost) == 2 and all(message.startswith("metrics lost: ") for message in lost)
    assert "counter_3.db" in lost[0] and "histogram_3.db" in lost[1]
    assert not list(tmp_path.glob("*_3.db"))
    write_worker_files(tmp_path, 4, 1)
    server.worker_exited(4, str(tmp_path))  # and the next worker's counts move as before
    assert total_requests(tmp_path) == 5 + 2 + 1


def test_a_merge_that_cannot_write_leaves_the_counts_in_the_workers_files(caplog, monkeypatch, tmp_path):
    write_worker_files(tmp_path, 1, 5)
    write_worker_files(tmp_path, 2, 2)

    def disk_full(filename, values):
        raise OSError(28, "No space left on device")

    with monkeypatch.context() as full:
        full.setattr(server, "write_values", disk_full)
        server.worker_exited(2, str(tmp_path))
    assert "No space left on device" in caplog.text and "merged at a later exit" in caplog.text
    assert (tmp_path / "counter_2.db").exists() and total_requests(tmp_path) == 7
    server.worker_exited(3, str(tmp_path))
    assert not (tmp_path / "counter_2.db").exists() and total_requests(tmp_path) == 7


def test_metrics_leave_out_a_file_a_worker_is_still_making(client, monkeypatch, tmp_path):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    write_worker_files(tmp_path, 1, 5)
    not_whole(tmp_path, 2)
    response = client.get("/metrics")
    assert response.status_code == 200
    assert 'http_requests_total{method="GET"} 5.0' in response.get_data(as_text=True)


def test_a_dead_workers_counts_move_while_no_scrape_reads_so_each_is_served_once(client, monkeypatch, tmp_path):
    """A scrape reads the files one after the other. Were a dead worker's counts moved into the
    totals meanwhile, it would count them twice (the totals after, the worker's file before) or
    not at all, and the next scrape's totals would differ: Prometheus takes a drop for a reset.
    Here a scrape stops after its first file, and the master's merge waits for it."""
    from prometheus_client.mmap_dict import MmapedDict as Files

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    monkeypatch.setattr(server, "MERGE_WAIT", 30.0, raising=False)  # waits for the scrape, however slow
    write_worker_files(tmp_path, 1, 5)
    write_worker_files(tmp_path, 2, 2)
    read = Files.read_all_values_from_file
    reading, go = threading.Event(), threading.Event()

    def read_then_wait(filename):
        values = read(filename)
        if threading.current_thread().name == "scrape" and not reading.is_set():
            reading.set()
            assert go.wait(30)
        return values

    monkeypatch.setattr(Files, "read_all_values_from_file", staticmethod(read_then_wait))
    scraped = []
    scrape = threading.Thread(target=lambda: scraped.append(client.get("/metrics")), name="scrape")
    scrape.start()
    assert reading.wait(30)
    master = threading.Thread(target=server.worker_exited, args=(2, str(tmp_path)))
    master.start()
    master.join(0.3)
    try:
        assert (tmp_path / "counter_2.db").exists(), "the merge went on while a scrape read"
    finally:
        go.set()
        scrape.join(30)
        master.join(30)
    assert not (tmp_path / "counter_2.db").exists()  # merged once the scrape was done
    text = scraped[0].get_data(as_text=True)
    assert 'http_requests_total{method="GET"} 7.0' in text
    assert 'http_requests_total{method="GET"} 7.0' in client.get("/metrics").get_data(as_text=True)


def test_a_dead_workers_counts_stay_in_its_files_while_scrapes_hold_the_directory(caplog, monkeypatch, tmp_path):
    monkeypatch.setattr(server, "MERGE_WAIT", 0.05)
    write_worker_files(tmp_path, 1, 5)
    write_worker_files(tmp_path, 2, 2)
    with server._locked(str(tmp_path), server.fcntl.LOCK_SH):  # a scrape that takes its time
        server.worker_exited(2, str(tmp_path))
        assert (tmp_path / "counter_2.db").exists() and total_requests(tmp_path) == 7
    assert "merged at a later exit" in caplog.text
    server.worker_exited(3, str(tmp_path), live={1})  # the next exit merges both
    assert sorted(p.name for p in tmp_path.glob("*.db")) == ["counter_1.db", "counter_dead.db", "gauge_all_1.db"]
    assert total_requests(tmp_path) == 7


def test_a_worker_that_wrote_no_metrics_exits_cleanly(tmp_path):
    server.worker_exited(4242, str(tmp_path))
    server.worker_exited(4242)  # and outside gunicorn, without a metrics directory
    assert list(tmp_path.iterdir()) == []


def test_a_pid_used_again_by_a_live_worker_keeps_its_files(monkeypatch, tmp_path):
    monkeypatch.setattr(server, "MERGE_WAIT", 0.05)
    write_worker_files(tmp_path, 7, 3)
    with server._locked(str(tmp_path), server.fcntl.LOCK_SH):
        server.worker_exited(7, str(tmp_path))  # left for later
    # A new worker with the same pid counts on in the same files: they are its own now.
    server.worker_exited(8, str(tmp_path), live={7})
    assert (tmp_path / "counter_7.db").exists() and total_requests(tmp_path) == 3


def test_the_metrics_directory_is_made_for_the_workers_and_removed_by_its_maker_only(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    path = server.make_metrics_dir()
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == path and os.path.isdir(path)
    server.remove_metrics_dir(path, os.getpid() + 1)  # a worker exiting
    assert os.path.isdir(path)
    server.remove_metrics_dir(path, os.getpid())  # the master exiting
    assert list(tmp_path.iterdir()) == []


def test_errors_gunicorn_answers_itself_are_json_without_the_query():
    ours, theirs = socket.socketpair()
    with ours, theirs:
        server.write_json_error(ours, 400, "Bad Request", "Invalid Request Line 'GET /a?token=s3cret HTTP/9.9'")
        head, body = theirs.recv(65536).decode().split("\r\n\r\n", 1)
    assert head.startswith("HTTP/1.1 400 Bad Request\r\n")
    assert "Content-Type: application/json" in head
    assert json.loads(body) == {"error": "Bad Request", "message": "Invalid Request Line 'GET /a HTTP/9.9'"}


def test_gunicorn_answers_with_the_json_error():
    from gunicorn import util

    assert util.write_error is server.write_json_error


@pytest.mark.parametrize(
    "text, expected",
    [
        (
            "Invalid request from ip=10.0.0.1: 'GET /a?token=x HTTP/1.1'",
            "Invalid request from ip=10.0.0.1: 'GET /a HTTP/1.1'",
        ),
        ("Error handling request GET /a/b?x=1&y=2", "Error handling request GET /a/b"),
        ("no query here", "no query here"),
    ],
)
def test_query_strings_are_removed(text, expected):
    assert server.without_query(text) == expected


def test_the_worker_hooks_into_gunicorns_threaded_worker_where_it_accepts_and_stops_accepting():
    # scale.server.ThreadWorker counts its busy threads there, accepts nothing while they are all
    # busy, and takes the queued connections when it stops; a gunicorn that renamed these would
    # quietly lose that (gunicorn 27 has them, and calls them from the worker's main thread).
    from gunicorn.workers import gthread

    assert callable(gthread.ThreadWorker.set_accept_enabled)
    assert callable(gthread.ThreadWorker.enqueue_req)
    assert callable(gthread.ThreadWorker.finish_request)
    assert callable(gthread.TConn)


def test_a_worker_whose_threads_are_all_busy_accepts_nothing_until_one_is_free():
    """Its main thread, as gunicorn 27 runs it: a connection accepted goes to the thread pool
    (enqueue_req), and comes back when its thread is done (finish_request)."""
    from concurrent.futures import Future
    from types import SimpleNamespace

    worker = server.ThreadWorker.__new__(server.ThreadWorker)  # gunicorn's arbiter makes it otherwise
    listening = set()
    worker.poller = SimpleNamespace(register=lambda sock, *_: listening.add(sock), unregister=listening.discard)
    worker.cfg, worker.alive, worker.nr_conns, worker._accepting = SimpleNamespace(threads=2), True, 0, False
    worker.tpool = SimpleNamespace(submit=lambda *_: Future())
    worker.method_queue = SimpleNamespace(defer=lambda *_: None)
    with socket.socket() as listener:
        worker.sockets = [listener]
        worker.set_accept_enabled(True)
        assert listening == {listener}
        connections = [SimpleNamespace(close=lambda graceful=False: None) for _ in range(2)]
        for connection in connections:
            worker.nr_conns += 1
            worker.enqueue_req(connection)
        assert listening == set()  # both threads busy: the next connection goes to another worker
        worker.set_accept_enabled(True)  # what gunicorn's loop asks at each turn
        assert listening == set()
        done = Future()
        done.set_result(False)  # the request answered, the connection closed
        worker.finish_request(connections[0], done)
        worker.set_accept_enabled(True)
        assert listening == {listener}


class Worker:
    """What gunicorn's post_worker_init hook is given, as far as the platform uses it."""

    log = logging.getLogger("test.gunicorn.error")


def test_a_worker_whose_app_never_called_init_app_stops_the_server_saying_why(monkeypatch, caplog, tmp_path):
    monkeypatch.setattr(scale, "_wired_in_this_process", False)
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    with pytest.raises(SystemExit) as exited:
        server.refuse_without_the_platform(Worker())
    assert exited.value.code == 4  # gunicorn's "App failed to load.": the master stops too
    assert [(record.levelname, record.getMessage()) for record in caplog.records] == [("ERROR", scale.NOT_WIRED)]
    assert "scale.init_app(app)" in scale.NOT_WIRED and "CHANGELOG.md" in scale.NOT_WIRED

    # The server's other workers exit quietly: one line says why, and one status stops the server.
    caplog.clear()
    with pytest.raises(SystemExit) as exited:
        server.refuse_without_the_platform(Worker())
    assert exited.value.code == 0 and caplog.records == []

    monkeypatch.setattr(scale, "_wired_in_this_process", True)
    assert server.refuse_without_the_platform(Worker()) is None
    assert caplog.records == []


def test_without_a_metrics_directory_every_worker_is_the_first_to_refuse(monkeypatch, tmp_path):
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    assert server.first_to_refuse() and server.first_to_refuse()
    assert server.first_to_refuse(str(tmp_path / "gone")) and server.first_to_refuse(str(tmp_path / "gone"))
    assert server.first_to_refuse(str(tmp_path)) and not server.first_to_refuse(str(tmp_path))
