"""Benchmarks of the template, each a ratio against a baseline measured in the same run.

    python3 tasks.py bench [--requests N] [--only bake,lock,serve,reconfigure,generate,suite] [--suite]
                           [--cookiecutter-django PATH]

- bake: generating a project (no lock) against cookiecutter baking a one-file template, and,
  given a checkout of cookiecutter-django (--cookiecutter-django, or the environment's
  APPSTACK_BENCH_COOKIECUTTER_DJANGO), against cookiecutter baking it (use_docker=n, its
  dependency step left out), the three alternating; without a checkout, that row is skipped;
- lock: a bake with the post-gen lock (the hook runs the project's scripts/lock.py) against
  a bake without it plus a bare `pipenv lock` of the same Pipfile with the same pipenv and
  Python: the lock program's overhead (starting, finding them, cleaning up);
- serve: the generated app's /livez requests/s, p99 latency and server CPU time per request
  under gunicorn (request IDs, metrics and all) against a bare Flask app with the same
  gunicorn settings (127.0.0.1 only, a bounded number of requests; the two alternate, median
  of --rounds); and the slow-client figures: the app's /livez p99 while ten times as many slow
  clients as workers send a body a byte at a time, against its p99 without them, and how many
  slow clients the defaults survive (every liveness probe answered within its timeout);
- reconfigure: `make reconfigure ANSWERS="app_version=4.7.3"` in a project made with cruft
  against a bare `cruft update --variables-to-update` of the same change in its twin (the
  renderer's cache warm, the two alternating, the fastest of each);
- first generate: `python3 tasks.py generate --no-input` on a fresh clone of this working tree
  released (it makes its .venv first, and locks), its first line's time and its whole time,
  against the same command again in that clone; with the pipenv cache warm (the user's
  ${XDG_CACHE_HOME:-~/.cache}/flask-appstack) and with a fresh XDG_CACHE_HOME (the lock then
  installs pipenv into it first);
- suite (with --suite): the template's whole test suite's wall time (warm), its fast tier's, and
  CI's `.ci/run` on a fresh clone of this commit (its own .venv made first), each against the
  one-file bake of the moment (the ratio: the run's time in those bakes).
The figures print, and replace their rows of docs/figures.md (benchmarks/figures.py), which
keeps the rows of what did not run.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # hooks/ and tools/, never tests/

from benchmarks.figures import row, seconds, update_figures  # noqa: E402
from tools.cache import run  # noqa: E402
from tools.net import free_port, send_slowly  # noqa: E402
from tools.project import DEFAULTS, REPO, cached_pipenv, lock_program, pipfile_requirements  # noqa: E402
from tools.venvs import cached_venv  # noqa: E402

BARE_APP = """from flask import Flask

app = Flask(__name__)


@app.get("/livez")
def livez():
    return {"status": "ok"}
"""
# The bare app's gunicorn settings: the project's own, but for the hook that refuses to serve an
# app without the platform (scale.init_app), which the bare app is.
BARE_CONFIG = """import runpy

