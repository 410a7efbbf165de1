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


def test_unhandled_exception_is_a_json_500_without_details(app):
    @app.get("/boom")
    def boom():
        raise RuntimeError("secret internals")

    response = app.test_client().get("/boom")
    assert response.status_code == 500
    assert response.json["error"] == "Internal Server Error"
    assert "secret internals" not in response.get_data(as_text=True)


@pytest.mark.parametrize("path", ["/livez", "/readyz", "/api/v1/hello"])
def test_no_endpoint_answers_html(client, path):
    assert client.get(path).mimetype == "application/json"
