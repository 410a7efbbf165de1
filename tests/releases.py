"""Template repositories with releases, projects made from them with cruft, and a team's week
of ordinary work on such a project: what the update tests share."""

import json
import os
import shutil
import sys
from pathlib import Path

from owners import TEMPLATE_PATHS, covers

from tools.cache import run
from tools.project import DEFAULTS, REPO
from tools.release import newest_release

IGNORED = shutil.ignore_patterns(
    ".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache", ".cache", "build"
)
TEMPLATE_DIR = "{{cookiecutter.app_name}}"

# A CHANGELOG whose newest release (2.0.0) is tagged, and the same with a new section (2.1.0).
CHANGELOG = """# Changelog

## [Unreleased]

### What a generated project gets
- Nothing yet.

## [2.0.0] - 2026-12-02

### What a generated project gets
- Every file has one owner.

## [1.0.0] - 2026-09-01
"""
WITH_A_NEW_SECTION = CHANGELOG.replace(
    "## [2.0.0]", "## [2.1.0] - 2026-12-09\n\n- make update follows releases.\n\n## [2.0.0]"
)


def minor_after(version, steps=1):
    major, minor, _ = version.split(".")
    return f"{major}.{int(minor) + steps}.0"


# The template's newest release (its CHANGELOG's), which make_template_repo tags, and the two
# minor releases that publish() makes after it.
RELEASE = newest_release((REPO / "CHANGELOG.md").read_text())
NEXT, AFTER_NEXT = minor_after(RELEASE), minor_after(RELEASE, 2)


def git(cwd, *args):
    return run(["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", *args], cwd=cwd).stdout


def cruft(cwd, *args):
    return run(["cruft", *args], check=False, cwd=cwd)


def copy_template(path):
    """The template as it is in this working tree, copied to `path` (no git, caches or venv)."""
    shutil.copytree(REPO, path, ignore=IGNORED)
    return path


def make_template_repo(path):
    """A git repository at `path` holding the template as it is in this working tree, released:
    its commit tagged with the CHANGELOG's newest release, as CI tags it."""
    copy_template(path)
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "the template as it is")
    git(path, "tag", f"v{newest_release((path / 'CHANGELOG.md').read_text())}")
    return path


def with_origin(template_repo, origin):
    """A bare repository at `origin` standing in for the template's home (GitHub), holding
    `template_repo`'s branch and tags; `template_repo` becomes the platform team's clone of it."""
    git(template_repo.parent, "clone", "-q", "--bare", str(template_repo), str(origin))
    git(template_repo, "remote", "add", "origin", str(origin))
    git(template_repo, "fetch", "-q", "origin")
    git(template_repo, "branch", "-q", "--set-upstream-to=origin/main")
    return origin


def clone(origin, path):
    git(path.parent, "clone", "-q", str(origin), str(path))
    return path


def publish(template_repo, version=None):
    """Release what the template's main holds, as the platform team and CI do: a new CHANGELOG
    section (the next minor version unless given) merged to main, then CI's
    `tools/release.py tag` (which pushes the tag to origin, when there is one). Returns the version."""
    changelog = template_repo / "CHANGELOG.md"
    text = changelog.read_text()
    if version is None:
        version = minor_after(newest_release(text))
    first = text.index("\n## [", text.index("## [Unreleased]")) + 1
    section = f"## [{version}] - 2026-12-09\n\n### What a generated project gets\n- A test release.\n\n"
    changelog.write_text(text[:first] + section + text[first:])
    git(template_repo, "commit", "-q", "-am", f"Release {version}")

    def release(command):
        return run([sys.executable, "tools/release.py", command], cwd=template_repo).stdout

    assert f"v{version} is to be made" in release("check")
    if "origin" in git(template_repo, "remote").split():
        git(template_repo, "push", "-q", "origin", "main")
        release("tag")  # CI's job: tags main's commit and pushes the tag
    else:
        git(template_repo, "tag", f"v{version}")
    return version


