"""The hooks at work in real bakes: every bad answer stops cookiecutter before it writes
anything; odd but valid text survives verbatim; the post-generation hook finishes the
project. Its helpers are also called directly, on baked projects."""

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from answers import NO_LOCK, PRIVATE_INDEX, rendered
from cookiecutter.exceptions import FailedHookException
from releases import copy_template

from hooks import post_gen_project as post
from hooks import pre_gen_project as pre
from tools.net import free_port
from tools.project import DEFAULTS, REPO, pinned_pipenvs, tomllib

# (variable the message must name, answers). Each is rejected by the pre-generation hook.
INVALID = {
    "app_name upper case": ("app_name", {"app_name": "Orders"}),
    "app_name with a space": ("app_name", {"app_name": "orders api"}),
    "app_name with ..": ("app_name", {"app_name": "orders..api"}),
    "app_name climbing out with ../": ("app_name", {"app_name": "../orders"}),
    "app_name with shell metacharacters": ("app_name", {"app_name": "orders;rm -rf ~"}),
    "app_name with a newline": ("app_name", {"app_name": "orders\napi"}),
    "app_name of 41 characters": ("app_name", {"app_name": "a" * 41}),
    "appcode with /": ("appcode", {"appcode": "de/mo"}),
    "appcode with $()": ("appcode", {"appcode": "demo$(id)"}),
    "description with a newline": ("description", {"description": "two\nlines"}),
    "description with U+0085": ("description", {"description": "two\x85lines"}),
    "description with U+2028": ("description", {"description": "two\u2028lines"}),
    "description with a right-to-left override": ("description", {"description": "safe \u202eexe.txt"}),
    "description with a bidi isolate": ("description", {"description": "\u2067hidden\u2069 text"}),
    # cookiecutter renders answers given without prompts as Jinja: this one reaches the
    # hook as "{{ x }}", as if typed at the prompt.
    "description with jinja": ("description", {"description": "{{ '{{' }} x }}"}),
    "python_version malformed": ("python_version", {"python_version": "3.10.x"}),
    "python_version 2.7": ("python_version", {"python_version": "2.7"}),
    "python_version 3.8": ("python_version", {"python_version": "3.8"}),
    "pipenv_version latest": ("pipenv_version", {"pipenv_version": "latest"}),
    "pipenv_version with a command": ("pipenv_version", {"pipenv_version": "2022.7.24 && curl x"}),
    "app_version 4.6.1": ("app_version", {"app_version": "4.6.1"}),
    "hostspaces empty": ("hostspaces", {"hostspaces": ""}),
    "hostspaces with an empty entry": ("hostspaces", {"hostspaces": "dev, , prod"}),
    "hostspaces duplicated": ("hostspaces", {"hostspaces": "dev, prod, dev"}),
    "hostspaces with /": ("hostspaces", {"hostspaces": "dev/prod"}),
    # its values file would be the template's chart/values-hostspaces.yaml, which the post-gen hook removes
    "a hostspace named hostspaces": ("hostspaces", {"hostspaces": "dev, hostspaces"}),
    "platform_domain with a scheme": ("platform_domain", {"platform_domain": "https://scale.example.com"}),
    "custom_url with a scheme": ("custom_url", {"custom_url": "https://orders.example.org"}),
    "custom_url with a path": ("custom_url", {"custom_url": "orders.example.org/v1"}),
    "custom_url with a backtick": ("custom_url", {"custom_url": "`id`.example.org"}),
    "hpa_min_replicas 0": ("hpa_min_replicas", {"hpa_min_replicas": "0"}),
    "hpa_cpu_target 150": ("hpa_cpu_target", {"hpa_cpu_target": "150"}),
    "pvc_size 1GB": ("pvc_size", {"pvc": True, "pvc_size": "1GB"}),
    "pvc_size zero": ("pvc_size", {"pvc": True, "pvc_size": "0Gi"}),
    "pvc_mount_path relative": ("pvc_mount_path", {"pvc": True, "pvc_mount_path": "data"}),
    "pvc_mount_path with ..": ("pvc_mount_path", {"pvc": True, "pvc_mount_path": "/data/../etc"}),
    "pvc_storage_class upper case": ("pvc_storage_class", {"pvc": True, "pvc_storage_class": "Fast"}),
    "dr region with a dot": ("dr_active_region", {"dr_active_region": "us.east"}),
    "docker_registry with a path": ("docker_registry", {"docker_registry": "registry.example.com/team"}),
    "package_index with credentials": (
        "package_index",
        {"package_index": "https://me:s3cret@artifactory.example.com/simple"},
    ),
    "package_index without scheme": ("package_index", {"package_index": "artifactory.example.com/simple"}),
    "pipeline_repository without project": ("pipeline_repository", {"pipeline_repository": "pipelines"}),
    "gunicorn_workers 0": ("gunicorn_workers", {"gunicorn_workers": "0"}),
    "hpa min above max": ("hpa_min_replicas", {"hpa_min_replicas": "6", "hpa_max_replicas": "3"}),
    "rwo volume with required anti-affinity": (
        "pvc_access_mode",
        {"pvc": True, "pvc_access_mode": "ReadWriteOnce", "pod_anti_affinity": "required"},
    ),
    "custom_url equal to the production hostname": ("custom_url", {"custom_url": "flask-app-prod.scale.example.com"}),
    "custom_url equal to a dr site hostname": ("custom_url", {"custom_url": "flask-app-dev.east.scale.example.com"}),
    "same dr regions": ("dr_passive_region", {"dr_passive_region": "east"}),
    "python 3.9, past its end of life": ("python_version", {"python_version": "3.9"}),
}