globals().update(runpy.run_path("gunicorn.conf.py"))
del post_worker_init
"""


def time_once(command, **kwargs):
    """Wall time of one execution of ``command``."""
    start = time.perf_counter()
    run(command, **kwargs)
    return time.perf_counter() - start


def bake(output_dir, **answers):
    """The command that bakes into ``output_dir``, which must not hold a project (see empty)."""
    extra = [f"{key}={value}" for key, value in {"lock_dependencies": "no", **answers}.items()]
    return [sys.executable, "-m", "cookiecutter", str(REPO), "--no-input", "-o", str(output_dir), *extra]


def one_file_bake(folder):
    """The baseline: cookiecutter baking a template of one file with one variable, no hooks."""
    template = folder / "template"
    (template / "{{cookiecutter.name}}").mkdir(parents=True, exist_ok=True)
    (template / "cookiecutter.json").write_text('{"name": "project"}\n')
    (template / "{{cookiecutter.name}}" / "README.md").write_text("# {{ cookiecutter.name }}\n")
    return [sys.executable, "-m", "cookiecutter", str(template), "--no-input", "-o", str(folder / "out")]


# The checkout of cookiecutter-django the bake is compared with, when --cookiecutter-django is not given.
DJANGO_VARIABLE = "APPSTACK_BENCH_COOKIECUTTER_DJANGO"


def django_checkout(path):
    """(the checkout of cookiecutter-django, its release) or (None, why the row is skipped)."""
    if not path:
        return None, f"no checkout of cookiecutter-django given (--cookiecutter-django PATH or {DJANGO_VARIABLE})"
    path = Path(path).resolve()
    project = path / "pyproject.toml"
    if not (path / "cookiecutter.json").is_file() or not project.is_file():
        return None, f"{path} is no checkout of cookiecutter-django: it holds no cookiecutter.json and pyproject.toml"
    version = re.search(r'^version = "([^"]+)"', project.read_text(), re.MULTILINE)
    return path, version.group(1) if version else path.name


def django_bake(folder, template):
    """cookiecutter baking cookiecutter-django into ``folder``/out, as (command, environment).

    use_docker=n (its default), so that its post-generation hook runs uv directly instead of
    building a Docker image for it; its dependency step, `uv add --no-sync -r requirements/...`
    (which resolves the project's dependencies against PyPI), runs unless it is told otherwise,
    and none of its options turns it off: the uv it finds first on PATH is one that does nothing."""
    stub = folder / "no-dependency-step"
    if not stub.is_dir():
        stub.mkdir(parents=True)
        (stub / "uv").symlink_to(shutil.which("true"))
    env = {**os.environ, "PATH": f"{stub}{os.pathsep}{os.environ.get('PATH', '')}"}
    command = [sys.executable, "-m", "cookiecutter", str(template), "--no-input", "-o", str(folder / "out")]
    return [*command, "use_docker=n"], env


def empty(output_dir):
    """Before a bake: no ``output_dir`` (the template never generates over a project)."""
    shutil.rmtree(output_dir, ignore_errors=True)


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


def server_cpu_seconds(pid):
    """CPU time (user + system) of a process and its children so far: gunicorn's master
    and workers. Less disturbed than requests/s by other work on the machine. Linux only."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # the process ended meanwhile
        if stat.parent.name == str(pid) or fields[1] == str(pid):
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def serve_and_load(venv, source, app, requests, concurrency, bare=None, slow_clients=0):
    """(requests/s, p99 ms, server CPU µs per request) of ``requests`` GETs of /livez, while
    ``slow_clients`` clients send a body a byte at a time; ``bare``: the folder of the bare app
    and its settings, to serve instead of the project's."""
    port = free_port()
    config = str(bare / "bare_conf.py") if bare else "gunicorn.conf.py"
    command = [str(venv / "bin" / "gunicorn"), "-c", config, "--bind", f"127.0.0.1:{port}", app]
    if bare:
        command += ["--pythonpath", str(bare)]
    # Logs off for both: the benchmark measures request handling, not the terminal.
    server = subprocess.Popen(
        command,
        cwd=source,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        load(port, "/livez", concurrency * 10, concurrency)  # warm-up
        stop = threading.Event()
        slow = [threading.Thread(target=send_slowly, args=(port, stop, 1000, 0.1)) for _ in range(slow_clients)]
        for client in slow:
            client.start()
        time.sleep(1 if slow else 0)  # every slow client connected and sending
        try:
            cpu = server_cpu_seconds(server.pid)
            rps, p99 = load(port, "/livez", requests, concurrency)
            return rps, p99, (server_cpu_seconds(server.pid) - cpu) / requests * 1e6
        finally:
            stop.set()
            for client in slow:
                client.join()
    finally:
        server.terminate()
        server.wait(timeout=30)


def livez_in_time(port, timeout):
    """Whether /livez answers 200 within ``timeout`` seconds, on a new connection: the kubelet's
    liveness probe."""
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
        try:
            connection.request("GET", "/livez")
            return connection.getresponse().status == 200
        finally:
            connection.close()
    except OSError:
        return False


def slow_clients_survived(venv, source, probe_timeout, step, limit, probes=5):
    """How many slow clients the app survives with gunicorn.conf.py's defaults: clients that
    send a body a byte every 0.1 s are added ``step`` at a time, each step followed by ``probes``
    liveness probes; the count of the last step at which every probe answered within
    ``probe_timeout``. Stops at the first probe that does not, or at ``limit`` clients."""
    port = free_port()
    command = [str(venv / "bin" / "gunicorn"), "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{port}"]
    server = subprocess.Popen(
        [*command, "api:create_app()"],
        cwd=source,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "LOG_LEVEL": "WARNING"},
    )
    stop, slow, survived = threading.Event(), [], 0
    try:
        for _ in range(100):
            if livez_in_time(port, probe_timeout):
                break
            time.sleep(0.1)
        while len(slow) + step <= limit:
            for _ in range(step):
                slow.append(threading.Thread(target=send_slowly, args=(port, stop, 5000, 0.1)))
                slow[-1].start()
            time.sleep(0.5)  # the new ones connected and sending
            if not all(livez_in_time(port, probe_timeout) for _ in range(probes)):
                break
            survived = len(slow)
    finally:
        stop.set()
        for client in slow:
            client.join()
        server.terminate()
        server.wait(timeout=30)
    return survived


def pipenv_or_exit():
    """The default answers' pipenv in lock.py's cache (tools.project.cached_pipenv), or exit naming
    the missing Python."""
    cached = cached_pipenv()
    if cached is None:
        sys.exit(f"bench: no Python {DEFAULTS['python_version']} on PATH or in pyenv, which the lock figures need")
    return cached


def lock_ratio(tmp, rounds=3):
    """(bare pipenv lock s, post-gen lock s) for the default answers, pipenv already cached.

    The post-gen lock is what the hook runs in the new project, `python scripts/lock.py lock`;
    the bare lock is `pipenv lock --python X` of the same Pipfile with the same pipenv and
    Python, in lock.py's environment (pip's index settings out, as the image needs). Both from
    scratch (no lock, no source/.venv), alternating, the fastest of each."""
    lock = lock_program()
    project = tmp / "lock" / "flask-app"
    run(bake(tmp / "lock"))
    program = [sys.executable, str(project / "scripts" / "lock.py"), "lock"]
    venv, target = pipenv_or_exit()
    source = tmp / "bare"
    source.mkdir()
    (source / "Pipfile").write_text((project / "source" / "Pipfile").read_text())
    env = lock.pipenv_environment(os.environ, lock.pip_network_settings(venv, os.environ))
    bare = [str(lock.venv_python(venv)), "-m", "pipenv", "lock", "--python", str(target[0])]

    def from_scratch(folder):
        shutil.rmtree(folder / ".venv", ignore_errors=True)
        (folder / "Pipfile.lock").unlink(missing_ok=True)

    time_once(program, cwd=project)  # warms pipenv's caches for both
    bare_runs, program_runs = [], []
    for _ in range(rounds):
        from_scratch(source)
        bare_runs.append(time_once(bare, cwd=source, env=env))
        from_scratch(project / "source")
        program_runs.append(time_once(program, cwd=project))
    return min(bare_runs), min(program_runs)


def serve_ratio(tmp, args):
    """/livez of the generated app against the bare app, in ``args.rounds`` rounds that
    alternate the two, so that both see the same machine (other work on it included). The
    ratios are the median of the rounds' ratios; the rates, p99s and the server's CPU time per
    request, the medians too. Each round also serves the app with ten times as many slow clients
    as gunicorn.conf.py's default workers connected (its p99 against the app's own without
    them), and finds how many slow clients the defaults survive (slow_clients_survived), in
    steps of the workers, up to thirty times as many: the median of the rounds."""
    project = tmp / "flask-app"
    venv = cached_venv(pipfile_requirements(project, sections=("packages",)))
    (tmp / "bare.py").write_text(BARE_APP)
    (tmp / "bare_conf.py").write_text(BARE_CONFIG)
    source = project / "source"
    workers = int(DEFAULTS["gunicorn_workers"])
    slow_clients = 10 * workers
    probe_timeout = yaml.safe_load((project / "chart" / "defaults.yaml").read_text())["livenessProbe"]["timeoutSeconds"]
    rounds, slowed, survived = [], [], []
    for _ in range(args.rounds):
        bare = serve_and_load(venv, source, "bare:app", args.requests, args.concurrency, tmp)
        app = serve_and_load(venv, source, "api:create_app()", args.requests, args.concurrency)
        slow = serve_and_load(
            venv, source, "api:create_app()", args.requests, args.concurrency, slow_clients=slow_clients
        )
        rounds.append((bare, app))
        slowed.append((app, slow))
        survived.append(slow_clients_survived(venv, source, probe_timeout, workers, 30 * workers))
    median = statistics.median
    return {
        "workers": workers,
        "survived": median(survived),
        "slow_clients": slow_clients,
        "slow_p99_ms": median(s[1] for _, s in slowed),
        "slow_p99_ratio": median(s[1] / a[1] for a, s in slowed),
        "baseline_rps": median(b[0] for b, _ in rounds),
        "measured_rps": median(a[0] for _, a in rounds),
        "rps_ratio": median(a[0] / b[0] for b, a in rounds),
        "baseline_p99_ms": median(b[1] for b, _ in rounds),
        "measured_p99_ms": median(a[1] for _, a in rounds),
        "p99_ratio": median(a[1] / b[1] for b, a in rounds),
        "baseline_cpu_us": median(b[2] for b, _ in rounds),
        "measured_cpu_us": median(a[2] for _, a in rounds),
        "cpu_ratio": median(a[2] / b[2] for b, a in rounds),
    }


def bake_rows(tmp, rounds, django=None):
    """The bake against the one-file template and, given its checkout, cookiecutter-django's
    bake, alternating, so that the machine getting slower or faster during the run moves every
    side; the fastest of each. A first round of each, not counted, writes the bytecode of what
    they import, as any first run does where Python may (PYTHONDONTWRITEBYTECODE would have every
    round compile cookiecutter, and both sides of a ratio measure mostly that)."""
    load = os.getloadavg()[0]
    template, release = django_checkout(django)
    if template is None:
        print(f"bake vs cookiecutter-django: skipped: {release}", file=sys.stderr)
    bakes = {"one-file": lambda: (one_file_bake(tmp / "one-file"), None, tmp / "one-file" / "out")}
    bakes["bake"] = lambda: (bake(tmp / "bake"), None, tmp / "bake")
    if template is not None:
        bakes["django"] = lambda: (*django_bake(tmp / "django", template), tmp / "django" / "out")
    times = {name: [] for name in bakes}
    for number in range(rounds + 1):
        for name, make in bakes.items():
            command, env, output = make()
            empty(output)
            if number:
                times[name].append(time_once(command, env=env))
            else:
                writing = {key: value for key, value in (env or os.environ).items() if key != "PYTHONDONTWRITEBYTECODE"}
                run(command, env=writing)
    baseline, measured = min(times["one-file"]), min(times["bake"])
    rows = [row("bake", seconds(measured), seconds(baseline), measured / baseline, rounds, load)]
    if template is not None:
        other = f"{seconds(min(times['django']))} (cookiecutter-django {release})"
        ratio = measured / min(times["django"])
        rows.append(row("bake vs cookiecutter-django", seconds(measured), other, ratio, rounds, load))
    return rows


def lock_rows(tmp, rounds):
    load = os.getloadavg()[0]
    baseline, measured = lock_ratio(tmp, rounds)
    return [row("lock", seconds(measured), seconds(baseline), measured / baseline, rounds, load)]


def serve_rows(tmp, args):
    load = os.getloadavg()[0]
    serve = serve_ratio(tmp, args)
    rps, ms, us = "{:.0f} req/s".format, "{:.1f} ms".format, "{:.0f} µs".format
    figures = [
        ("serve requests/s", rps(serve["measured_rps"]), rps(serve["baseline_rps"]), serve["rps_ratio"]),
        ("serve p99", ms(serve["measured_p99_ms"]), ms(serve["baseline_p99_ms"]), serve["p99_ratio"]),
        ("serve CPU per request", us(serve["measured_cpu_us"]), us(serve["baseline_cpu_us"]), serve["cpu_ratio"]),
        (
            "serve p99 with slow clients",
            f"{ms(serve['slow_p99_ms'])} ({serve['slow_clients']} slow clients)",
            ms(serve["measured_p99_ms"]),
            serve["slow_p99_ratio"],
        ),
        (
            "serve slow clients survived",
            f"{serve['survived']:.0f} slow clients",
            f"{serve['workers']} workers",
            serve["survived"] / serve["workers"],
        ),
    ]
    return [row(name, measured, baseline, ratio, args.rounds, load) for name, measured, baseline, ratio in figures]


def released_template(folder):
    """This working tree as a template repository, its commit tagged as the newest release."""
    from tools.release import newest_release

    shutil.copytree(REPO, folder, ignore=shutil.ignore_patterns(".git", ".venv", "__pycache__", ".pytest_cache"))
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "template"]):
        run([*git, *args], cwd=folder)
    run([*git, "tag", f"v{newest_release((folder / 'CHANGELOG.md').read_text())}"], cwd=folder)
    return folder, git


