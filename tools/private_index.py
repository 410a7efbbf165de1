"""A private package index on 127.0.0.1 that, like Artifactory, answers only to a user and
its token: the tests use it to show that a token reaches pip and leaves no trace."""

import base64
import hashlib
import html
import platform
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from .cache import built_once, cache_dir, run


def normalized(name):
    return re.sub(r"[-_.]+", "-", name).lower()


class PrivateIndex(ThreadingHTTPServer):
    """A PEP 503 package index of the wheels in a folder, serving only requests with Basic
    auth of `user` and `token`; it counts what it served and what it refused."""

    def __init__(self, wheels, user, token):
        self.files = {path.name: path for path in wheels.glob("*.whl")}
        self.sha256 = {name: hashlib.sha256(path.read_bytes()).hexdigest() for name, path in self.files.items()}
        self.credentials = "Basic " + base64.b64encode(f"{user}:{token}".encode()).decode()
        self.served = self.refused = 0
        super().__init__(("127.0.0.1", 0), IndexHandler)

    @property
    def url(self):
        return f"http://127.0.0.1:{self.server_address[1]}/simple"

    def __enter__(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.shutdown()
        self.server_close()


class IndexHandler(BaseHTTPRequestHandler):
    def do_GET(self):
        index = self.server
        if self.headers.get("Authorization") != index.credentials:
            index.refused += 1
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="index"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        index.served += 1
        parts = [part for part in self.path.split("?")[0].split("/") if part]
        projects = {}
        for name in index.files:
            projects.setdefault(normalized(name.split("-")[0]), []).append(name)
        if parts == ["simple"]:
            body = "".join(f'<a href="/simple/{project}/">{project}</a>\n' for project in sorted(projects))
        elif len(parts) == 2 and parts[0] == "simple" and parts[1] in projects:
            body = "".join(
                f'<a href="/files/{html.escape(name)}#sha256={index.sha256[name]}">{html.escape(name)}</a>\n'
                for name in sorted(projects[parts[1]])
            )
        elif len(parts) == 2 and parts[0] == "files" and parts[1] in index.files:
            return self._send(index.files[parts[1]].read_bytes(), "application/octet-stream")
        else:
            return self._send(b"not found", "text/plain", 404)
        self._send(f"<!DOCTYPE html><html><body>\n{body}</body></html>\n".encode(), "text/html")

    def _send(self, body, content_type, status=200):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def index_wheels(requirements, python):
    """Wheels of `requirements` and their dependencies for CPython `python` (X.Y) on glibc
    2.36 or older and this machine's architecture, downloaded once into the cache."""
    key = hashlib.sha256("\n".join([python, *sorted(requirements)]).encode()).hexdigest()[:16]
    tags = [f"manylinux_2_{minor}" for minor in range(36, 4, -1)] + ["manylinux2014", "manylinux2010", "manylinux1"]
    platforms = [option for tag in tags for option in ("--platform", f"{tag}_{platform.machine()}")]
    abi = ["--python-version", python, "--implementation", "cp", "--abi", "cp" + python.replace(".", "")]

    def download(directory):
        pip = [sys.executable, "-m", "pip", "download", "--quiet", "--dest", directory, "--only-binary=:all:"]
        run([*pip, *abi, *platforms, *requirements])

    return built_once(cache_dir("index") / key, download)
