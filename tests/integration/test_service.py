"""The generated Flask service: its own test suite, and real gunicorn on 127.0.0.1."""

import http.client
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest
import yaml
from gunicorn_server import GRACEFUL_TIMEOUT, Gunicorn, wait_until

from tools.helm import helm_binaries
from tools.net import free_port, send_slowly

# A test's own app module, loaded by gunicorn's app factory argument: the generated app with
# a readiness check added as a team would (scale.add_check) and a route that holds a request
# in flight until the test says go. The generated app itself has no such route.
PROBE_APP = """
import os
import time
from pathlib import Path

from flask import request

import scale
from api import create_app

SIGNALS = Path(os.environ["TEST_SIGNALS"])


def create():
    app = create_app()
    scale.add_check(app, "database", lambda: not (SIGNALS / "database-down").exists(), timeout=0.5)

    @app.get("/api/v1/hold")
    def hold():
        (SIGNALS / f"started-{request.args['id']}").write_text(str(os.getpid()))
        while not (SIGNALS / "release").exists():
            time.sleep(0.02)
        return {"held": request.args["id"]}

    return app
"""


def test_generated_test_suite_passes_with_its_coverage_gate(default_project, project_venv, tmp_path):
    # In a copy: the coverage gate writes .coverage and coverage.xml, and other tests read the bake.
    project = shutil.copytree(default_project, tmp_path / default_project.name)
    result = subprocess.run(
        [str(project_venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Required test coverage of 90% reached" in result.stdout
    # The gate measures the team's code alone: the platform's modules are not in the report.
    measured = re.findall(r"^source/(\S+)\.py\s+\d+\s+\d+", result.stdout, re.MULTILINE)  # the report's rows
    assert measured and [module for module in measured if not module.startswith("api/")] == []


def test_the_platform_package_keeps_a_coverage_gate_of_its_own(default_project, project_venv, tmp_path):
    """source/scale/ is the template's: its own tests cover 90 % of it, whatever the team's code
    does (the team's gate measures only `api`)."""
    project = shutil.copytree(default_project, tmp_path / default_project.name)
    gate = ["-o", "addopts=", "--cov=scale", "--cov-branch", "--cov-report=term-missing", "--cov-fail-under=90"]
    result = subprocess.run(
        [str(project_venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider", *gate, "source/scale/tests"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Required test coverage of 90% reached" in result.stdout


# What gunicorn's master runs before it forks: the settings file, then its logging set-up.
MASTER_START = """
import logging.config, runpy, sys
settings = runpy.run_path("gunicorn.conf.py")
logging.config.dictConfig(settings["logconfig_dict"])
logging.getLogger("gunicorn.error").info("master")
application = {"api", "scale", "flask", "werkzeug", "prometheus_client"}
print(sorted(name for name in sys.modules if name.split(".")[0] in application))
"""


def test_gunicorn_master_never_imports_the_application(default_project, project_venv, tmp_path):
    """Each worker imports `api`, the rest of `scale` and Flask itself, so a worker that --reload
    restarts serves edited code: the master reads only the platform's settings table and log
    format, which import nothing but the standard library."""
    result = subprocess.run(
        [str(project_venv / "bin" / "python"), "-c", MASTER_START],
        cwd=default_project / "source",
        env={**os.environ, "TMPDIR": str(tmp_path)},
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    log_line, imported = result.stdout.splitlines()
    assert json.loads(log_line)["message"] == "master"
    assert imported == "['scale', 'scale.jsonlog', 'scale.server', 'scale.settings']"


@pytest.fixture
def serve(default_project, project_venv, tmp_path):
    """serve(env=..., app=..., workers=...) -> a running Gunicorn, killed after the test."""
    servers = []

    def _serve(**kwargs):
        kwargs.setdefault("app_source", PROBE_APP)
        servers.append(Gunicorn(default_project, project_venv, tmp_path / str(len(servers)), **kwargs))
        return servers[-1]

    yield _serve
    for server in servers:
        server.kill()


def test_gunicorn_serves_the_health_endpoints(serve):
    server = serve()
    assert server.get_json("/livez") == (200, {"status": "ok"})
    assert server.get_json("/readyz") == (200, {"status": "ready"})


def test_gunicorn_answers_an_unknown_path_with_json_404(serve):
    status, body = serve().get_json("/does/not/exist")
    assert status == 404
    assert body["error"] == "Not Found"


def test_gunicorn_stops_cleanly_on_sigterm_and_logs_json(serve):
    server = serve()
    server.request("GET", "/api/v1/hello?name=probe")
    records = server.stop()
    assert server.process.returncode == 0
    assert any(r["logger"] == "gunicorn.access" and "/api/v1/hello" in r["message"] for r in records)
    assert any(r["message"] == "greeted" for r in records)
    assert any("Shutting down" in r["message"] for r in records)


# --- request IDs and the access log ----------------------------------------------------


def test_request_id_is_returned_and_in_the_access_and_application_logs_without_the_query(serve):
    server = serve()
    status, headers, _ = server.request(
        "GET", "/api/v1/hello?name=Ada&access_token=s3cr3t-t0ken", headers={"X-Request-Id": "edge-7f3a"}
    )
    assert status == 200 and headers["X-Request-Id"] == "edge-7f3a"
    _, headers, _ = server.request("GET", "/api/v1/hello", headers={"X-Request-Id": "not valid!"})
    made = headers["X-Request-Id"]
    assert made != "not valid!" and made.isalnum()
    records = server.stop()
    assert "s3cr3t-t0ken" not in "".join(server.lines)
    access = [r for r in records if r["logger"] == "gunicorn.access"]
    greeted = [r for r in records if r["message"] == "greeted"]
    # Two workers share stdout: their lines may come in either order.
    hello = [r for r in access if '"GET /api/v1/hello HTTP/1.1" 200' in r["message"]]
    assert sorted(r["request_id"] for r in hello) == sorted(["edge-7f3a", made])
    assert sorted(r["request_id"] for r in greeted) == sorted(["edge-7f3a", made])


# --- limits and headers ------------------------------------------------------------------


def test_limits_answer_json_413_and_400_never_500(serve):
    server = serve(env={"MAX_CONTENT_LENGTH": "1000"})
    json_body = {"Content-Type": "application/json"}
    cases = {
        "too large": ('{"name": "' + "x" * 2000 + '"}', 413),
        "malformed": ('{"name":', 400),
        "deeply nested": ("[" * 900, 400),
        "well formed": ('{"name": "Ada"}', 200),
    }
    for case, (body, expected) in cases.items():
        status, headers, text = server.request("POST", "/api/v1/hello", body=body, headers=json_body)
        assert status == expected, (case, text)
        assert headers["Content-Type"] == "application/json", case
        assert headers["X-Content-Type-Options"] == "nosniff", case
    # Nesting deeper than the parser recurses, within the default 1 MiB.
    deep = serve(env={})
    status, _, text = deep.request("POST", "/api/v1/hello", body="[" * 200_000, headers=json_body)
    assert status == 400, text
    assert not any("Traceback" in line for line in server.lines + deep.lines)


# --- configuration errors ----------------------------------------------------------------


@pytest.mark.parametrize(
    "name, value, accepted",
    [
        ("GUNICORN_WORKERS", "many", "a whole number from 1 to 64"),
        ("LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("MAX_CONTENT_LENGTH", "1MB", "a whole number of bytes"),
    ],
)
def test_a_bad_setting_stops_gunicorn_with_one_line(default_project, project_venv, tmp_path, name, value, accepted):
    result = subprocess.run(
        [str(project_venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{free_port()}"],
        cwd=default_project / "source",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TMPDIR": str(tmp_path), name: value},
    )
    assert result.returncode != 0
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"configuration error: {name}={value!r} is not valid: expected {accepted}")
    assert "Traceback" not in result.stdout + result.stderr
    assert list(tmp_path.iterdir()) == []  # no metrics directory left behind


# --- a create_app() without the platform ----------------------------------------------------

# What such a factory looked like before 2.0.0: its own /livez, which the probes take for health.
OWN_LIVEZ = '    app.add_url_rule("/livez", "livez", lambda: {"status": "ok"})\n'


def test_a_create_app_without_scale_init_app_fails_the_platforms_test_and_gunicorn_refuses_it(
    default_project, project_venv, tmp_path
):
    """A project made before 2.0.0 that took a later release with plain `cruft update` has
    source/scale/ but a create_app() that never calls scale.init_app(app): the platform's test
    of the team's app fails with a message naming the call and 2.0.0's "By hand" (not a
    KeyError), and gunicorn stops instead of serving without /metrics and request IDs."""
    project = shutil.copytree(default_project, tmp_path / default_project.name)
    factory = project / "source" / "api" / "__init__.py"
    text = factory.read_text()
    assert text.count("    scale.init_app(app)\n") == 1
    factory.write_text(text.replace("    scale.init_app(app)\n", OWN_LIVEZ))
    python = project_venv / "bin" / "python"
    message = "api.create_app() does not call scale.init_app(app), so the service runs without the platform"
    by_hand = 'add that call to create_app(), as flask-appstack\'s CHANGELOG.md says for release 2.0.0, under "By hand"'

    tested = subprocess.run(
        [str(python), "-m", "pytest", "-p", "no:cacheprovider", "--no-cov", "source/scale/tests"],
        cwd=project,
        capture_output=True,
        text=True,
    )
    assert tested.returncode == 1, tested.stdout + tested.stderr
    assert "FAILED source/scale/tests/test_wiring.py::test_the_projects_app_has_the_platform_wired_in" in tested.stdout
    assert " 1 failed, " in tested.stdout
    assert f"\n{message}" in tested.stdout and by_hand in tested.stdout
    assert "KeyError" not in tested.stdout and "Traceback" not in tested.stdout

    temporary = tmp_path / "tmp"
    temporary.mkdir()
    served = subprocess.run(
        [str(project_venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{free_port()}", "--workers", "3"],
        cwd=project / "source",
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "TMPDIR": str(temporary)},
    )
    assert served.returncode == 4, served.stdout + served.stderr  # gunicorn's "App failed to load."
    records = [json.loads(line) for line in served.stdout.splitlines()]
    errors = [record["message"] for record in records if record["level"] == "ERROR"]
    assert errors[0].startswith(message) and errors[0].endswith(by_hand)
    assert errors[1:] == [errors[1], "Shutting down: Master", "Reason: App failed to load."], errors
    assert errors[1].startswith("Worker (pid:") and errors[1].endswith(") exited with code 4.")
    assert "Traceback" not in served.stdout + served.stderr
    assert list(temporary.iterdir()) == []  # the metrics directory went with the server


# --- metrics -----------------------------------------------------------------------------


def hold(server, ids):
    """Send one /api/v1/hold per id from its own thread; return (threads, results)."""
    results = {}

    def send(name):
        try:
            results[name] = server.request("GET", f"/api/v1/hold?id={name}")[0]
        except OSError as error:
            results[name] = error

    threads = [threading.Thread(target=send, args=(name,)) for name in ids]
    for thread in threads:
        thread.start()
    wait_until(lambda: all((server.signals / f"started-{n}").exists() for n in ids), f"requests {ids} in flight")
    return threads, results


def sample(metrics_text, name, **labels):
    """The value of one sample of a Prometheus text exposition; 0 when absent."""
    for line in metrics_text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_count_every_request_whichever_worker_answers(serve):
    # One connection a worker at a time: two requests held at once, each of the two workers is
    # answering one.
    server = serve(app="probe_app:create()", args=["--worker-connections", "1"])
    threads, _ = hold(server, ["a", "b"])
    pids = {(server.signals / f"started-{n}").read_text() for n in ("a", "b")}
    assert len(pids) == 2
    (server.signals / "release").write_text("")
    for thread in threads:
        thread.join()
    requests = 25
    for _ in range(requests):
        assert server.request("GET", "/api/v1/hello")[0] == 200
    server.request("GET", "/no/such/path")
    for _ in range(3):  # whichever worker answers /metrics, the totals are the same
        status, headers, text = server.request("GET", "/metrics")
        assert status == 200 and headers["Content-Type"].startswith("text/plain")
        assert sample(text, "http_requests_total", endpoint="/api/v1/hello", method="GET", status="200") == requests
        assert sample(text, "http_requests_total", endpoint="/api/v1/hold", status="200") == 2
        assert sample(text, "http_requests_total", endpoint="unmatched", status="404") == 1
        assert sample(text, "http_request_duration_seconds_count", endpoint="/api/v1/hello") == requests
    # Each start has its own metrics directory under TMPDIR, removed on exit.
    (metrics_dir,) = server.tmpdir.glob("prometheus-*")
    assert {p.name.split("_")[0] for p in metrics_dir.iterdir()} >= {"counter", "histogram"}
    server.stop()
    assert server.process.returncode == 0
    assert not metrics_dir.exists()


# --- readiness ---------------------------------------------------------------------------


def test_a_failing_registered_check_makes_readyz_503_without_internals(serve):
    server = serve(app="probe_app:create()")
    assert server.get_json("/readyz") == (200, {"status": "ready"})
    (server.signals / "database-down").write_text("")
    status, body = server.get_json("/readyz")
    assert (status, body) == (503, {"status": "unavailable", "failed": ["database"]})
    records = server.stop()
    assert any(r["message"] == "readiness check failed" and r["check"] == "database" for r in records)


# --- graceful shutdown -------------------------------------------------------------------


def test_sigterm_lets_requests_in_flight_finish(serve):
    server = serve(app="probe_app:create()", workers=3)
    ids = ["one", "two", "three"]
    threads, results = hold(server, ids)
    server.process.send_signal(signal.SIGTERM)
    wait_until(lambda: any("Handling signal: term" in line for line in server.lines), "gunicorn took SIGTERM")
    (server.signals / "release").write_text("")
    for thread in threads:
        thread.join(timeout=GRACEFUL_TIMEOUT + 10)
    failed = {name: result for name, result in results.items() if result != 200}
    assert failed == {} and len(results) == len(ids)
    server.stop()
    assert server.process.returncode == 0


# --- what a client controls (issue 19) ---------------------------------------------------


def split_response(raw):
    """(status, headers text, body) of a raw HTTP/1.1 response."""
    head, _, body = raw.partition(b"\r\n\r\n")
    return int(head.split()[1]), head.decode("latin-1"), body


@pytest.mark.parametrize(
    "request_head",
    [
        b"GET /api/v1/hello?access_token=s3cr3t HTTP/9.9\r\nHost: x\r\n\r\n",
        b"get /api/v1/hello?access_token=s3cr3t HTTP/1.1\r\nHost: x\r\n\r\n",
        b"GET /api/v1/hello?access_token=s3cr3t HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n",
        b"GET /api/v1/hello?access_token=s3cr3t HTTP/1.1\r\nHost: x\r\n" + b"X-A: b\r\n" * 120 + b"\r\n",
        # gunicorn's warning quotes this request line, query and all
        b"GET /api/v1/hello?access_token=s3cr3t\x01 HTTP/1.1\r\nHost: x\r\n\r\n",
    ],
    ids=["HTTP/9.9", "lowercase method", "oversized header", "too many headers", "control character"],
)
def test_requests_gunicorn_cannot_parse_answer_json_and_log_no_query(serve, request_head):
    server = serve()
    status, head, body = split_response(server.raw(request_head))
    assert 400 <= status < 500
    assert "Content-Type: application/json" in head
    assert json.loads(body)["error"]
    server.stop()
    assert "s3cr3t" not in "".join(server.lines) + body.decode()


def chunked_request(body_chunks, path="/api/v1/hello"):
    """A chunked POST that asks the server to close after its answer (`raw` reads until it does;
    a kept-alive connection would hold it for gunicorn's keepalive)."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body_chunks


def test_a_chunked_body_is_held_to_the_limit_and_a_malformed_one_is_a_json_400(serve):
    server = serve(env={"MAX_CONTENT_LENGTH": "100"})
    padded = b'{"name": "Ada"}' + b" " * 200  # valid JSON if cut at the limit
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(padded[i : i + 50]), padded[i : i + 50]) for i in range(0, 215, 50))
    status, head, body = split_response(server.raw(chunked_request(chunks + b"0\r\n\r\n")))
    assert status == 413 and "application/json" in head, body
    assert "100 bytes" in json.loads(body)["message"]
    sized = '{"name": "Ada"}' + " " * 200
    assert server.request("POST", "/api/v1/hello", body=sized, headers={"Content-Type": "application/json"})[0] == 413
    for malformed in (b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n"):
        status, head, body = split_response(server.raw(chunked_request(malformed)))
        assert status == 400 and "application/json" in head, body
    fine = b'{"name": "Ada"}'
    status, _, body = split_response(server.raw(chunked_request(b"%x\r\n%s\r\n0\r\n\r\n" % (len(fine), fine))))
    assert status == 200 and json.loads(body) == {"message": "Hello, Ada!"}
    server.stop()
    assert not any("Traceback" in line or '"level": "ERROR"' in line for line in server.lines)


def test_random_methods_do_not_grow_metrics(serve):
    server = serve(workers=1)
    size_before = len(server.request("GET", "/metrics")[2])
    letters = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    for _ in range(300):
        method = "".join(random.choices(letters, k=12))
        server.raw(f"{method} /api/v1/hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    text = server.request("GET", "/metrics")[2]
    # Flask answers an unknown method with a 405 before any route matches: "unmatched".
    assert sample(text, "http_requests_total", endpoint="unmatched", method="other", status="405") == 300
    assert len(text) < size_before + 4000
    assert {p.name for p in server.metrics_dirs()[0].iterdir()} <= {
        "counter_dead.db",
        "histogram_dead.db",
        "merge.lock",
    } | {f"{kind}_{pid}.db" for kind in ("counter", "histogram") for pid in worker_pids(server)}


def worker_pids(server):
    """The pids of the workers gunicorn booted, from its log."""
    return {line.split("pid: ")[1].split('"')[0] for line in server.lines if "Booting worker with pid" in line}


def test_restarted_workers_leave_no_files_and_their_counts_stay(serve):
    server = serve(workers=1, args=["--max-requests", "1"])  # the worker restarts after a request or so
    restarts, sent = 10, 0
    for _ in range(200):
        if len(worker_pids(server)) > restarts:
            break
        assert server.request("GET", "/api/v1/hello")[0] == 200
        sent += 1
        time.sleep(0.05)
    assert len(worker_pids(server)) > restarts
    (metrics_dir,) = server.metrics_dirs()
    files = {p.name for p in metrics_dir.glob("*.db")}
    assert len(files) <= 4, files  # the live worker's two, and the dead ones' totals
    text = server.request("GET", "/metrics")[2]
    assert sample(text, "http_requests_total", endpoint="/api/v1/hello", method="GET", status="200") == sent
    server.stop()
    assert server.metrics_dirs() == []


def test_sighup_keeps_the_metrics_directory_and_the_counts(serve):
    server = serve(workers=1)
    for _ in range(3):
        server.request("GET", "/api/v1/hello")
    before = server.metrics_dirs()
    server.process.send_signal(signal.SIGHUP)
    wait_until(lambda: len(worker_pids(server)) >= 2 and server.answers(), "new workers after SIGHUP")
    assert server.metrics_dirs() == before
    server.request("GET", "/api/v1/hello")
    text = server.request("GET", "/metrics")[2]
    assert sample(text, "http_requests_total", endpoint="/api/v1/hello", method="GET", status="200") == 4
    server.stop()
    assert server.metrics_dirs() == []


def hello_total(server):
    """(status of /metrics, its count of GET /api/v1/hello answered 200)."""
    status, _, text = server.request("GET", "/metrics")
    return status, sample(text, "http_requests_total", endpoint="/api/v1/hello", method="GET", status="200")


def replace_with_what_is_not_whole(metrics_dir, pid):
    """Give worker ``pid`` the files the master may find when it dies: its counter file empty
    (killed while it made it) and its histogram file cut short of what its header says. New
    files in place of its own, which the worker still has mapped (cutting those would kill it)."""
    counter, histogram = metrics_dir / f"counter_{pid}.db", metrics_dir / f"histogram_{pid}.db"
    head = histogram.read_bytes()[:20] if histogram.exists() else (64).to_bytes(4, "little") + bytes(16)
    for path, content in ((counter, b""), (histogram, head)):
        path.with_suffix(".new").write_bytes(content)
        os.replace(path.with_suffix(".new"), path)


def alive(pid):
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    return True


def test_a_worker_killed_with_its_metrics_files_not_whole_leaves_the_server_serving(serve):
    server = serve(workers=2)
    for _ in range(10):
        assert server.request("GET", "/api/v1/hello")[0] == 200
    (metrics_dir,) = server.metrics_dirs()
    victim, other = sorted(worker_pids(server))
    replace_with_what_is_not_whole(metrics_dir, victim)
    os.kill(int(victim), signal.SIGKILL)
    wait_until(lambda: len(worker_pids(server)) == 3 or server.process.poll() is not None, "a worker in its place")
    assert server.process.poll() is None, "".join(server.lines[-5:])  # the master lives on
    assert alive(other) and server.answers()
    lost = [line for line in server.lines if "metrics lost: " in line]
    assert any(f"counter_{victim}.db" in line for line in lost) and any(
        f"histogram_{victim}.db" in line for line in lost
    )
    # A worker making its first file, and a damaged one: /metrics serves the others' counts.
    replace_with_what_is_not_whole(metrics_dir, 999999)
    before = hello_total(server)
    assert before[0] == 200
    for _ in range(6):
        assert hello_total(server) == before
    assert server.request("GET", "/api/v1/hello")[0] == 200
    assert hello_total(server) == (200, before[1] + 1)
    server.stop()
    assert server.process.returncode == 0
    assert not any("Traceback" in line and "metrics lost" not in line for line in server.lines)


def test_metrics_totals_never_go_down_while_workers_are_killed(serve):
    """Each scrape reads the workers' files one after the other while the master moves a dead
    worker's counts into the totals: a scrape must see them once, whenever the worker dies."""
    server = serve(workers=2)
    stop, scrapes, cut_off = threading.Event(), [], []

    def scrape():
        while not stop.is_set():
            try:
                scrapes.append(hello_total(server))
            except (OSError, http.client.HTTPException) as error:  # the worker answering was killed
                cut_off.append(error)

    scraper = threading.Thread(target=scrape)
    scraper.start()
    sent, killed = 0, set()
    try:
        for _ in range(15):
            for _ in range(3):
                assert server.request("GET", "/api/v1/hello")[0] == 200
                sent += 1
            booted = worker_pids(server)
            victim = sorted(booted - killed)[0]
            killed.add(victim)
            os.kill(int(victim), signal.SIGKILL)
            wait_until(lambda b=booted: worker_pids(server) > b or server.process.poll() is not None, "a new worker")
            assert server.process.poll() is None
    finally:
        stop.set()
        scraper.join(60)
    assert {status for status, _ in scrapes} == {200}, f"{len(cut_off)} cut off"
    totals = [total for _, total in scrapes]
    assert all(later >= earlier for earlier, later in zip(totals, totals[1:])), totals
    assert hello_total(server) == (200, sent)  # the dead workers' counts, every one


@pytest.mark.parametrize("failure", ["port taken", "app fails to boot"])
def test_a_server_that_never_serves_leaves_no_metrics_directory(default_project, project_venv, tmp_path, failure):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1] if failure == "port taken" else free_port()
        app = ["no_such_module:create()"] if failure == "app fails to boot" else []
        result = subprocess.run(
            [str(project_venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", *app],
            cwd=default_project / "source",
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "TMPDIR": str(tmp_path)},
        )
    assert result.returncode != 0
    assert list(tmp_path.glob("prometheus-*")) == []


def chart_environment_with_envfrom(project):
    """The variables the chart gives the container when envFrom is used: {name: value}, as
    helm 4 renders them (the ones from a Secret's key left out)."""
    rendered = subprocess.run(
        [str(helm_binaries()["4"]), "template", "app", "chart", "--set", "envFrom[0].configMapRef.name=settings"]
        + ["--show-only", "templates/deployment.yaml"],
        cwd=project,
        capture_output=True,
        text=True,
        check=True,
    )
    env = yaml.safe_load(rendered.stdout)["spec"]["template"]["spec"]["containers"][0]["env"]
    return {entry["name"]: entry["value"] for entry in env if "value" in entry}


def test_gunicorn_serves_and_counts_with_what_the_chart_sets_over_envfrom(serve, default_project):
    """With envFrom, the chart sets what `env` refuses, mostly empty, so that no ConfigMap sets
    it: an empty GUNICORN_CMD_ARGS adds no option, an empty PROMETHEUS_MULTIPROC_DIR is replaced
    by gunicorn.conf.py's own directory, empty LD_* and PYTHON* variables change nothing."""
    environment = chart_environment_with_envfrom(default_project)
    assert {"GUNICORN_CMD_ARGS": "", "PROMETHEUS_MULTIPROC_DIR": "", "LD_PRELOAD": "", "PYTHONPATH": ""}.items() <= (
        environment.items()
    )
    server = serve(env=environment)
    assert server.get_json("/livez") == (200, {"status": "ok"})
    assert server.get_json("/readyz") == (200, {"status": "ready"})
    for _ in range(3):
        assert server.request("GET", "/api/v1/hello")[0] == 200
    (metrics_dir,) = server.metrics_dirs()
    text = server.request("GET", "/metrics")[2]
    assert sample(text, "http_requests_total", endpoint="/api/v1/hello", method="GET", status="200") == 3
    records = server.stop()
    assert server.process.returncode == 0 and records  # JSON log lines, every one
    assert not metrics_dir.exists()


def probe_timeout(project):
    """The liveness probe's timeoutSeconds, as the chart sets it."""
    return yaml.safe_load((project / "chart" / "defaults.yaml").read_text())["livenessProbe"]["timeoutSeconds"]


def probes_with_slow_clients(server, slow_clients, timeout):
    """The failures of 10 liveness probes sent while ``slow_clients`` clients send a body a byte
    at a time (150 bytes a byte every 0.2 s: still sending while the probes run)."""
    stop = threading.Event()
    slow = [threading.Thread(target=send_slowly, args=(server.port, stop, 150, 0.2)) for _ in range(slow_clients)]
    for client in slow:
        client.start()
    time.sleep(1)  # every slow client is connected and sending
    failed = []
    try:
        for _ in range(10):  # the kubelet's probe: a new connection, its timeout
            started = time.monotonic()
            try:
                connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=timeout)
                connection.request("GET", "/livez")
                if connection.getresponse().status != 200:
                    failed.append("status")
                connection.close()
            except OSError as error:
                failed.append(error)
            time.sleep(max(0.0, 0.4 - (time.monotonic() - started)))
        assert all(client.is_alive() for client in slow), "the slow clients were done before the probes"
    finally:
        stop.set()
        for client in slow:
            client.join()
    return failed


@pytest.mark.parametrize("workers", [1, 3])
def test_ten_times_as_many_slow_clients_as_workers_leave_the_liveness_probe_answering(serve, default_project, workers):
    """Ambassador's Envoy streams a request body as it arrives: a client that sends a byte at a
    time holds a thread for as long. However the connections fall on the workers, the probes
    must get through within their timeout."""
    server = serve(workers=workers)
    failed = probes_with_slow_clients(server, 10 * workers, probe_timeout(default_project))
    assert failed == [], f"{len(failed)} of 10 probes failed"


def test_the_probes_get_through_while_one_thread_of_the_pod_is_free(serve, default_project):
    """Two workers of two threads, three slow clients: a worker whose threads both hold one
    takes no connection, and the probes go to the other one's free thread."""
    server = serve(workers=2, env={"GUNICORN_THREADS": "2"})
    failed = probes_with_slow_clients(server, 3, probe_timeout(default_project))
    assert failed == [], f"{len(failed)} of 10 probes failed"


def refused(port):
    """Whether a connection to ``port`` is refused (nothing listens), rather than accepted or queued."""
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_sigterm_answers_the_connections_queued_on_the_listening_socket_and_refuses_new_ones(serve):
    # One connection at a time per worker, held: the next ones wait in the listen queue.
    server = serve(app="probe_app:create()", workers=1, args=["--worker-connections", "1"])
    threads, results = hold(server, ["held"])
    queued = []
    for _ in range(5):
        connection = socket.create_connection(("127.0.0.1", server.port), timeout=30)
        connection.sendall(b"GET /livez HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        queued.append(connection)
    time.sleep(0.5)
    server.process.send_signal(signal.SIGTERM)
    wait_until(lambda: any("Handling signal: term" in line for line in server.lines), "gunicorn took SIGTERM")
    answers = []
    for connection in queued:
        with connection:
            try:
                answers.append(connection.recv(65536).split(b"\r\n")[0])
            except OSError as error:
                answers.append(error)
    # While the held request finishes, a new connection is refused, not queued to be reset.
    wait_until(lambda: refused(server.port), "new connections refused", attempts=100)
    (server.signals / "release").write_text("")
    for thread in threads:
        thread.join(timeout=GRACEFUL_TIMEOUT + 10)
    assert results == {"held": 200}
    assert answers == [b"HTTP/1.1 200 OK"] * 5
    server.stop()
    assert server.process.returncode == 0