BUMP = {"app_version": "4.7.3", "pipeline_ref": "refs/tags/v4.7.3"}


def reconfigure_rows(tmp, rounds):
    """make reconfigure against cruft update --variables-to-update, each in a project of its own
    made the same way and put back after each round; a first round of each warms the caches."""
    load = os.getloadavg()[0]
    template, git = released_template(tmp / "template")
    projects = {}
    for side in ("ours", "cruft"):
        (tmp / side).mkdir()
        context = '{"app_name": "orders", "lock_dependencies": false}'
        run(["cruft", "create", "--no-input", "--extra-context", context, str(template)], cwd=tmp / side)
        projects[side] = tmp / side / "orders"
        for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "generated"]):
            run([*git, *args], cwd=projects[side])
    commands = {
        "ours": ["make", "reconfigure", "ANSWERS=app_version=4.7.3"],
        # cruft needs the ref named too: alone, app_version 4.7.3 and the ref v4.7.0 are refused.
        "cruft": ["cruft", "update", "--skip-apply-ask", "--variables-to-update", json.dumps(BUMP)],
    }
    times = {"ours": [], "cruft": []}
    for _ in range(rounds + 1):
        for side in ("cruft", "ours"):
            times[side].append(time_once(commands[side], cwd=projects[side]))
            run([*git, "reset", "-q", "--hard"], cwd=projects[side])
            run([*git, "clean", "-q", "-fd"], cwd=projects[side])
    baseline, measured = min(times["cruft"][1:]), min(times["ours"][1:])
    return [row("reconfigure", seconds(measured), seconds(baseline), measured / baseline, rounds, load)]