def bake_dir(tmpdir):
    """pytest-cookies' output folder of a function's first bake."""
    return Path(tmpdir) / "cookies" / "bake00"


@pytest.mark.parametrize("variable, answers", INVALID.values(), ids=INVALID.keys())
def test_invalid_answers_stop_the_bake(cookies, tmpdir, capfd, variable, answers):
    result = cookies.bake(extra_context={**NO_LOCK, **answers})
    err = capfd.readouterr().err
    assert result.exit_code != 0
    assert isinstance(result.exception, FailedHookException)
    assert "cannot be used, so nothing was generated" in err
    assert any(f"{variable} = " in line for line in err.splitlines() if line.startswith("  - "))
    assert list(bake_dir(tmpdir).iterdir()) == []
    # "../orders" made its directory beside the output folder: gone again too.
    assert sorted(path.name for path in bake_dir(tmpdir).parent.iterdir()) == ["bake00"]


def test_the_pipenvs_accepted_are_the_files_of_templates_pipenv(tmp_path, capfd):
    """The folder of pinned requirements names the pipenv releases, alone: a file added there is
    an answer the hook accepts and the project installs from, and a refusal lists every one."""
    from cookiecutter.main import cookiecutter

    template = copy_template(tmp_path / "template")
    pins = template / "templates" / "pipenv"
    pinned = (pins / f"{DEFAULTS['pipenv_version']}.txt").read_text().replace(DEFAULTS["pipenv_version"], "2099.1.1")
    (pins / "2099.1.1.txt").write_text(pinned)

    def bake(version):
        context = {**NO_LOCK, "pipenv_version": version}
        return Path(
            cookiecutter(str(template), no_input=True, output_dir=str(tmp_path / version), extra_context=context)
        )

    project = bake("2099.1.1")
    assert (project / "scripts" / "pipenv-requirements.txt").read_text() == pinned
    with pytest.raises(FailedHookException):
        bake("2099.1.2")
    refusal = capfd.readouterr().err
    assert 'pipenv_version = "2099.1.2"' in refusal
    listed = " or ".join([*pinned_pipenvs(), "2099.1.1"])  # oldest first
    assert f"a pipenv release the template pins with hashes: {listed}" in refusal


def test_the_volume_answers_follow_the_charts_schema(tmp_path, capfd):
    """pvc_size and pvc_mount_path become persistence.size and persistence.mountPath, which the
    chart's values.schema.json defines (byteQuantity, mountPath): the hook checks the answers by
    those definitions, the only place that states them. A path the schema stops taking is refused
    at the next bake, with the schema's own words; a size it starts taking is accepted."""
    from cookiecutter.main import cookiecutter

    template = copy_template(tmp_path / "template")
    schema_file = template / "{{cookiecutter.app_name}}" / "chart" / "values.schema.json"
    schema = json.loads(schema_file.read_text())
    mount_path = schema["definitions"]["mountPath"]
    mount_path["allOf"].append({"not": {"pattern": "^/srv(/|$)"}})
    mount_path["description"] = "An absolute path, never under /srv."
    schema["definitions"]["byteQuantity"]["pattern"] = "^([0-9]+(k|Ki|M|Mi|G|Gi|T|Ti|P|Pi)?)$"
    schema["definitions"]["byteQuantity"]["description"] = "A whole number of bytes, petabytes too."
    schema_file.write_text(json.dumps(schema, indent=2) + "\n")

    def bake(name, **answers):
        context = {**NO_LOCK, "pvc": "yes", **answers}
        return cookiecutter(str(template), no_input=True, output_dir=str(tmp_path / name), extra_context=context)

    with pytest.raises(FailedHookException):  # both refused by one bake, which reports every problem
        bake("refused", pvc_mount_path="/srv/shared", pvc_size="lots")
    refusal = capfd.readouterr().err
    assert 'pvc_mount_path = "/srv/shared": expected an absolute path, never under /srv' in refusal
    assert 'pvc_size = "lots": expected a whole number of bytes, petabytes too' in refusal
    project = Path(bake("petabyte", pvc_size="2Pi", pvc_mount_path="/data"))
    assert "size: 2Pi" in (project / "chart" / "defaults.yaml").read_text()


