"""Loopback helpers for the tests and the benchmarks: all traffic stays on 127.0.0.1."""

import contextlib
import socket
import threading
import urllib.error
import urllib.request


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_get(url):
    """(status, body text) of a GET, whatever the status; OSError while nothing listens."""
    try:
        # The tests call it with http://127.0.0.1 URLs of servers they started: B310 is moot.
        with urllib.request.urlopen(url, timeout=5) as response:  # nosec B310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def send_slowly(port, stop, size, interval):
    """A slow client of 127.0.0.1:``port``: POST /api/v1/hello with a JSON body of about ``size``
    bytes sent a byte every ``interval`` seconds, as Envoy streams a slow upload, until ``stop``
    (a threading.Event) is set or the body is sent. A connection the server drops ends it."""
    body = b'{"name": "' + b"a" * size + b'"}'
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
            connection.sendall(
                b"POST /api/v1/hello HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
                b"Content-Length: %d\r\n\r\n" % len(body)
            )
            for byte in body:
                if stop.wait(interval):
                    return
                connection.sendall(bytes([byte]))
    except OSError:
        pass


@contextlib.contextmanager
def silent_server(connections=None):
    """The port of a server on 127.0.0.1 that accepts connections and never answers (a package
    index or a git host that hangs); each connection it accepted is appended to ``connections``."""
    server = socket.create_server(("127.0.0.1", 0))
    held, stop = [] if connections is None else connections, threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(server.accept()[0])

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        thread.join()
        for connection in held:
            connection.close()
        server.close()
