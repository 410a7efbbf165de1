"""The project's own app factory, api.create_app(), has the platform wired in: the one test
of the platform that looks at the team's code, through what every service answers."""

import pytest

import scale
from api import create_app


def test_the_projects_app_has_the_platform_wired_in():
    app = create_app({"TESTING": True})
    if not scale.wired(app):
        pytest.fail(scale.NOT_WIRED, pytrace=False)
    client = app.test_client()
    livez = client.get("/livez")
    assert livez.json == {"status": "ok"}
    assert livez.headers["X-Request-Id"]
    # Ready or not depends on the team's own checks (a database this machine may not reach).
    readyz = client.get("/readyz")
    assert readyz.status_code in (200, 503) and readyz.json["status"] in ("ready", "unavailable")
    missing = client.get("/no/such/path/for/any/team")
    assert missing.status_code == 404 and missing.json["error"] == "Not Found"
    assert "http_requests_total" in client.get("/metrics").get_data(as_text=True)