def quickstart_environment(tmp, cache=None):
    """The environment of a user who runs the Quickstart: no .venv of ours on PATH, cookiecutter's
    replay files and clones in ``tmp``, and ``cache`` as XDG_CACHE_HOME (None: the user's)."""
    ours = str(REPO / ".venv" / "bin")
    path = os.pathsep.join(folder for folder in os.environ.get("PATH", "").split(os.pathsep) if folder != ours)
    env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "APPSTACK_SKIP_LOCK")}
    config = tmp / "cookiecutterrc.yaml"
    config.write_text(f"replay_dir: {tmp / 'replay'}\ncookiecutters_dir: {tmp / 'cookiecutters'}\n")
    env.update(PATH=path, COOKIECUTTER_CONFIG=str(config))
    if cache is not None:
        env["XDG_CACHE_HOME"] = str(cache)
    return env


def quickstart_generate(clone, output, env):
    """(seconds to its first line, seconds in all) of `python3 tasks.py generate --no-input -o
    output` in ``clone``, by the python3 the user's PATH finds."""
    python = shutil.which("python3", path=env["PATH"]) or getattr(sys, "_base_executable", sys.executable)
    command = [python, str(clone / "tasks.py"), "generate", "--no-input", "-o", str(output)]
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=clone, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    first = process.stdout.readline()
    first_line = time.perf_counter() - start
    rest = process.communicate(timeout=1800)[0]
    total = time.perf_counter() - start
    if process.returncode or not (output / DEFAULTS["app_name"] / "source" / "Pipfile.lock").is_file():
        raise RuntimeError(f"`{' '.join(command)}` failed ({process.returncode}):\n{first}{rest}")
    return first_line, total