def test_one_bake_reports_every_problem(cookies, tmpdir, capfd):
    result = cookies.bake(
        extra_context={
            **NO_LOCK,
            "app_name": "Orders",
            "python_version": "3.8",
            "hostspaces": "dev, dev",
            "pvc_size": "lots",
            "hpa_min_replicas": "9",
        }
    )
    problems = [line for line in capfd.readouterr().err.splitlines() if line.startswith("  - ")]
    assert isinstance(result.exception, FailedHookException)
    assert [line.split(" = ")[0] for line in problems] == [
        "  - app_name",
        "  - python_version",
        "  - hostspaces",
        "  - pvc_size",
        "  - hpa_min_replicas",
    ]
    assert (
        "the pipeline accepts ≥ 3.5, the generated service needs ≥ 3.10 (gunicorn 27, whose threaded workers it builds on)"
        in problems[1]
    )
    assert list(bake_dir(tmpdir).iterdir()) == []


# ---- a rejected answer costs one answer ----------------------------------------------------


# ---- valid text survives verbatim ----------------------------------------------------------

DESCRIPTIONS = {
    "quotes colons and hash": "Orders: the \"single\" source of truth # for 'orders' -- really: yes",
    "yaml indicators": "- [list]: {map} & *alias !tag %directive @at `tick` | pipe > fold ? key",
    "braces without jinja": "a lone { or } and }} and %} is plain text",
    "non-ascii": "Bestellungen für Kunden — 東京 ✓ naïve café",
    "backslashes": r"C:\new\table and \"escaped\" \\ two",
}


def hostile(marker):
    """A description that would run a command if an answer were ever pasted into code."""
    command = f"touch {marker}"
    return f"'''); import os; os.system(\"{command}\") #\"\"\"); os.system('{command}') # $({command}) `{command}`"


def assert_verbatim(project, description):
    assert description in (project / "README.md").read_text(encoding="utf-8")
    chart = project / "chart" / "Chart.yaml"
    assert yaml.safe_load(chart.read_text(encoding="utf-8"))["description"] == description
    python_files = sorted(project.rglob("*.py"))
    assert python_files
    for path in python_files:
        compile(path.read_text(encoding="utf-8"), str(path), "exec")  # a quote broke no Python file


@pytest.mark.parametrize("description", DESCRIPTIONS.values(), ids=DESCRIPTIONS.keys())
def test_descriptions_survive_verbatim(bake, description):
    assert_verbatim(bake(description=description), description)


def test_a_hostile_description_runs_nothing_and_survives(cookies, tmp_path):
    marker = tmp_path / "pwned"
    description = hostile(marker)
    result = cookies.bake(extra_context={**NO_LOCK, "description": description})
    assert result.exit_code == 0, result.exception
    assert not marker.exists()
    assert_verbatim(result.project_path, description)


def test_a_module_left_in_the_temporary_folder_is_never_imported_by_the_hooks(cookies, tmp_path, monkeypatch):
    """cookiecutter runs each hook from a file in the temporary folder, which Python puts first
    on sys.path: a shlex.py anyone left there would be imported instead of the standard library's."""
    import tempfile

    folder, marker = tmp_path / "tmp", tmp_path / "imported"
    folder.mkdir()
    (folder / "shlex.py").write_text(f"open({str(marker)!r}, 'a').write(__file__)\n")
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    result = cookies.bake(extra_context=NO_LOCK)
    assert result.exit_code == 0, result.exception
    assert not marker.exists()


# ---- the post-generation hook in a bake ----------------------------------------------------


