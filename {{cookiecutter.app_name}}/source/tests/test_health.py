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


def test_readyz_is_unavailable_when_the_data_dir_is_missing(app, tmp_path):
    app.config["DATA_DIR"] = str(tmp_path / "missing")
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "not writable" in response.json["reason"]