def template_file(template_repo, relative):
    return template_repo / TEMPLATE_DIR / relative


def cookiecutter_config(tmp_path):
    """An environment whose cookiecutter user config keeps replay files and clones in tmp_path, not in ~."""
    config = tmp_path / "cookiecutterrc.yaml"
    config.write_text(f"replay_dir: {tmp_path / 'replay'}\ncookiecutters_dir: {tmp_path / 'cookiecutters'}\n")
    return {**os.environ, "COOKIECUTTER_CONFIG": str(config)}


def commit_as_generated(project, message="generated"):
    """The project's first commit, as a team makes it."""
    git(project, "init", "-q", "-b", "main")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", message)
    return project


def change_template(template_repo, relative, old, new, message):
    """Commit a change of one generated file to the template (unreleased until publish())."""
    edit(template_file(template_repo, relative), old, new)
    git(template_repo, "commit", "-q", "-am", message)


def committed_project(template_repo, parent, *options, **answers):
    """A project made with `cruft create` (no lock) in `parent`, committed as a team would."""
    context = {"lock_dependencies": False, **answers}
    created = cruft(
        parent, "create", *options, str(template_repo), "--no-input", "--extra-context", json.dumps(context)
    )
    assert created.returncode == 0, created.stdout + created.stderr
    return commit_as_generated(parent / answers.get("app_name", DEFAULTS["app_name"]))


def edit(path, old, new):
    text = path.read_text()
    assert old in text, f"{old!r} is not in {path}"
    path.write_text(text.replace(old, new, 1))


def make(project, *args, path=(), env=None):
    """`make ARGS` in the project, with cruft (and whatever else is in `path`) on PATH."""
    env = {
        **os.environ,
        "PATH": os.pathsep.join([*map(str, path), str(Path(sys.executable).parent), os.environ["PATH"]]),
        **(env or {}),
    }
    return run(["make", *args], check=False, cwd=project, env=env)


def python3_and_git(folder):
    """A folder for PATH that holds python3 (the interpreter alone, without the suite's
    packages) and git, nothing else: what make update, outdated and reconfigure may need."""
    folder.mkdir(exist_ok=True)
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    for name, program in (
        ("python3", Path(sys.base_prefix) / "bin" / f"python{version}"),
        ("git", shutil.which("git")),
    ):
        if not (folder / name).exists():
            (folder / name).symlink_to(program)
    return folder


def make_plain(project, *args, env=None):
    """`make ARGS` in the project with python3 and git alone on PATH (no cruft, no cookiecutter)."""
    bin_dir = python3_and_git(project.parent / "python3-and-git")
    environment = {**os.environ, **(env or {}), "PATH": str(bin_dir)}
    return run([shutil.which("make"), *args], check=False, cwd=project, env=environment)


def make_update(project, *path, args=()):
    """`make update` with python3 and git alone on PATH."""
    return make_plain(project, "update", *args)