def test_next_steps_are_printed_and_git_is_left_to_the_user(cookies, capfd):
    result = cookies.bake(extra_context=NO_LOCK)
    out = capfd.readouterr().out
    project = result.project_path
    assert f"cd {project}\n" in out
    assert "git init -b main && git add ." in out
    assert "git push -u origin main" in out
    assert "from azure-pipelines.yaml" in out
    assert "Pipfile.lock: not locked (lock_dependencies is false)." in out
    assert not (project / ".git").exists()


def test_the_hostspace_values_are_split_and_the_combined_file_is_gone(bake):
    chart = bake(hostspaces="sandbox, qa, live") / "chart"
    assert sorted(path.name for path in chart.glob("values-*.yaml")) == [
        "values-live.yaml",
        "values-qa.yaml",
        "values-sandbox.yaml",
    ]
    assert (chart / "values-live.yaml").read_text().startswith("# values-live.yaml: ")


def test_the_environment_variable_skips_the_lock(cookies, capfd, monkeypatch):
    monkeypatch.setenv("APPSTACK_SKIP_LOCK", "1")
    result = cookies.bake(extra_context={"lock_dependencies": True})
    out = capfd.readouterr().out
    assert result.exit_code == 0, result.exception
    assert not (result.project_path / "source" / "Pipfile.lock").exists()
    assert "not locked (APPSTACK_SKIP_LOCK is set)" in out
    # Lock first, then commit and push; or in the base image (the manual's docker command)
    steps = out.split("Next steps:", 1)[1]
    assert steps.index("make lock ") < steps.index("git init") and "make lock-in-container" in steps


def test_a_bake_writes_only_its_project_and_the_same_answers_give_the_same_files(cookies, tmpdir):
    first, second = (cookies.bake(extra_context=NO_LOCK).project_path for _ in range(2))
    for project in (first, second):
        assert [path.name for path in project.parent.iterdir()] == [project.name]

    assert tree(first) == tree(second)


def test_a_bake_leaves_no_copy_of_a_hook_in_the_temporary_folder(cookies, monkeypatch, tmp_path):
    """cookiecutter runs each hook from a copy rendered with the answers, written into the
    temporary folder and never removed by it: each hook removes its own copy."""
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(temporary))
    result = cookies.bake(extra_context=NO_LOCK)
    assert result.exit_code == 0, result.exception
    assert sorted(path.name for path in temporary.iterdir()) == []


def test_both_hooks_know_cookiecutters_copies_by_the_name_tempfile_gives_them(tmp_path):
    """The pre-gen hook's rule and the post-gen hook's are one: tempfile's names, with .py."""
    with tempfile.NamedTemporaryFile(suffix=".py", dir=tmp_path) as copy:
        name = os.path.basename(copy.name)
    assert pre.COOKIECUTTERS_COPY.fullmatch(name)
    assert re.fullmatch(post.TEMPFILE_NAME + r"\.py", name)
    assert pre.COOKIECUTTERS_COPY.pattern == post.TEMPFILE_NAME + r"\.py"
    assert not pre.COOKIECUTTERS_COPY.fullmatch("pre_gen_project.py")


