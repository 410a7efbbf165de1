"""The generated project's everyday habits: ruff, pre-commit, Renovate and `make check`.

`make lint` (yamllint, helm lint, hadolint, ruff) passes on every bake; the pre-commit hooks run the project's own
linters and stop a commit with a lint error; Renovate's own validator accepts renovate.json;
`make check` runs every local gate in the pipeline's order and passes on a fresh project,
and each gate turns red on a defect planted in a copy of an installed project.
"""

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from answers import COMBINATIONS, NON_DEFAULT, combination_id

from tools.cache import built_once, cache_dir
from tools.cache import run as tools_run
from tools.project import DEFAULTS, REPO

# The tests that use the installed default project share the worker that locks it.
same_worker = pytest.mark.xdist_group("default-lock")


def run(command, cwd, env=None, timeout=900):
    return tools_run(command, check=False, cwd=cwd, env=env, timeout=timeout)


# ---- make lint on every combination ---------------------------------------------------------


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_make_lint_passes_on_every_combination(bake, answers, make_environment):
    """The project's own lint gate on each combination of answers, with the suite's linters
    (pinned as `make tools` pins them) and helm 3.17: yamllint over the pipeline, Chart.yaml and
    every values file, helm lint with each hostspace's values, hadolint, ruff check and format.
    No ruff cache: the bakes are shared, and other tests look at every file in them."""
    project = bake(**answers)
    environment = make_environment(answers, RUFF_NO_CACHE="true")
    environment["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), environment["PATH"]])
    linted = run(["make", "lint"], cwd=project, env=environment)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    hostspaces = [space.strip() for space in {**DEFAULTS, **answers}["hostspaces"].split(",")]
    assert linted.stdout.count("1 chart(s) linted, 0 chart(s) failed") == len(hostspaces)
    assert not (project / ".ruff_cache").exists()


# The template's own Python, with the template's pyproject.toml (the generated project's code is
# checked in its bakes above: unrendered, it is not Python yet).


def test_the_templates_own_code_passes_ruff_from_its_root():
    """`ruff check .` as a maintainer types it: the generated side is left to its own settings."""
    checked = run([sys.executable, "-m", "ruff", "check", "--no-cache", "."], cwd=REPO)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (
        "hooks/post_gen_project.py"
        in run([sys.executable, "-m", "ruff", "check", "--show-files", "."], cwd=REPO).stdout
    )
    formatted = run([sys.executable, "-m", "ruff", "format", "--check", "--diff", "--no-cache", "."], cwd=REPO)
    assert formatted.returncode == 0, formatted.stdout + formatted.stderr


# ---- Renovate ------------------------------------------------------------------------------------

# The newest Renovate whose engines include Node 20 (40.0.0 needs Node 22.13).
RENOVATE = "renovate@39.264.1"


def renovate_validator():
    """renovate-config-validator of RENOVATE, installed with npm once into the cache."""
    if not shutil.which("npm"):
        pytest.skip("npm is not installed: Renovate's validator is an npm package")

    def install(prefix):
        # A package.json makes the directory npm's project, without --prefix: that would also
        # move npm's global config to <prefix>/etc/npmrc and drop the machine's (its cafile
        # behind a TLS-inspecting proxy, its registry mirror).
        prefix.mkdir()
        (prefix / "package.json").write_text("{}\n")
        tools_run(["npm", "install", "--no-audit", "--no-fund", RENOVATE], cwd=prefix)

    return built_once(cache_dir("npm") / RENOVATE, install) / "node_modules" / ".bin" / "renovate-config-validator"


def test_renovates_own_validator_accepts_renovate_json(bake, tmp_path):
    """Of the answers, renovate.json holds only app_name: the combination whose app_name is not
    the default's stands for every one."""
    validator = renovate_validator()
    project = bake(**NON_DEFAULT)
    validated = run([str(validator), "--strict", "renovate.json"], cwd=project)
    assert validated.returncode == 0, validated.stdout + validated.stderr
    assert "Config validated successfully" in validated.stdout
    # The validator is no rubber stamp: a manager Renovate does not know is refused.
    config = json.loads((project / "renovate.json").read_text())
    config["enabledManagers"].append("pipenv-but-misspelled")
    (tmp_path / "renovate.json").write_text(json.dumps(config))
    refused = run([str(validator), "--strict", "renovate.json"], cwd=tmp_path)
    assert refused.returncode != 0 and "pipenv-but-misspelled" in refused.stdout + refused.stderr


def test_renovate_updates_the_pipfile_the_image_and_the_chart_but_not_the_python_or_pipenv_alone(default_project):
    """And the cookiecutter that make update renders with (scripts/update-requirements.txt, which
    Renovate's pip_requirements manager finds by its name)."""
    config = json.loads((default_project / "renovate.json").read_text())
    assert set(config["enabledManagers"]) == {"pipenv", "dockerfile", "helmv3", "helm-values", "pip_requirements"}
    disabled = [rule for rule in config["packageRules"] if rule.get("enabled") is False]
    assert ["pipenv"] in [rule.get("matchPackageNames") for rule in disabled]
    assert any(
        rule.get("matchPackageNames") == ["**/library/python"] and rule["matchUpdateTypes"] == ["major", "minor"]
        for rule in disabled
    )


# ---- pre-commit ----------------------------------------------------------------------------------

# The test venv's pre-commit (requirements/dev.txt pins it).
PRE_COMMIT = Path(sys.executable).parent / "pre-commit"


def hook_says(output, hook, status):
    """Whether pre-commit's line for the hook named `hook` ends with `status` (Passed, Failed)."""
    return any(line.startswith(hook) and line.endswith(status) for line in output.splitlines())


@same_worker
def test_pre_commit_runs_the_projects_own_linters_and_stops_a_lint_error(installed_copy, tmp_path):
    project, environment = installed_copy
    config = (project / ".pre-commit-config.yaml").read_text()
    assert "repo: local" in config and "https://" not in config  # no hook repository to fetch
    environment = {**environment, "PRE_COMMIT_HOME": str(tmp_path / "pre-commit-home")}
    for command in (["git", "init", "-q"], ["git", "add", "-A"]):
        assert run(command, cwd=project).returncode == 0
    passed = run([str(PRE_COMMIT), "run", "--all-files"], cwd=project, env=environment)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    for hook in ("ruff", "bandit", "yamllint", "helm lint", "hadolint"):
        assert hook_says(passed.stdout, hook, "Passed"), hook

    (project / "source" / "api" / "planted.py").write_text('"""A planted lint error."""\n\nimport os\n')
    assert run(["git", "add", "-A"], cwd=project).returncode == 0
    failed = run([str(PRE_COMMIT), "run", "--all-files"], cwd=project, env=environment)
    assert failed.returncode != 0
    ruff_line = next(line for line in failed.stdout.splitlines() if line.startswith("ruff"))
    assert ruff_line.endswith("Failed") and "F401" in failed.stdout, failed.stdout


# The template's own hooks (.pre-commit-config.yaml at its root), in a clone of what is committed.
TEMPLATE_HOOKS = ["ruff check", "ruff format", "README's variable table", "yamllint", "GitHub workflows"]
TEMPLATE_HOOKS += ["azure-pipelines.yml", "bandit"]


def test_the_templates_pre_commit_hooks_pass_as_committed_and_stop_a_lint_error_and_a_stale_table(tmp_path):
    """`pre-commit run --all-files` in a clone of the template: every hook passes on what is
    committed; a planted unused import and an edited row of README.md's variable table each
    turn their hook red. The hooks' tools come from the package index, once (a cached home)."""
    clone = tmp_path / "flask-appstack"
    assert run(["git", "clone", "-q", str(REPO), str(clone)], cwd=tmp_path).returncode == 0
    config = (clone / ".pre-commit-config.yaml").read_text()
    assert "repo: local" in config and "://" not in config  # no hook repository to fetch
    environment = {**os.environ, "PRE_COMMIT_HOME": str(cache_dir("pre-commit"))}
    passed = run([str(PRE_COMMIT), "run", "--all-files"], cwd=clone, env=environment)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert [hook for hook in TEMPLATE_HOOKS if not hook_says(passed.stdout, hook, "Passed")] == [], passed.stdout

    (clone / "hooks" / "planted.py").write_text('"""A planted lint error."""\n\nimport os\n')
    readme = clone / "README.md"
    row = "| `app_name` | Application name (repository, chart, image and release name; lowercase letters, digits and '-') |"
    assert row in readme.read_text()
    readme.write_text(readme.read_text().replace(row, "| `app_name` | the name |"))
    assert run(["git", "add", "-A"], cwd=clone).returncode == 0
    failed = run([str(PRE_COMMIT), "run", "--all-files"], cwd=clone, env=environment)
    assert failed.returncode != 0
    assert hook_says(failed.stdout, "ruff check", "Failed") and "F401" in failed.stdout, failed.stdout
    assert hook_says(failed.stdout, "README's variable table", "Failed"), failed.stdout
    assert "README.md's variable table is stale" in failed.stdout
    assert hook_says(failed.stdout, "yamllint", "Passed")  # the others still pass


@same_worker
def test_make_tools_installs_the_pinned_linters_and_make_lint_passes(installed_copy):
    """`make tools` (the `installed` fixture ran it) puts the pinned linters into .tools/, which
    git ignores; `make lint` then runs yamllint over the project, helm lint per hostspace,
    hadolint and ruff, with only helm from elsewhere."""
    project, environment = installed_copy
    assert sorted(p.name for p in (project / ".tools/bin").iterdir()) == ["bandit", "hadolint", "ruff", "yamllint"]
    assert ".tools/" in (project / ".gitignore").read_text().splitlines()
    linted = run(["make", "lint"], cwd=project, env=environment)
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert linted.stdout.count("1 chart(s) linted, 0 chart(s) failed") == len(DEFAULTS["hostspaces"].split(","))
    assert "All checks passed!" in linted.stdout  # ruff


# ---- make check ----------------------------------------------------------------------------------

# The commands of the gates, in the pipeline's order, as `make check` echoes them.
GATE_COMMANDS = [
    "ruff check source scripts",
    "ruff format --check source scripts",
    "source/.venv/bin/pytest",
    "bandit -q -r source/api source/scale -x source/scale/tests",
    "yamllint --strict .",
    "helm lint --strict chart",
    "helm unittest chart",
    "hadolint Dockerfile",
]


@same_worker
def test_make_check_runs_every_gate_in_the_pipelines_order_and_passes_on_a_new_project(installed_copy, helm_unittest):
    project, environment = installed_copy
    checked = run(["make", "check"], cwd=project, env=environment)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    lines = checked.stdout.splitlines()
    positions = [next((n for n, line in enumerate(lines) if command in line), None) for command in GATE_COMMANDS]
    assert None not in positions and positions == sorted(positions), dict(zip(GATE_COMMANDS, positions))
    assert "Required test coverage of 90% reached" in checked.stdout
    hostspaces = DEFAULTS["hostspaces"].split(",")
    assert checked.stdout.count("1 chart(s) linted, 0 chart(s) failed") == len(hostspaces)
    assert re.search(r"^Test Suites:\s+(\d+) passed, \1 total$", checked.stdout, re.MULTILINE)
    assert lines[-1] == "make check: every gate passed"


# The example's two lines in api/__init__.py, which its docstring says to delete with it.
EXAMPLE_LINES = {"from api import greetings", 'app.register_blueprint(greetings.bp, url_prefix="/api/v1")'}


def remove_the_example(project):
    """What a team does to remove the example: its module, its tests and its two lines."""
    (project / "source/api/greetings.py").unlink()
    (project / "source/tests/test_greetings.py").unlink()
    factory = project / "source/api/__init__.py"
    lines = factory.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.strip() not in EXAMPLE_LINES]
    assert len(lines) - len(kept) == len(EXAMPLE_LINES)
    factory.write_text("".join(kept))