def first_generate_rows(tmp, rounds):
    """A first `python3 tasks.py generate` on a fresh clone against the same command again in
    that clone (its tools installed), alternating, the fastest of each; with the pipenv cache warm
    (the user's, given the default answers' pipenv first) and with a fresh XDG_CACHE_HOME."""
    load = os.getloadavg()[0]
    template, _ = released_template(tmp / "generate-template")
    pipenv_or_exit()  # warm
    sides = {"first generate": "warm", "first generate, cold cache": "cold"}
    times = {name: {"first": [], "again": [], "line": []} for name in sides}
    for number in range(rounds):
        for name, side in sides.items():
            folder = tmp / f"generate-{side}-{number}"
            folder.mkdir()
            env = quickstart_environment(folder, folder / "cache" if side == "cold" else None)
            run(["git", "clone", "-q", template, folder / "clone"])
            line, first = quickstart_generate(folder / "clone", folder / "first", env)
            times[name]["line"].append(line)
            times[name]["first"].append(first)
            times[name]["again"].append(quickstart_generate(folder / "clone", folder / "again", env)[1])
            shutil.rmtree(folder)
    rows = []
    for name, measured in times.items():
        first, again = min(measured["first"]), min(measured["again"])
        shown = f"{seconds(first)} (first line after {seconds(max(measured['line']))})"
        rows.append(row(name, shown, f"{seconds(again)} (the same again)", first / again, rounds, load))
    return rows