def test_a_bake_leaves_no_bytecode_in_the_project(cookies, monkeypatch):
    """The post-gen hook loads scripts/lock.py as a module: where Python writes bytecode (the
    suite turns it off), that must not leave a scripts/__pycache__ in the team's new repository."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    project = cookies.bake(extra_context=NO_LOCK).project_path
    assert sorted(path.relative_to(project).as_posix() for path in project.rglob("__pycache__")) == []


PIP_INDEX = "https://mirror.example.com/pypi/simple"


@pytest.fixture
def pip_without_config(monkeypatch):
    """No pip configuration and no PIP_INDEX_URL unless a test sets one."""
    monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)
    monkeypatch.delenv("PIP_INDEX_URL", raising=False)
    return monkeypatch


def pipfile_sources(project):
    return tomllib.loads((project / "source" / "Pipfile").read_text()).get("source", [])


def test_without_package_index_the_machines_index_url_goes_into_the_pipfile(cookies, capfd, pip_without_config):
    pip_without_config.setenv("PIP_INDEX_URL", PIP_INDEX)
    project = cookies.bake(extra_context=NO_LOCK).project_path
    assert pipfile_sources(project) == [{"name": "pip-index", "url": PIP_INDEX, "verify_ssl": True}]
    assert (project / "source" / "Pipfile").read_text().startswith("# The package index this machine's pip")
    summary = capfd.readouterr().out
    assert f"Pipfile: the package index is {PIP_INDEX}, from this machine's PIP_INDEX_URL; it stays in" in summary
    assert "edit that block (then `make lock`) to use another" in summary


def test_without_any_index_url_the_pipfile_has_no_source(cookies, pip_without_config):
    assert pipfile_sources(cookies.bake(extra_context=NO_LOCK).project_path) == []


def test_an_index_url_with_credentials_is_never_written(cookies, capfd, pip_without_config):
    pip_without_config.setenv("PIP_INDEX_URL", "https://me:s3cret@mirror.example.com/simple")
    project = cookies.bake(extra_context=NO_LOCK).project_path
    assert pipfile_sources(project) == []
    assert "s3cret" not in (project / "source" / "Pipfile").read_text()
    assert "it holds credentials" in capfd.readouterr().out


def test_a_loopback_index_of_this_machine_stays_out_of_the_pipfile_and_the_summary_says_how_to_set_one(
    cookies, capfd, pip_without_config
):
    """A proxy on this machine's 127.0.0.1 serves its lock, never the pipeline's build."""
    pip_without_config.setenv("PIP_INDEX_URL", f"http://127.0.0.1:{free_port()}/simple")
    project = cookies.bake(extra_context=NO_LOCK).project_path
    assert pipfile_sources(project) == []
    assert "127.0.0.1" not in (project / "source" / "Pipfile").read_text()
    out = capfd.readouterr().out
    assert "  Pipfile: this machine's index-url was not written (it is a loopback address" in out
    [how] = [line for line in out.splitlines() if "set package_index" in line]
    command = shlex.split(how.split("set package_index: ", 1)[1])
    assert command[0] == "cookiecutter" and Path(command[1]) == REPO
    assert command[2:] == ["package_index=https://<your index>/simple"]


def test_the_command_that_sets_package_index_is_tasks_py_generate_when_that_generated(default_project):
    generate = ["python3", str(REPO / "tasks.py"), "generate"]
    environ = {"PIP_CONFIG_FILE": os.devnull, "PIP_INDEX_URL": "file:///srv/wheels"}
    environ[pre.GENERATE_VARIABLE] = json.dumps(generate)  # as tasks.py generate sets it
    line = post.use_machine_index(default_project, {"package_index": "", "_template": str(REPO)}, environ)
    assert "(it is not an http(s) URL (a file:// URL or a path is on this machine)" in line
    assert shlex.split(line.splitlines()[1].split(": ", 1)[1]) == [
        *generate,
        "package_index=https://<your index>/simple",
    ]


def test_package_index_wins_over_the_machines_index(cookies, pip_without_config):
    pip_without_config.setenv("PIP_INDEX_URL", PIP_INDEX)
    project = cookies.bake(extra_context={**NO_LOCK, "package_index": PRIVATE_INDEX["package_index"]}).project_path
    assert [source["name"] for source in pipfile_sources(project)] == ["private"]


# ---- example answers in production's values ---------------------------------------------------


def summary_warnings(out):
    return [line.strip() for line in out.splitlines() if line.strip().startswith("WARNING:")]


def test_the_example_platform_domain_is_named_with_how_to_set_it(cookies, capfd):
    cookies.bake(extra_context=NO_LOCK)
    assert summary_warnings(capfd.readouterr().out) == [
        f"WARNING: platform_domain {DEFAULTS['platform_domain']} is an example, which production's chart values "
        "use: answer yours (platform_domain=<value>), or set it for every project in a cookiecutter user config's "
        "default_context (README)"
    ]


def test_real_answers_give_no_warning_and_each_example_one(bake):
    real = {
        "platform_domain": "apps.corp.net",
        "docker_registry": "registry.corp.net:5000",
        "custom_url": "orders.corp.net",
    }
    examples = {"docker_registry": "registry.example.corp", "custom_url": "orders.example.org"}
    assert post.placeholder_warnings(bake(**real), {**DEFAULTS, **real}) == []
    # bake() takes only the answers that differ: DEFAULTS would bring lock_dependencies back.
    warned = [
        line.split()[1]
        for line in post.placeholder_warnings(bake(**{**real, **examples}), {**DEFAULTS, **real, **examples})
    ]
    assert warned == ["custom_url", "docker_registry"]


# ---- the post-generation helpers, called directly ------------------------------------------


def test_split_hostspace_values_names_each_file_by_its_first_line():
    text = "# values-dev.yaml: dev\na: 1\n---\n# values-prod.yaml: prod\na: 2\n"
    assert post.split_hostspace_values(text) == {
        "values-dev.yaml": "# values-dev.yaml: dev\na: 1\n",
        "values-prod.yaml": "# values-prod.yaml: prod\na: 2\n",
    }


def test_the_lock_is_skipped_by_answer_or_environment():
    assert post.skip_reason({"lock_dependencies": False}, {}) == "lock_dependencies is false"
    assert post.skip_reason({"lock_dependencies": True}, {"APPSTACK_SKIP_LOCK": "1"}) == "APPSTACK_SKIP_LOCK is set"
    assert post.skip_reason({"lock_dependencies": True}, {"APPSTACK_SKIP_LOCK": "0"}) == ""


def test_the_chart_lint_runs_one_helm_per_core_at_a_time(default_project, tmp_path, monkeypatch):
    """40 hostspaces started 37 helms at once (1.6 GB): each hostspace's lint waits for a core."""
    log, helm = tmp_path / "helm.log", tmp_path / "helm"
    helm.write_text(f"#!/bin/sh\necho start >> {log}\nsleep 0.2\necho end >> {log}\n")
    helm.chmod(0o755)
    monkeypatch.setattr(post, "CORES", 2)
    spaces = ", ".join(f"space{number}" for number in range(8))
    assert post.helm_warnings(default_project, {"hostspaces": spaces}, str(helm), os.environ) == []
    running, most = 0, 0
    for event in log.read_text().split():
        running += 1 if event == "start" else -1
        most = max(most, running)
    assert log.read_text().split().count("start") == 8
    assert most == 2