@same_worker
def test_make_check_stays_green_when_the_team_removes_the_example(installed_copy, helm_unittest):
    """The platform's tests never use the example route: without it, every gate still passes,
    the coverage gate included, and the platform's tests still run."""
    project, environment = installed_copy
    remove_the_example(project)
    checked = run(["make", "check"], cwd=project, env=environment)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "source/scale/tests/test_wiring.py ." in checked.stdout
    assert "test_greetings" not in checked.stdout
    assert "Required test coverage of 90% reached" in checked.stdout
    assert checked.stdout.splitlines()[-1] == "make check: every gate passed"


FIRST_HOSTSPACE = DEFAULTS["hostspaces"].split(",")[0].strip()


def append(path, text):
    path.write_text(path.read_text() + text)


def uncovered_module(project):
    """A module with far more statements than the tests run: coverage falls under 90 %."""
    body = "".join(f"    value_{n} = {n}\n" for n in range(400))
    (project / "source/api/planted.py").write_text(f'"""Never imported."""\n\n\ndef unused():\n{body}')


def failing_test(project):
    (project / "source/tests/test_planted.py").write_text("def test_planted():\n    assert 1 + 1 == 3\n")


EVAL_OF_INPUT = '"""Evaluates what it is given."""\n\n\ndef run(text):\n    return eval(text)\n'


