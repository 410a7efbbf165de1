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