# ---- generating over an existing project ---------------------------------------------------


def regenerate(output, **options):
    """cookiecutter again into `output`, over the project made there (overwrite_if_exists)."""
    from cookiecutter.main import cookiecutter

    return cookiecutter(
        str(REPO), no_input=True, output_dir=str(output), overwrite_if_exists=True, extra_context=NO_LOCK, **options
    )


def tree(root):
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


TEAMS_EDITS = ("source/api/greetings.py", "chart/templates/deployment.yaml", "chart/values-prod.yaml", "source/Pipfile")


@pytest.fixture
def teams_project(cookies, pip_without_config):
    """A generated project the team has worked on: its code, a chart template, a values file
    and the Pipfile; its chart templates are a linked folder (shared with another repository),
    through which a tool that writes files would write into the other repository's."""
    pip_without_config.setenv("PIP_INDEX_URL", PIP_INDEX)  # the hook writes it into the Pipfile
    project = cookies.bake(extra_context=NO_LOCK).project_path
    for relative in TEAMS_EDITS:
        path = project / relative
        path.write_text(path.read_text() + "\n# the team's own line\n")
    shared = project.parent / "shared-templates"
    (project / "chart" / "templates").rename(shared)
    (project / "chart" / "templates").symlink_to(shared)
    return project


@pytest.mark.parametrize("skip_if_file_exists", [False, True], ids=["-f", "-f -s"])
def test_generating_over_a_project_refuses_and_changes_nothing(teams_project, skip_if_file_exists, capfd):
    before, shared_before = tree(teams_project), tree(teams_project.parent / "shared-templates")
    with pytest.raises(FailedHookException):
        regenerate(teams_project.parent, skip_if_file_exists=skip_if_file_exists)
    err = capfd.readouterr().err
    assert f"{teams_project} already holds files (" in err
    assert "run `make update` there" in err
    assert tree(teams_project) == before
    assert tree(teams_project.parent / "shared-templates") == shared_before
    assert (teams_project / "chart" / "templates").is_symlink()


def test_there_is_no_override_of_the_refusal(teams_project, monkeypatch):
    """The variable that used to override the refusal is gone: `make update` is the way."""
    monkeypatch.setenv("APPSTACK_OVERWRITE", "1")
    before = tree(teams_project)
    with pytest.raises(FailedHookException):
        regenerate(teams_project.parent, skip_if_file_exists=True)
    assert tree(teams_project) == before


