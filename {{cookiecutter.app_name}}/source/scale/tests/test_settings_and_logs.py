import json
import logging
import re
import sys
from pathlib import Path

import pytest

from scale.jsonlog import JsonFormatter
from scale.settings import APP_SETTINGS, SERVER_SETTINGS, ConfigError, read, settings_from_env, threads_per_worker


def test_settings_come_from_the_environment():
    settings = settings_from_env({"APP_NAME": "renamed", "LOG_LEVEL": "DEBUG"})
    assert settings["APP_NAME"] == "renamed"
    assert settings["LOG_LEVEL"] == "DEBUG"
    assert settings["DR_ROLE"] == ""


def test_the_defaults_name_the_service():
    assert settings_from_env({})["APP_NAME"] == "{{ cookiecutter.app_name }}"


def test_settings_are_parsed():
    settings = read(
        {**SERVER_SETTINGS, **APP_SETTINGS},
        {"LOG_LEVEL": "debug", "GUNICORN_WORKERS": " 3 ", "DR_ROLE": "passive", "MAX_CONTENT_LENGTH": "10"},
    )
    assert settings["LOG_LEVEL"] == "DEBUG"
    assert settings["GUNICORN_WORKERS"] == 3
    assert settings["DR_ROLE"] == "passive"
    assert settings["MAX_CONTENT_LENGTH"] == 10
    assert settings["PORT"] == 8080


@pytest.mark.parametrize(
    "name, value, accepted",
    [
        ("LOG_LEVEL", "LOUD", "one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("GUNICORN_WORKERS", "many", "a whole number from 1 to 64"),
        ("GUNICORN_WORKERS", "0", "a whole number from 1 to 64"),
        ("PORT", "70000", "a port number from 1 to 65535"),
        ("DR_ROLE", "standby", "active, passive or empty"),
        ("MAX_CONTENT_LENGTH", "1MB", "a whole number of bytes"),
    ],
)
def test_a_bad_setting_names_the_variable_the_value_and_the_accepted_form(name, value, accepted):
    with pytest.raises(ConfigError) as raised:
        read({**SERVER_SETTINGS, **APP_SETTINGS}, {name: value})
    (problem,) = raised.value.problems
    assert problem.startswith(f"{name}={value!r} is not valid: expected {accepted}")


def test_every_bad_setting_is_reported_at_once():
    with pytest.raises(ConfigError) as raised:
        settings_from_env({"LOG_LEVEL": "LOUD", "DR_ROLE": "standby"})
    assert [p.split("=")[0] for p in raised.value.problems] == ["LOG_LEVEL", "DR_ROLE"]


def test_init_app_reads_the_process_environment(make_app, monkeypatch):
    monkeypatch.setenv("DR_REGION", "west")
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "2048")
    config = make_app().config
    assert config["DR_REGION"] == "west"
    assert config["MAX_CONTENT_LENGTH"] == 2048


def test_the_factorys_test_config_wins_over_the_environment(make_app, monkeypatch):
    monkeypatch.setenv("DR_REGION", "west")
    monkeypatch.setenv("MAX_CONTENT_LENGTH", "2048")
    config = make_app(DR_REGION="east", MAX_CONTENT_LENGTH=100).config
    assert config["DR_REGION"] == "east"
    assert config["MAX_CONTENT_LENGTH"] == 100


def test_log_lines_are_json_with_extra_fields(capsys, make_app):
    # The app is made in the test, after capsys has replaced stdout: its log handler writes there.
    make_app().test_client().get("/log")
    line = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert line["message"] == "logged"
    assert line["level"] == "INFO"
    assert line["size"] == 3


def test_the_log_level_comes_from_the_settings(capsys, make_app):
    make_app(LOG_LEVEL="WARNING").test_client().get("/log")
    assert capsys.readouterr().out == ""


def test_exceptions_are_logged_as_one_json_line():
    try:
        raise ValueError("bad")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    entry = json.loads(JsonFormatter().format(record))
    assert entry["message"] == "failed"
    assert "ValueError: bad" in entry["exception"]


def test_gunicorns_access_line_carries_the_responses_request_id():
    record = logging.LogRecord("gunicorn.access", logging.INFO, __file__, 1, "GET /", None, None)
    record.args = {"{x-request-id}o": "req-7"}
    assert json.loads(JsonFormatter().format(record))["request_id"] == "req-7"


def test_gunicorns_own_lines_never_hold_a_query_string():
    try:
        raise ValueError("GET /a?access_token=s3cret")
    except ValueError:
        record = logging.LogRecord(
            "gunicorn.error", logging.WARNING, __file__, 1, "Invalid request from ip=%s: %s", None, sys.exc_info()
        )
    record.args = ("10.0.0.1", "Invalid HTTP request line: 'GET /a?access_token=s3cret HTTP/1.1'")
    line = JsonFormatter().format(record)
    assert "s3cret" not in line
    assert "GET /a HTTP/1.1" in json.loads(line)["message"]


def test_the_graceful_timeout_defaults_to_20_seconds_and_never_drops_below_10():
    # The chart's terminationGracePeriodSeconds is sized on it: change both, knowingly.
    assert read(SERVER_SETTINGS, {})["GUNICORN_GRACEFUL_TIMEOUT"] == 20
    assert read(SERVER_SETTINGS, {"GUNICORN_GRACEFUL_TIMEOUT": "10"})["GUNICORN_GRACEFUL_TIMEOUT"] == 10
    for short in ("1", "9"):
        with pytest.raises(ConfigError, match="expected whole seconds from 10 to 3600"):
            read(SERVER_SETTINGS, {"GUNICORN_GRACEFUL_TIMEOUT": short})


def test_each_worker_has_threads_for_ten_slow_clients_and_the_rest_by_default():
    settings = read(SERVER_SETTINGS, {"GUNICORN_WORKERS": "3"})
    assert settings["GUNICORN_THREADS"] is None
    assert threads_per_worker(settings["GUNICORN_THREADS"]) == 16
    assert threads_per_worker(read(SERVER_SETTINGS, {"GUNICORN_THREADS": ""})["GUNICORN_THREADS"]) == 16
    assert threads_per_worker(read(SERVER_SETTINGS, {"GUNICORN_THREADS": "4"})["GUNICORN_THREADS"]) == 4


def test_every_setting_is_in_the_manuals_table():
    manual = Path(__file__).resolve().parents[3] / "docs" / "configuration.md"
    documented = set(re.findall(r"^\| `([A-Z_]+)`(?:, `([A-Z_]+)`)?", manual.read_text(), re.MULTILINE))
    names = {name for row in documented for name in row if name}
    assert set(SERVER_SETTINGS) | set(APP_SETTINGS) <= names
