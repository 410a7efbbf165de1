import json
import logging
import sys

from api import create_app
from api.config import settings_from_env
from api.logs import JsonFormatter


def test_settings_come_from_the_environment():
    settings = settings_from_env({"GREETING": "Hi", "LOG_LEVEL": "DEBUG"})
    assert settings["GREETING"] == "Hi"
    assert settings["LOG_LEVEL"] == "DEBUG"
    assert settings["APP_NAME"] == "{{ cookiecutter.app_name }}"


def test_create_app_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("GREETING", "Howdy")
    assert create_app().config["GREETING"] == "Howdy"


def test_log_lines_are_json_with_extra_fields(capsys):
    # The app is made after capsys has replaced stdout, so its log handler writes there.
    create_app({"TESTING": True}).test_client().get("/api/v1/hello?name=Ada")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "greeted"
    assert line["level"] == "INFO"
    assert line["name_length"] == 3


def test_exceptions_are_logged_as_one_json_line():
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed"
    assert "ValueError: bad" in entry["exception"]