def eval_of_input(project):
    (project / "source/api/planted.py").write_text(EVAL_OF_INPUT)


def eval_of_input_in_the_platform(project):
    (project / "source/scale/planted.py").write_text(EVAL_OF_INPUT)


def unused_import(project):
    (project / "source/api/planted.py").write_text('"""Imports what it never uses."""\n\nimport os\n')


def unformatted_code(project):
    (project / "source/api/planted.py").write_text('"""Formatted by hand."""\n\nVALUE=( 1,2 )\n')


def broken_values(project):
    append(project / f"chart/values-{FIRST_HOSTSPACE}.yaml", "resources: [unclosed\n")


PRODUCTION = DEFAULTS["hostspaces"].split(",")[-1].strip()


def a_hostname_changed_in_the_values_alone(project):
    """The team's values file and the template's pipeline both name production's hostname."""
    values = project / f"chart/values-{PRODUCTION}.yaml"
    hostname = f"{DEFAULTS['app_name']}-{PRODUCTION}.{DEFAULTS['platform_domain']}"
    assert f"hostname: {hostname}\n" in values.read_text()
    values.write_text(values.read_text().replace(f"hostname: {hostname}\n", "hostname: renamed.example.org\n", 1))


def a_dr_region_changed_in_the_values_alone(project):
    """The team's values file names each DR site's hostname; the template's defaults.yaml, its region."""
    values = project / f"chart/values-{PRODUCTION}.yaml"
    hostname = f"{DEFAULTS['app_name']}-{PRODUCTION}.{DEFAULTS['dr_passive_region']}.{DEFAULTS['platform_domain']}"
    assert f"hostname: {hostname}\n" in values.read_text()
    values.write_text(
        values.read_text().replace(hostname, hostname.replace(f".{DEFAULTS['dr_passive_region']}.", ".north."), 1)
    )


