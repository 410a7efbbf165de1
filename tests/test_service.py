"""The generated Flask service: its own test suite, and real gunicorn on 127.0.0.1."""
import json
import signal
import subprocess
import time

import pytest
from conftest import free_port, http_get

GRACEFUL_TIMEOUT = 20  # the generated gunicorn.conf.py's default


def get(url):
    """(status, JSON body) of a GET, whatever the status."""
    status, body = http_get(url)
    return status, json.loads(body)


def test_generated_test_suite_passes_with_its_coverage_gate(default_project, project_venv):
    result = subprocess.run(
        [str(project_venv / "bin" / "python"), "-m", "pytest", "-p", "no:cacheprovider"],
        cwd=default_project, capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Required test coverage of 90% reached" in result.stdout


@pytest.fixture
def gunicorn(default_project, project_venv):
    """The default project served by gunicorn with its own gunicorn.conf.py."""
    port = free_port()
    server = subprocess.Popen(
        [str(project_venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{port}", "--workers", "2"],
        cwd=default_project / "source", stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(100):
        try:
            get(f"{base}/livez")
            break
        except OSError:
            if server.poll() is not None:
                pytest.fail(f"gunicorn exited: {server.stdout.read()}")
            time.sleep(0.1)
    yield server, base
    if server.poll() is None:
        server.kill()
        server.wait()


def test_gunicorn_serves_the_health_endpoints(gunicorn):
    _, base = gunicorn
    assert get(f"{base}/livez") == (200, {"status": "ok"})
    assert get(f"{base}/readyz") == (200, {"status": "ready"})


def test_gunicorn_answers_an_unknown_path_with_json_404(gunicorn):
    _, base = gunicorn
    status, body = get(f"{base}/does/not/exist")
    assert status == 404
    assert body["error"] == "Not Found"


def test_gunicorn_stops_cleanly_on_sigterm_and_logs_json(gunicorn):
    server, base = gunicorn
    get(f"{base}/api/v1/hello?name=probe")
    server.send_signal(signal.SIGTERM)
    output, _ = server.communicate(timeout=GRACEFUL_TIMEOUT + 5)
    assert server.returncode == 0, output
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert any(r["logger"] == "gunicorn.access" and "/api/v1/hello" in r["message"] for r in records)
    assert any(r["message"] == "greeted" for r in records)
    assert any("Shutting down" in r["message"] for r in records)
