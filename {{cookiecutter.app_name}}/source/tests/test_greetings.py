from api import create_app


def test_hello_greets_the_world_by_default(client):
    assert client.get("/api/v1/hello").json == {"message": "Hello, world!"}


def test_hello_greets_by_name(client):
    assert client.get("/api/v1/hello?name=Ada").json == {"message": "Hello, Ada!"}


def test_greeting_comes_from_configuration(app):
    app.config["GREETING"] = "Hi"
    assert app.test_client().get("/api/v1/hello?name=Ada").json == {"message": "Hi, Ada!"}


def test_greeting_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("GREETING", "Howdy")
    assert create_app().test_client().get("/api/v1/hello").json == {"message": "Howdy, world!"}


def test_test_config_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("GREETING", "Howdy")
    assert create_app({"GREETING": "Hi"}).config["GREETING"] == "Hi"


def test_hello_rejects_an_overlong_name(client):
    response = client.get("/api/v1/hello", query_string={"name": "x" * 65})
    assert response.status_code == 400
    assert "1 to 64 characters" in response.json["message"]


def test_hello_greets_the_name_of_a_json_body(client):
    assert client.post("/api/v1/hello", json={"name": "Ada"}).json == {"message": "Hello, Ada!"}


def test_hello_wants_a_json_object(client):
    response = client.post("/api/v1/hello", json=["Ada"])
    assert response.status_code == 400
    assert "JSON object" in response.json["message"]


def test_info_names_the_service_and_its_dr_site(app):
    app.config.update(DR_ROLE="passive", DR_REGION="west")
    assert app.test_client().get("/api/v1/info").json == {
        "app": "{{ cookiecutter.app_name }}",
        "dr_role": "passive",
        "dr_region": "west",
    }
