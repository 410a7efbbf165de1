"""Loopback helpers for the tests and the benchmarks: all traffic stays on 127.0.0.1."""

import socket
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