def assert_the_projects_suite_passes(project, venv):
    """The project's own suite (the team's tests and the platform's) passes in `venv`."""
    run([venv / "bin" / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project)


# ---- a week of the team's work ---------------------------------------------------------------

ORDERS = '''"""The team's own endpoints."""

from flask import Blueprint, jsonify

bp = Blueprint("orders", __name__)


@bp.get("/orders")
def orders():
    return jsonify(orders=[])
'''
ORDERS_TEST = """def test_orders_are_listed(client):
    assert client.get("/api/v1/orders").json == {"orders": []}
"""
README_PARAGRAPH = "\n## On call\n\nThe orders team answers pages for this service.\n"
PIPFILE_PACKAGE = 'humanize = "*"\n'
DOCKERFILE_LINE = "ENV ORDERS_PAGE_SIZE=50\n"


def add_orders_route_to_the_example(project):
    """The team's route, in the example module as many teams wrote it before 2.0.0, with its test."""
    with (project / "source" / "api" / "greetings.py").open("a") as greetings:
        greetings.write('\n\n@bp.get("/orders")\ndef orders():\n    return jsonify(orders=[])\n')
    (project / "source" / "tests" / "test_orders.py").write_text(ORDERS_TEST)


def teams_week(project, production="prod"):
    """What a team does in its first week: an endpoint of its own with its test in place of the
    example, a README paragraph, a package, a production CPU request (`production`: the last
    hostspace), a line in the Dockerfile."""
    source = project / "source"
    (source / "api" / "orders.py").write_text(ORDERS)
    (source / "tests" / "test_orders.py").write_text(ORDERS_TEST)
    factory = source / "api" / "__init__.py"
    edit(factory, "from api import greetings\n", "from api import orders\n")
    edit(factory, "app.register_blueprint(greetings.bp,", "app.register_blueprint(orders.bp,")
    git(project, "rm", "-q", "source/api/greetings.py", "source/tests/test_greetings.py")
    with (project / "README.md").open("a") as readme:
        readme.write(README_PARAGRAPH)
    edit(source / "Pipfile", "[packages]\n", f"[packages]\n{PIPFILE_PACKAGE}")
    edit(project / "chart" / f"values-{production}.yaml", "cpu: 250m", "cpu: 400m")
    edit(project / "Dockerfile", "EXPOSE 8080\n", f"EXPOSE 8080\n{DOCKERFILE_LINE}")
    git(project, "add", "-A")
    git(project, "commit", "-q", "-m", "the team's first week")


# ---- a release that touches every file the template owns -------------------------------------

MARK = "release-2-marker"
# A release also changes what the platform does: every answer names the release that served it.
RELEASE_HEADER = ("X-Platform-Release", "2")
PLATFORM_CHANGE = f'''

def _naming_the_release(init):
    def init_app(app):
        init(app)

        @app.after_request
        def release(response):
            response.headers["{RELEASE_HEADER[0]}"] = "{RELEASE_HEADER[1]}"
            return response

    return init_app


init_app = _naming_the_release(init_app)
'''


def marked(path, text):
    """`text` with MARK added in the comment syntax of `path`'s kind of file."""
    if path.suffix == ".json":  # the first object's first line (a Jinja line may come before)
        return text.replace("{\n", f'{{\n  "$comment": "{MARK}",\n', 1)
    end = "" if text.endswith("\n") else "\n"
    if path.suffix == ".md":
        return f"{text}{end}\n<!-- {MARK} -->\n"
    if path.suffix == ".tpl" or path.parent.name == "templates" and path.suffix == ".txt":  # Helm's (NOTES.txt)
        return f"{text}{end}{{{{/* {MARK} */}}}}\n"
    return f"{text}{end}# {MARK}\n"


def template_owned(template_repo):
    """{generated path: template file} of every file the template owns (tests/owners.py)."""
    root = template_repo / TEMPLATE_DIR
    files = {path.relative_to(root).as_posix(): path for path in sorted(root.rglob("*")) if path.is_file()}
    return {name: path for name, path in files.items() if any(covers(row, name) for row in TEMPLATE_PATHS)}


def release_touching_every_template_file(template_repo, also=()):
    """Commit a release that changes every file the template owns (and the template's copies
    of the team's files in `also`), with a change of behaviour in the platform's package.
    Returns the generated paths it marked."""
    owned = template_owned(template_repo)
    for path in [*owned.values(), *(template_file(template_repo, name) for name in also)]:
        path.write_text(marked(path, path.read_text()))
    init = template_file(template_repo, "source/scale/__init__.py")
    init.write_text(init.read_text() + PLATFORM_CHANGE)
    git(template_repo, "commit", "-q", "-am", "release 2: every file of the template changes")
    publish(template_repo)
    return sorted(owned)