@pytest.mark.parametrize("linked", ["source", "chart/templates"])
def test_a_linked_folder_of_the_team_is_followed_and_generating_over_it_refuses(tmp_path, linked, capfd):
    """`source -> ../shared/source`: the target holds no file of its own, but -f would write
    through the link, over the team's api/__init__.py and Pipfile in the shared folder."""
    shared = tmp_path / "shared" / "folder"
    (shared / "api").mkdir(parents=True)
    (shared / "api" / "__init__.py").write_text("# the team's package\n")
    (shared / "Pipfile").write_text("# the team's Pipfile\n")
    target = tmp_path / "out" / DEFAULTS["app_name"]
    (target / linked).parent.mkdir(parents=True)
    (target / linked).symlink_to(os.path.relpath(shared, (target / linked).parent), target_is_directory=True)
    before = tree(shared)
    assert pre.existing_files(target) == [f"{linked}/Pipfile", f"{linked}/api/__init__.py"]
    with pytest.raises(FailedHookException):
        regenerate(target.parent)
    assert "already holds files (" in capfd.readouterr().err
    assert tree(shared) == before


def test_a_linked_folder_that_holds_nothing_counts_and_a_loop_ends(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "source").symlink_to(tmp_path / "empty")
    (tmp_path / "project" / "again").symlink_to(tmp_path / "project")  # a loop: followed once
    assert pre.existing_files(tmp_path / "project") == ["source/"]


