import pytest


def test_unknown_path_is_a_json_404(client):
    response = client.get("/no/such/path")
    assert response.status_code == 404
    assert response.is_json
    assert response.json["error"] == "Not Found"


def test_wrong_method_is_a_json_405(client):
    response = client.post("/livez")
    assert response.status_code == 405
    assert response.json["error"] == "Method Not Allowed"


def test_unhandled_exception_is_a_json_500_without_details(client):
    response = client.get("/boom")
    assert response.status_code == 500
    assert response.json["error"] == "Internal Server Error"
    assert "secret internals" not in response.get_data(as_text=True)


def test_an_unhandled_exception_is_logged_with_its_traceback(capsys, make_app):
    # The app is made in the test, after capsys has replaced stdout: its log handler writes there.
    make_app().test_client().get("/boom")
    assert "RuntimeError: secret internals" in capsys.readouterr().out


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/items/1", "/no/such/path", "/boom"])
def test_no_endpoint_answers_html(client, path):
    assert client.get(path).mimetype == "application/json"
