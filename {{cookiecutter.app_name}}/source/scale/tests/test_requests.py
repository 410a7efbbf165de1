"""What every request gets: an ID, metrics, limits and safe headers."""

import json

import pytest

from scale import metrics, request_ids


def test_a_valid_request_id_is_kept_and_returned(client):
    response = client.get("/livez", headers={"X-Request-Id": "edge-1234.abc:5_6"})
    assert response.headers["X-Request-Id"] == "edge-1234.abc:5_6"


@pytest.mark.parametrize("sent", [None, "", "x" * 129, "bad id", "id\u00e9", "-leading-dash", "a;b"])
def test_a_missing_or_unsafe_request_id_is_replaced(client, sent):
    headers = {"X-Request-Id": sent} if sent is not None else {}
    returned = client.get("/livez", headers=headers).headers["X-Request-Id"]
    assert returned != sent
    assert request_ids.VALID.fullmatch(returned)


def test_every_application_log_line_has_the_request_id(capsys, make_app):
    # The app is made in the test, after capsys has replaced stdout: its log handler writes there.
    make_app().test_client().get("/log", headers={"X-Request-Id": "req-42"})
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "logged"
    assert line["request_id"] == "req-42"


def test_a_request_that_bypassed_the_middleware_still_gets_an_id(app):
    with app.test_request_context(headers={"X-Request-Id": "direct-1"}):
        assert request_ids.current() == "direct-1"
    assert request_ids.current() is None  # outside a request


def test_responses_forbid_content_sniffing(client):
    assert client.get("/livez").headers["X-Content-Type-Options"] == "nosniff"
    assert client.get("/no/such/path").headers["X-Content-Type-Options"] == "nosniff"


def test_a_body_over_the_limit_is_a_json_413(make_app):
    response = make_app(MAX_CONTENT_LENGTH=100).test_client().post("/echo", json={"name": "x" * 200})
    assert response.status_code == 413
    assert response.json["error"] == "Request Entity Too Large"
    assert "100 bytes" in response.json["message"]


def test_a_body_within_the_limit_is_read(client):
    assert client.post("/echo", json={"name": "Ada"}).json == {"name": "Ada"}


def test_the_default_limit_is_one_mebibyte(app):
    assert app.config["MAX_CONTENT_LENGTH"] == 1024 * 1024


@pytest.mark.parametrize("body", ['{"name":', "[" * 100_000, "\xff"])
def test_malformed_or_deeply_nested_json_is_a_json_400(client, body):
    response = client.post("/echo", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.json["message"] == "the request body is not valid JSON"


def test_json_of_another_content_type_is_a_json_415(client):
    response = client.post("/echo", data='{"name": "Ada"}', content_type="text/plain")
    assert response.status_code == 415
    assert response.is_json


def test_metrics_count_requests_by_route_pattern_method_and_status(client):
    before = metrics.REQUESTS.labels("/items/<int:item>", "GET", "200")._value.get()
    client.get("/items/1")
    client.get("/items/2")
    client.get("/no/such/path")
    text = client.get("/metrics").get_data(as_text=True)
    assert metrics.REQUESTS.labels("/items/<int:item>", "GET", "200")._value.get() == before + 2
    assert 'http_requests_total{endpoint="unmatched",method="GET",status="404"}' in text
    assert 'http_request_duration_seconds_bucket{endpoint="/items/<int:item>"' in text


def test_metrics_add_up_every_workers_files_under_gunicorn(client, monkeypatch, tmp_path):
    # gunicorn.conf.py sets the directory; an empty one holds no worker's counts yet.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.mimetype == "text/plain"
    assert "http_requests_total" not in response.get_data(as_text=True)


# --- what a client controls: bounded ------------------------------------------------------


def gunicorn_chunked_body(raw):
    """The body stream gunicorn gives the application for a chunked body that arrived as ``raw``:
    its own chunked decoder, reading from ``raw`` instead of a socket."""
    from types import SimpleNamespace

    from gunicorn.http.body import Body, ChunkedReader
    from gunicorn.http.unreader import IterUnreader

    return Body(ChunkedReader(SimpleNamespace(trailers=[]), IterUnreader([raw])))


def chunked(body, size=10):
    """``body`` in chunked encoding, ``size`` bytes a chunk."""
    pieces = [body[i : i + size] for i in range(0, len(body), size)]
    return b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces) + b"0\r\n\r\n"


def post_chunked(app, raw):
    """POST /echo as gunicorn passes a chunked request: no length, the decoded body as wsgi.input."""
    return app.test_client().post(
        "/echo",
        headers={"Transfer-Encoding": "chunked", "Content-Type": "application/json"},
        environ_overrides={"wsgi.input": gunicorn_chunked_body(raw), "wsgi.input_terminated": True},
    )


def test_a_chunked_body_over_the_limit_is_the_same_json_413_as_a_sized_one(make_app):
    # Valid JSON up to the limit: cut there and accepted, the body would pass as the whole one.
    body = b'{"name": "x"}' + b" " * 200
    response = post_chunked(make_app(MAX_CONTENT_LENGTH=100), chunked(body))
    assert response.status_code == 413
    assert "100 bytes" in response.json["message"]


def test_a_chunked_body_within_the_limit_is_read(make_app):
    body = b'{"name": "Ada"}'
    assert post_chunked(make_app(MAX_CONTENT_LENGTH=len(body)), chunked(body)).json == {"name": "Ada"}


@pytest.mark.parametrize("raw", [b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n"])
def test_a_malformed_chunked_body_is_a_json_400_without_a_traceback(capsys, make_app, raw):
    response = post_chunked(make_app(), raw)
    assert response.status_code == 400
    assert response.json["message"] == "the request body is not valid chunked encoding"
    assert "Traceback" not in capsys.readouterr().out


def test_methods_and_statuses_outside_the_standard_sets_are_counted_as_other(client):
    for method in ("FOO", "get", "X" * 50):
        client.open("/items/1", method=method)
    text = client.get("/metrics").get_data(as_text=True)
    assert 'method="other"' in text
    assert "FOO" not in text and 'method="get"' not in text
    assert metrics.REQUESTS.labels("/items/<int:item>", "GET", "other") is not None
    metrics.observe("/items/<int:item>", "GET", "599", 0.1)
    assert metrics.REQUESTS.labels("/items/<int:item>", "GET", "other")._value.get() >= 1


def test_metrics_label_paths_by_route_pattern_never_by_the_path_sent(client):
    for item in range(20):
        client.get(f"/items/{item}")
        client.get(f"/no/such/path/{item}")
    text = client.get("/metrics").get_data(as_text=True)
    endpoints = {line.split('endpoint="')[1].split('"')[0] for line in text.splitlines() if 'endpoint="' in line}
    assert {"/items/<int:item>", "unmatched"} <= endpoints
    assert not [endpoint for endpoint in endpoints if "/no/such" in endpoint or endpoint[-1].isdigit()]