def test_a_git_folder_alone_is_not_a_project(tmp_path):
    (tmp_path / ".git" / "objects").mkdir(parents=True)
    (tmp_path / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    assert pre.refusal(tmp_path, pre.existing_files(tmp_path)) is None
    (tmp_path / "README.md").write_text("# from Azure Repos\n")
    assert "already holds files (README.md)" in pre.refusal(tmp_path, pre.existing_files(tmp_path))


# ---- a generation that was interrupted -----------------------------------------------------


def test_both_hooks_name_the_mark_of_an_incomplete_project_alike():
    assert pre.INCOMPLETE == post.INCOMPLETE


def test_a_finished_bake_holds_no_mark_and_the_pre_gen_hook_leaves_one_until_the_post_gen_hook(cookies, monkeypatch):
    """The pre-gen hook marks the project before cookiecutter writes a file; the post-gen hook
    takes the mark away once it holds its stop signals. A project without the post-gen hook
    (interrupted before it) keeps the mark, which says how to generate it again."""
    project = cookies.bake(extra_context=NO_LOCK).project_path
    assert not (project / pre.INCOMPLETE).exists()
    from cookiecutter.hooks import run_hook_from_repo_dir as real

    monkeypatch.setattr(
        "cookiecutter.generate.run_hook_from_repo_dir",
        lambda repo, hook, *args: real(repo, hook, *args) if hook == "pre_gen_project" else None,
    )
    unfinished = cookies.bake(extra_context={**NO_LOCK, "app_name": "orders"}).project_path
    notice = (unfinished / pre.INCOMPLETE).read_text()
    assert notice.startswith(f"flask-appstack: {unfinished} is NOT a complete project: generating it was interrupted")
    words = shlex.split(notice.splitlines()[-1])
    assert words[:4] == ["cookiecutter", "--no-input", "--overwrite-if-exists", "--output-dir"]
    assert "app_name=orders" in words


def test_generating_over_an_interrupted_generation_completes_it(cookies, tmp_path, capfd):
    """Interrupted while cookiecutter wrote its files: the mark's command (-f) writes them all."""
    first = cookies.bake(extra_context=NO_LOCK).project_path
    complete = tree(first)
    project = tmp_path / "again" / first.name
    shutil.copytree(first, project)
    for path in sorted(project.rglob("*"))[len(complete) // 2 :]:  # half of it written
        if path.is_file():
            path.unlink()
    (project / "chart" / "values-dev.yaml").unlink(missing_ok=True)
    pre.mark_incomplete(str(project), {**rendered(), **NO_LOCK, "_template": str(REPO)})
    assert pre.refusal(project, pre.existing_files(project)) is None
    regenerate(project.parent)
    assert tree(project) == complete
    assert "already holds files" not in capfd.readouterr().err


def test_the_hook_tells_crufts_renders_for_a_diff_or_an_update_from_a_project_being_made(tmp_path):
    """cruft renders into a fresh tempfile directory, with its `_commit` answer: the hook then
    only writes the files (no lock, no lint, no report); cruft create and cookiecutter do not."""
    import tempfile

    render = Path(tempfile.mkdtemp()) / "orders"
    render.mkdir()
    try:
        assert post.cruft_rendering(render, {"_commit": "0" * 40})
        assert not post.cruft_rendering(render, {})  # cookiecutter's, whatever the folder
        assert not post.cruft_rendering(tmp_path / "orders", {"_commit": "0" * 40})  # cruft create
    finally:
        shutil.rmtree(render.parent)


# ---- the package index: this machine's pip index-url, written when the pipeline reaches it ------

PIP_INDEX = "https://mirror.example.com/pypi/simple"


def test_the_machines_index_url_follows_pips_precedence(tmp_path):
    """PIP_INDEX_URL, else [install]'s, else [global]'s (alone too); extra indexes are no index of their own."""
    config = tmp_path / "pip.conf"
    config.write_text(
        "[global]\nindex-url = https://global.example.com/simple\n"
        "[install]\nindex_url = https://install.example.com/simple\n"
    )
    environ = {"PIP_CONFIG_FILE": str(config)}
    assert post.machine_index_url(environ, tmp_path) == "https://install.example.com/simple"
    assert post.machine_index_url({**environ, "PIP_INDEX_URL": PIP_INDEX}, tmp_path) == PIP_INDEX
    config.write_text("[global]\nindex-url = https://global.example.com/simple\n")
    assert post.machine_index_url(environ, tmp_path) == "https://global.example.com/simple"
    config.write_text("[global]\nextra-index-url = https://extra.example.com/simple\n")
    assert post.machine_index_url(environ, tmp_path) == ""
    assert post.pip_config_files({"PIP_CONFIG_FILE": os.devnull}) == []


def test_an_http_index_is_written_without_ssl_verification():
    block, _ = post.index_source("http://pypi.internal:8080/simple")
    assert tomllib.loads(block)["source"] == [
        {"name": "pip-index", "url": "http://pypi.internal:8080/simple", "verify_ssl": False}
    ]
    assert post.index_source('https://x.example.com/simple" evil = "1')[0] is None


# Indexes that serve this machine only: the pipeline's build agents reach none of them.
MACHINE_ONLY_INDEXES = {
    "127.0.0.1": ("http://127.0.0.1:3141/root/pypi/+simple/", "loopback"),
    "127.0.0.0/8": ("http://127.42.0.7/simple", "loopback"),
    "::1": ("http://[::1]:8080/simple", "loopback"),
    "localhost": ("https://localhost/simple", "loopback"),
    "localhost upper case": ("http://LOCALHOST:3141/simple", "loopback"),
    "a .localhost name": ("http://pypi.localhost/simple", "loopback"),
    "file://": ("file:///srv/wheels/simple", "not an http(s) URL"),
    "a path": ("/opt/wheels", "not an http(s) URL"),
    "another scheme": ("ftp://mirror.example.com/simple", "not an http(s) URL"),
}


@pytest.mark.parametrize("url, reason", MACHINE_ONLY_INDEXES.values(), ids=MACHINE_ONLY_INDEXES.keys())
def test_an_index_that_serves_this_machine_only_is_never_written(url, reason):
    block, why_not = post.index_source(url)
    assert block is None and reason in why_not and "pipeline" in why_not


@pytest.mark.parametrize(
    "url", ["https://pypi.corp.net/simple", "http://10.1.2.3:8080/simple", "http://pypi:3141/simple"]
)
def test_an_index_on_another_host_is_one_the_pipeline_may_reach(url):
    assert post.unreachable_by_the_pipeline(url) == ""
    assert tomllib.loads(post.index_source(url)[0])["source"][0]["url"] == url


@pytest.mark.parametrize(
    "config",
    [
        None,
        "[global]\nindex-url = https://global.example.com/simple\n[install]\nindex_url = https://install.example.com/simple\n",
        "[global]\nindex-url = https://global.example.com/simple\nextra-index-url = https://extra.example.com/simple\n",
    ],
    ids=["this-machine", "install-over-global", "global-only"],
)
def test_the_hook_reads_the_index_url_that_pip_itself_lists(tmp_path, monkeypatch, config):
    """The hook reads pip's files itself (starting pip would double a bake's time); pip's own
    `pip config list` (the environment, then [install], then [global]) is the judge."""
    if config:
        (tmp_path / "pip.conf").write_text(config)
        monkeypatch.setenv("PIP_CONFIG_FILE", str(tmp_path / "pip.conf"))
    listed = subprocess.run([sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=True)
    found = dict(re.findall(r"^(\S+?)='(.*)'$", listed.stdout, flags=re.MULTILINE))
    expected = next(
        (found[key] for key in (":env:.index-url", "install.index-url", "global.index-url") if key in found), ""
    )
    assert post.machine_index_url(os.environ) == expected
    if config:
        assert (
            expected == re.search(r"index[-_]url = (\S+)", config.split("[install]")[-1])[1]
        )  # the case is a real one
