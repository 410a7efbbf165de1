import threading
import time

import pytest

import scale


def test_livez_answers_ok(client):
    response = client.get("/livez")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}


def test_readyz_is_ready_without_a_data_dir(client):
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json["status"] == "ready"


def test_readyz_is_ready_when_the_data_dir_is_writable(make_app, tmp_path):
    assert make_app(DATA_DIR=str(tmp_path)).test_client().get("/readyz").status_code == 200


def test_readyz_is_unavailable_when_the_data_dir_is_missing_and_keeps_the_path_to_the_log(make_app, tmp_path):
    response = make_app(DATA_DIR=str(tmp_path / "missing")).test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json == {"status": "unavailable", "failed": ["data_dir"]}
    assert str(tmp_path) not in response.get_data(as_text=True)


def test_the_data_dir_comes_from_the_environment(make_app, monkeypatch, tmp_path):
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "missing"))
    assert make_app().test_client().get("/readyz").status_code == 503


def test_a_registered_check_that_fails_makes_readyz_unavailable(app):
    scale.add_check(app, "database", lambda: False)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert response.json["failed"] == ["database"]


def test_a_check_that_raises_fails_without_revealing_why_and_logs_it(capsys, make_app):
    def broken():
        raise ConnectionError("db.internal:5432 refused")

    app = make_app()  # after capsys has replaced stdout: its log handler writes there
    scale.add_check(app, "database", broken)
    response = app.test_client().get("/readyz")
    assert response.status_code == 503
    assert "db.internal" not in response.get_data(as_text=True)
    assert "db.internal:5432 refused" in capsys.readouterr().out


def test_a_check_that_outlasts_its_timeout_fails(app):
    release = threading.Event()
    scale.add_check(app, "queue", release.wait, timeout=0.05)
    try:
        response = app.test_client().get("/readyz")
    finally:
        release.set()
    assert response.status_code == 503
    assert response.json["failed"] == ["queue"]


def test_passing_checks_keep_readyz_ready(app):
    scale.add_check(app, "database", lambda: True)
    assert app.test_client().get("/readyz").status_code == 200


def test_init_app_is_called_once(app):
    with pytest.raises(RuntimeError, match="call it once"):
        scale.init_app(app)


def test_a_check_that_hung_once_runs_again_and_readyz_recovers(capsys, make_app):
    app = make_app()
    release, calls = threading.Event(), []

    def database():
        calls.append(1)
        return len(calls) > 1 or release.wait()  # the first call hangs, the next ones answer

    scale.add_check(app, "database", database, timeout=0.5)  # time enough for the second run, even on a busy machine
    client = app.test_client()
    try:
        first = client.get("/readyz")
        second = client.get("/readyz")
    finally:
        release.set()
    assert (first.status_code, first.json["failed"]) == (503, ["database"])
    assert "timed out" in capsys.readouterr().out
    assert (second.status_code, second.json) == (200, {"status": "ready"})
    assert len(calls) == 2


def test_concurrent_readyz_calls_share_one_run_and_its_answer(app):
    calls, callers = [], 8
    scale.add_check(app, "database", lambda: calls.append(1) or time.sleep(0.5) or True, timeout=5.0)
    start, statuses = threading.Barrier(callers), []

    def readyz():
        start.wait()
        statuses.append(app.test_client().get("/readyz").status_code)

    threads = [threading.Thread(target=readyz) for _ in range(callers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert statuses == [200] * callers  # none is told the check is failing because another runs it
    assert len(calls) < callers  # they waited for a run in progress rather than start one each


def test_a_check_that_hangs_for_good_holds_a_bounded_number_of_threads_and_recovers(capsys, make_app):
    from scale import health

    app = make_app()
    release = threading.Event()
    scale.add_check(app, "queue", release.wait, timeout=0.01)
    client = app.test_client()
    before = threading.active_count()
    try:
        statuses = {client.get("/readyz").status_code for _ in range(200)}
        assert threading.active_count() <= before + health.MAX_HUNG_RUNS
    finally:
        release.set()
    assert statuses == {503}
    assert f"{health.MAX_HUNG_RUNS} earlier runs still hang" in capsys.readouterr().out
    for _ in range(100):  # the hung runs end: each gives its thread back
        if threading.active_count() <= before:
            break
        time.sleep(0.01)
    assert client.get("/readyz").status_code == 200
