"""Benchmarks of the template, each a ratio against a baseline measured in the same run.

    python3 tasks.py bench [--requests N] [--suite]

- bake: generating a project (no lock) against cookiecutter's own start-up;
- lock: a bake with the post-gen lock against a bare `pipenv lock` of the same Pipfile with
  the same pipenv and Python (the hook's overhead: finding them, verify, cleaning up);
- serve: the generated app's requests/s and p99 latency under gunicorn against a bare
  Flask app with the same gunicorn settings (127.0.0.1 only, a bounded number of requests);
- suite (with --suite): the template's test suite wall time, against the bake.
Results print as a table and go to benchmarks/results.json (not committed).
"""
import argparse
import http.client
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from conftest import free_port, load_hook, pipfile_requirements  # noqa: E402
from tools.venvs import cached_venv  # noqa: E402

BARE_APP = '''from flask import Flask

app = Flask(__name__)


@app.get("/livez")
def livez():
    return {"status": "ok"}
'''


def best_of(runs, command, setup=None, **kwargs):
    """Fastest wall time of ``runs`` executions of ``command``, each after ``setup()`` (untimed)."""
    times = []
    for _ in range(runs):
        if setup:
            setup()
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, **kwargs)
        times.append(time.perf_counter() - start)
    return min(times)


def bake(output_dir, **answers):
    """The command that bakes into ``output_dir``, which must not hold a project (see fresh)."""
    extra = [f"{key}={value}" for key, value in {"lock_dependencies": "no", **answers}.items()]
    return [sys.executable, "-m", "cookiecutter", str(REPO), "--no-input", "-o", str(output_dir), *extra]


def fresh(output_dir):
    """A setup for best_of: an empty ``output_dir`` (the template never generates over a project)."""
    return lambda: shutil.rmtree(output_dir, ignore_errors=True)


def load(port, path, requests, concurrency):
    """Send ``requests`` GETs from ``concurrency`` threads; return (requests/s, p99 ms)."""
    latencies = []
    lock = threading.Lock()
    per_thread = requests // concurrency

    def worker():
        mine = []
        for _ in range(per_thread):
            start = time.perf_counter()
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            connection.request("GET", path)
            connection.getresponse().read()
            connection.close()
            mine.append(time.perf_counter() - start)
        with lock:
            latencies.extend(mine)

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    p99 = statistics.quantiles(latencies, n=100)[98] * 1000
    return len(latencies) / elapsed, p99


def serve_and_load(venv, source, app, requests, concurrency, pythonpath=None):
    port = free_port()
    command = [str(venv / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}", app]
    if pythonpath:
        command += ["--pythonpath", str(pythonpath)]
    # Logs off for both: the benchmark measures request handling, not the terminal.
    server = subprocess.Popen(command, cwd=source, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env={**os.environ, "LOG_LEVEL": "WARNING"})
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        load(port, "/livez", concurrency * 10, concurrency)  # warm-up
        return load(port, "/livez", requests, concurrency)
    finally:
        server.terminate()
        server.wait(timeout=30)


def lock_ratio(tmp):
    """(bare pipenv lock s, bake-with-lock s) for the default answers, pipenv already cached."""
    hook = load_hook("post_gen_project")
    answers = json.loads((REPO / "cookiecutter.json").read_text())
    with_lock = bake(tmp / "locked", lock_dependencies="yes")
    best_of(1, with_lock, setup=fresh(tmp / "locked"))  # installs pipenv once, if needed
    measured = best_of(3, with_lock, setup=fresh(tmp / "locked"))

    target = hook.find_python(answers["python_version"]) or (Path(sys.executable), "%d.%d.%d" % sys.version_info[:3])
    venv = hook.ensure_pipenv(answers["pipenv_version"], *target)
    source = tmp / "bare"
    source.mkdir()
    (source / "Pipfile").write_text((tmp / "locked" / "flask-app" / "source" / "Pipfile").read_text())
    env = hook.pipenv_environment(os.environ, hook.pip_config_list())
    command = [str(hook.venv_python(venv)), "-m", "pipenv", "lock", "--python", str(target[0])]
    times = []
    for _ in range(3):  # each from scratch, as in the hook: no lock, no project venv
        shutil.rmtree(source / ".venv", ignore_errors=True)
        (source / "Pipfile.lock").unlink(missing_ok=True)
        times.append(best_of(1, command, cwd=source, env=env))
    return min(times), measured


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--suite", action="store_true", help="also time the whole test suite")
    args = parser.parse_args(argv)
    results = {}

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        startup = best_of(5, [sys.executable, "-m", "cookiecutter", "--version"])
        bake_time = best_of(5, bake(tmp / "bake"), setup=fresh(tmp / "bake"))
        results["bake"] = {"baseline_s": startup, "measured_s": bake_time, "ratio": bake_time / startup}

        lock_baseline, lock_measured = lock_ratio(tmp)
        results["lock"] = {"baseline_s": lock_baseline, "measured_s": lock_measured,
                           "ratio": lock_measured / lock_baseline}

        project = tmp / "flask-app"
        venv = cached_venv(pipfile_requirements(project, sections=("packages",)))
        (tmp / "bare.py").write_text(BARE_APP)
        source = project / "source"
        bare_rps, bare_p99 = serve_and_load(venv, source, "bare:app", args.requests, args.concurrency, tmp)
        app_rps, app_p99 = serve_and_load(venv, source, "api:create_app()", args.requests, args.concurrency)
        results["serve"] = {
            "baseline_rps": bare_rps, "measured_rps": app_rps, "rps_ratio": app_rps / bare_rps,
            "baseline_p99_ms": bare_p99, "measured_p99_ms": app_p99, "p99_ratio": app_p99 / bare_p99,
        }

    if args.suite:
        suite = best_of(1, [sys.executable, str(REPO / "tasks.py"), "test", "-q"])
        results["suite"] = {"baseline_s": bake_time, "measured_s": suite, "ratio": suite / bake_time}

    for name, values in results.items():
        print(f"{name:6} " + "  ".join(f"{key}={value:.3f}" for key, value in values.items()))
    (REPO / "benchmarks" / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