def trailing_spaces_in_the_pipeline(project):
    append(project / "azure-pipelines.yaml", "# a comment   \n")


def token_mounted_in_the_pods(project):
    """A template defect that helm lint passes: only the chart's helm-unittest suites see it."""
    account = project / "chart/templates/serviceaccount.yaml"
    text = account.read_text()
    assert "automountServiceAccountToken: false" in text
    account.write_text(text.replace("automountServiceAccountToken: false", "automountServiceAccountToken: true"))


def cd_in_a_run_step(project):
    dockerfile = project / "Dockerfile"
    dockerfile.write_text(dockerfile.read_text().replace("USER 10001:10001", "RUN cd /app && ls\nUSER 10001:10001"))


# (defect, the gate that must turn red, what it says)
DEFECTS = [
    (failing_test, "test", "1 failed"),
    (uncovered_module, "test", "FAIL Required test coverage of 90% not reached"),
    (eval_of_input, "scan", "B307"),
    (eval_of_input_in_the_platform, "scan", "B307"),
    (unused_import, "python-lint", "F401"),
    (unformatted_code, "python-lint", "--> source/api/planted.py"),
    (broken_values, "helm-lint", f"values-{FIRST_HOSTSPACE}.yaml"),
    (
        a_hostname_changed_in_the_values_alone,
        "helm-lint",
        f"chart/values-{PRODUCTION}.yaml serves no host {DEFAULTS['app_name']}-{PRODUCTION}."
        f"{DEFAULTS['platform_domain']}, which azure-pipelines.yaml deploys it as",
    ),
    (
        a_dr_region_changed_in_the_values_alone,
        "helm-lint",
        f"chart/values-{PRODUCTION}.yaml gives the DR passive site the hostname {DEFAULTS['app_name']}-{PRODUCTION}."
        f"north.{DEFAULTS['platform_domain']}, which names no region {DEFAULTS['dr_passive_region']}",
    ),
    (token_mounted_in_the_pods, "helm-unittest", "- mounts no API token"),
    (trailing_spaces_in_the_pipeline, "yaml-lint", "trailing-spaces"),
    (cd_in_a_run_step, "docker-lint", "DL3003"),
]


@same_worker
@pytest.mark.parametrize("plant, gate, message", DEFECTS, ids=[defect[0].__name__ for defect in DEFECTS])
def test_each_gate_turns_red_on_its_defect(installed_copy, plant, gate, message, request):
    project, environment = installed_copy
    if gate == "helm-unittest":
        request.getfixturevalue("helm_unittest")  # skips, saying how to get it, where it cannot be had
    plant(project)
    result = run(["make", gate], cwd=project, env=environment)
    assert result.returncode != 0, result.stdout + result.stderr
    assert message in result.stdout + result.stderr


@same_worker
def test_make_test_ignores_another_projects_activated_virtualenv(installed_copy, tmp_path):
    """A developer's shell often has some other project's virtualenv activated: the gates
    still run in this project's own, with its packages."""
    project, environment = installed_copy
    other = tmp_path / "other-project-venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(other)], check=True)
    activated = {**environment, "VIRTUAL_ENV": str(other), "PATH": f"{other / 'bin'}{os.pathsep}{environment['PATH']}"}
    tested = run(["make", "test"], cwd=project, env=activated)
    assert tested.returncode == 0, tested.stdout + tested.stderr
    assert "Required test coverage of 90% reached" in tested.stdout