def machine_speed(tmp, rounds=5):
    """The one-file bake's best time now, in seconds: how fast this machine runs Python at the
    moment (a virtual machine's speed moves with its host's load), the suite's baseline."""
    runs = []
    for _ in range(rounds):
        empty(tmp / "speed" / "out")
        runs.append(time_once(one_file_bake(tmp / "speed")))
    return min(runs)


def suite_rows(tmp):
    """The whole suite's wall time (warm, here), the fast tier's, and CI's (`.ci/run`, CI=true)
    on a fresh clone of this commit, which makes its own .venv; each run once, with pytest's
    count of what passed (and failed: a failing suite's time is no figure), and as its baseline
    the machine's speed just before (machine_speed): the ratio is the run's time in one-file
    bakes, which the targets are stated in (docs/benchmarks.md)."""
    clone = tmp / "fresh-clone"
    run(["git", "clone", "-q", REPO, clone])
    runs = (  # the fast tier first, as a maintainer runs it after a change: not in a full suite's wake
        ("fast tier", [sys.executable, REPO / "tasks.py", "test", "--fast", "-q"], REPO),
        ("suite", [sys.executable, REPO / "tasks.py", "test", "-q"], REPO),
        ("suite, fresh clone", ["bash", ".ci/run"], clone),
    )
    rows = []
    for name, command, cwd in runs:
        speed = machine_speed(tmp)
        load, start = os.getloadavg()[0], time.perf_counter()
        done = run(command, check=False, timeout=3600, cwd=cwd)
        wall = time.perf_counter() - start
        counts = re.findall(r"\d+ (?:passed|failed|errors?)", (done.stdout.strip().splitlines() or [""])[-1])
        measured = f"{seconds(wall)} ({', '.join(counts) or 'no result'})"
        rows.append(row(name, measured, f"one-file bake {seconds(speed)}", wall / speed, load_before=load))
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=5, help="serve: rounds of bare then app (median kept)")
    parser.add_argument("--bake-rounds", type=int, default=15, help="bake: rounds of baseline then bake (fastest kept)")
    parser.add_argument("--lock-rounds", type=int, default=3, help="lock: rounds of bare then lock.py (fastest kept)")
    parser.add_argument("--reconfigure-rounds", type=int, default=5, help="reconfigure: rounds of cruft then ours")
    parser.add_argument(
        "--generate-rounds", type=int, default=3, help="generate: rounds of a first generate then again"
    )
    parser.add_argument(
        "--only",
        default="bake,lock,serve,reconfigure,generate",
        help="comma-separated parts: bake,lock,serve,reconfigure,generate,suite",
    )
    parser.add_argument("--suite", action="store_true", help="also time the whole test suite and its fast tier")
    parser.add_argument(
        "--cookiecutter-django",
        default=os.environ.get(DJANGO_VARIABLE),
        metavar="PATH",
        help=f"bake: a checkout of cookiecutter-django to compare with (default: ${DJANGO_VARIABLE}; none: skipped)",
    )
    args = parser.parse_args(argv)
    parts = set(args.only.split(",")) | ({"suite"} if args.suite else set())
    rows = []

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if "bake" in parts:
            rows += bake_rows(tmp, args.bake_rounds, args.cookiecutter_django)
        if "lock" in parts:
            rows += lock_rows(tmp, args.lock_rounds)
        if "serve" in parts:
            run(bake(tmp))  # the project the serve part runs
            rows += serve_rows(tmp, args)
        if "reconfigure" in parts:
            rows += reconfigure_rows(tmp, args.reconfigure_rounds)
        if "generate" in parts:
            rows += first_generate_rows(tmp, args.generate_rounds)
        if "suite" in parts:
            rows += suite_rows(tmp)

    for entry in rows:
        print(f"{entry['figure']:28} {entry['measured']:>24}  baseline {entry['baseline']:>12}  ratio {entry['ratio']}")
    update_figures(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
