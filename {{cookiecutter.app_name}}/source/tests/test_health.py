import threading

from api import health


def test_livez_answers_ok(client):
    response = client.get("/livez")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_is_ready_without_a_data_dir(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ready"


def test_readyz_is_ready_when_the_data_dir_is_writable(app, tmp_path):
    app.config["DATA_DIR"] = str(tmp_path)
    assert app.test_client().get("/readyz").status_code == 200


def test_readyz_is_unavailable_when_the_data_dir_is_missing_and_keeps_the_path_to_the_log(app, tmp_path):
    app.config["DATA_DIR"] = str(tmp_path / "missing")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "failed": ["data_dir"]}
    assert str(tmp_path) not in response.get_data(as_text=True)


def test_a_registered_check_that_fails_makes_readyz_unavailable(app):
    health.add_check(app, "database", lambda: False)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["failed"] == ["database"]


def test_a_check_that_raises_fails_without_revealing_why(app):
    def broken():
        raise ConnectionError("db.internal:5432 refused")

    health.add_check(app, "database", broken)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "db.internal" not in response.get_data(as_text=True)


def test_a_check_that_outlasts_its_timeout_fails(app):
    release = threading.Event()
    health.add_check(app, "queue", release.wait, timeout=0.05)
    try:
        response = app.test_client().get("/readyz")
    finally:
        release.set()
    assert response.status_code == 503
    assert response.json["failed"] == ["queue"]


def test_passing_checks_keep_readyz_ready(app):
    health.add_check(app, "database", lambda: True)
    assert app.test_client().get("/readyz").status_code == 200
