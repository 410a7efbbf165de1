"""Real gunicorn on 127.0.0.1 serving a generated project, for the tests that run the service
(test_service.py) and those that serve a project after an update (test_releases.py)."""

import http.client
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from tools.net import free_port

GRACEFUL_TIMEOUT = 20  # the generated gunicorn.conf.py's default


def wait_until(condition, what, attempts=600):
    """Poll ``condition`` every 50 ms; fail naming ``what`` if it never holds."""
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.05)
    pytest.fail(f"never happened: {what}")


class Gunicorn:
    """gunicorn serving a project with its own gunicorn.conf.py, in `venv`, on 127.0.0.1; its
    output kept line by line."""

    def __init__(self, project, venv, tmp, env=None, app=None, app_source=None, workers=2, args=()):
        self.port = free_port()
        self.signals = tmp / "signals"
        self.signals.mkdir(parents=True)
        self.tmpdir = tmp / "tmp"
        self.tmpdir.mkdir()
        command = [str(venv / "bin" / "gunicorn"), "--bind", f"127.0.0.1:{self.port}", "--workers", str(workers), *args]
        if app:  # another app than the project's, e.g. "probe_app:app" from `app_source`
            (tmp / "probe_app.py").write_text(app_source)
            command += ["--pythonpath", str(tmp), app]
        self.process = subprocess.Popen(
            command,
            cwd=project / "source",
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "TMPDIR": str(self.tmpdir), "TEST_SIGNALS": str(self.signals), **(env or {})},
            start_new_session=True,  # its own process group: kill() ends the workers too
        )
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stdout), daemon=True)
        self.reader.start()
        wait_until(lambda: self.process.poll() is not None or self.answers(), "gunicorn answers /livez")
        assert self.process.poll() is None, "".join(self.lines)

    def answers(self):
        try:
            return self.request("GET", "/livez")[0] == 200
        except OSError:
            return False

    def request(self, method, path, body=None, headers=None):
        """(status, headers, body text) of one request on a new connection."""
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return response.status, response.headers, response.read().decode()
        finally:
            connection.close()

    def raw(self, data, timeout=10):
        """What the server sends back, until it closes, for ``data`` sent as is."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as connection:
            connection.sendall(data)
            received = b""
            while chunk := connection.recv(65536):
                received += chunk
        return received

    def metrics_dirs(self):
        return sorted(self.tmpdir.glob("prometheus-*"))

    def get_json(self, path):
        status, _, body = self.request("GET", path)
        return status, json.loads(body)

    def stop(self):
        """SIGTERM; the records it logged, once it has exited (returncode on self.process)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=GRACEFUL_TIMEOUT + 10)
        self.reader.join(timeout=10)
        return [json.loads(line) for line in self.lines if line.strip()]

    def kill(self):
        """SIGKILL to gunicorn and its workers, which a failed test may have left holding requests."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # all gone already
        self.process.wait()

    def get(self, path):
        """(status, headers, body text) of a GET."""
        return self.request("GET", path)
