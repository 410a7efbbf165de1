"""Generation: the tree, the answers in the right places, no template debris."""

import fnmatch
import itertools
import json
import re

import jsonschema
import pytest
import yaml
from answers import COMBINATIONS, DEFAULT_ANSWERS, NON_DEFAULT, PRIVATE_INDEX, answered, combination_id
from chart_matrix import helm_values, layered
from owners import owner_of

from tools.project import DEFAULTS, REPO, tomllib

EXPECTED_FILES = [
    "README.md",
    "docs/README.md",
    "Makefile",
    "scripts/lock.py",
    "pyproject.toml",
    ".gitignore",
    "source/Pipfile",
    "source/gunicorn.conf.py",
    "source/scale/__init__.py",
    "source/scale/settings.py",
    "source/scale/jsonlog.py",
    "source/scale/health.py",
    "source/scale/errors.py",
    "source/scale/logs.py",
    "source/scale/tests/__init__.py",
    "source/scale/tests/conftest.py",
    "source/api/__init__.py",
    "source/api/greetings.py",
    "source/tests/conftest.py",
    "source/tests/test_greetings.py",
    ".editorconfig",
    ".pre-commit-config.yaml",
    "renovate.json",
]

# Jinja's own syntax, or an answer named outside it (scripts/update.py speaks of cookiecutter's
# API, cookiecutter.json and f-strings' {{ }}: none of those is left over).
ANSWER_NAMES = "|".join(key for key in DEFAULTS if not key.startswith("_"))
LEFTOVER = re.compile(rf"\{{\{{-?\s*(cookiecutter|appstack)\b|\{{%|%\}}|\{{#|cookiecutter\.(_*({ANSWER_NAMES})|_\w+)\b")
AZURE_EXPRESSION = re.compile(r"\$\{\{[^}]*\}\}")


def leftover(path, line):
    """Cookiecutter's Jinja left in a generated line. Helm templates are copied verbatim and
    use {{ }} themselves, and Azure's ${{ }} expressions are meant to survive."""
    if "chart/templates" in path.as_posix():
        return "cookiecutter" in line
    return LEFTOVER.search(AZURE_EXPRESSION.sub("", line)) is not None


def text_files(project):
    for path in sorted(project.rglob("*")):
        if path.is_file():
            try:
                yield path, path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue


# The options the combinations cover pairwise: how to read each from the answers, and every
# value it can take (a custom URL and several hostspaces by whether there are any).
PAIRWISE = {
    "hpa": (lambda a: a["hpa"], {True, False}),
    "pvc": (lambda a: a["pvc_access_mode"] if a["pvc"] else "off", {"off", "ReadWriteOnce", "ReadWriteMany"}),
    "pod_anti_affinity": (lambda a: a["pod_anti_affinity"], {"none", "preferred", "required"}),
    "dr": (lambda a: a["dr"], {True, False}),
    "custom_url": (lambda a: bool(a["custom_url"]), {True, False}),
    "several hostspaces": (lambda a: "," in a["hostspaces"], {True, False}),
}
REJECTED_PAIRS = {(("pvc", "ReadWriteOnce"), ("pod_anti_affinity", "required"))}


def test_the_combinations_cover_the_chart_options_pairwise():
    rows = [{name: read(answered(answers)) for name, (read, _) in PAIRWISE.items()} for answers in COMBINATIONS]
    missing = [
        pair
        for first, second in itertools.combinations(PAIRWISE, 2)
        for pair in itertools.product(
            [(first, value) for value in PAIRWISE[first][1]], [(second, value) for value in PAIRWISE[second][1]]
        )
        if pair not in REJECTED_PAIRS and not any((row[first], row[second]) == (pair[0][1], pair[1][1]) for row in rows)
    ]
    assert missing == []


@pytest.mark.parametrize("name", [name for name in DEFAULT_ANSWERS if name != "lock_dependencies"])
def test_every_answer_takes_another_value_in_some_combination(name):
    """So that a new variable gets a combination that changes it (locking has test_lock.py)."""
    assert {str(answered(answers)[name]) for answers in COMBINATIONS} - {str(DEFAULT_ANSWERS[name])}


def test_cookiecutter_copies_unrendered_exactly_the_helm_templates_and_the_files_without_jinja():
    """Helm's templates are Go templates, whose {{ }} Jinja would take for its own, and a file
    without any Jinja renders to itself at the cost of a Jinja compilation per bake: those, and
    nothing else, are copied without rendering. None of them holds anything of cookiecutter's,
    and no pattern names a folder (cookiecutter would replace the team's folder whole)."""
    template = REPO / "{{cookiecutter.app_name}}"
    patterns = DEFAULTS["_copy_without_render"]

    def copied(path):
        return any(fnmatch.fnmatch(path.relative_to(template).as_posix(), pattern) for pattern in patterns)

    def helm(path):
        return "{{" in path.read_text() and not re.search(r"{{-? *(cookiecutter|appstack)\b", path.read_text())

    def without_jinja(path):
        return re.search(r"{{|{%|{#", path.read_text()) is None

    paths = sorted(template.rglob("*"))
    files = [path for path in paths if path.is_file()]
    unrendered = sorted(path for path in files if helm(path) or without_jinja(path))
    assert sorted(path for path in files if copied(path)) == unrendered
    assert [path for path in files if copied(path) and LEFTOVER.search(path.read_text())] == []
    assert [path for path in paths if path.is_dir() and copied(path)] == []


def test_default_bake_has_the_expected_tree(default_project):
    assert default_project.name == DEFAULTS["app_name"]
    missing = [name for name in EXPECTED_FILES if not (default_project / name).is_file()]
    assert missing == []


def test_the_platforms_tests_never_use_the_example(default_project):
    """A team may delete the example (integration/test_quality_gates.py deletes it and runs make check)."""
    tests = sorted((default_project / "source/scale/tests").glob("*.py"))
    assert tests
    assert [test.name for test in tests if re.search(r"greetings|/api/", test.read_text())] == []


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_no_template_debris_is_left(bake, answers):
    project = bake(**answers)
    debris = [
        f"{path.relative_to(project)}:{number}: {line.strip()}"
        for path, text in text_files(project)
        for number, line in enumerate(text.splitlines(), 1)
        if leftover(path, line)
    ]
    assert debris == []


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_every_yaml_and_json_file_parses(bake, answers):
    """Each YAML file outside chart/templates (helm's templates are not YAML until rendered)
    parses and holds at least one document that is not empty; each JSON file parses. The
    post-generation hook checks neither: this is where a template bug that breaks one shows."""
    project = bake(**answers)
    unparsed = []
    for path in sorted(project.rglob("*.json")):
        try:
            json.loads(path.read_text())
        except ValueError as error:
            unparsed.append(f"{path.relative_to(project)}: {error}")
    assert unparsed == [] and (project / "chart" / "values.schema.json").is_file()
    documents = {
        path.relative_to(project).as_posix(): [d for d in yaml.safe_load_all(path.read_text()) if d]
        for path in sorted(project.rglob("*.y*ml"))
        if "chart/templates" not in path.as_posix()
    }
    assert {"azure-pipelines.yaml", "chart/Chart.yaml", "chart/defaults.yaml", "chart/values.yaml"} <= set(documents)
    # chart/values.yaml is the team's, and holds no value until the team sets one (below).
    assert [name for name, docs in documents.items() if not docs] == ["chart/values.yaml"]


# --- the chart's values: the platform's defaults under the team's files -----------------------

TEAM_VALUES_MAX_LINES = 25


def values_schema(project):
    return jsonschema.Draft7Validator(json.loads((project / "chart/values.schema.json").read_text()))


def schema_errors(validator, values):
    return [f"{'.'.join(map(str, error.absolute_path))}: {error.message}" for error in validator.iter_errors(values)]


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_the_platforms_defaults_and_every_hostspaces_values_satisfy_the_schema(bake, answers):
    """helm checks only the team's values against values.schema.json (the defaults are the
    chart's own file, which helm does not read as values): defaults.yaml must satisfy the same
    schema, so that every value deployed comes from a file it checks. The team's files, and the
    values every hostspace's templates read, satisfy it too."""
    project = bake(**answers)
    chart, validator = project / "chart", values_schema(project)
    defaults = yaml.safe_load((chart / "defaults.yaml").read_text())
    assert schema_errors(validator, defaults) == []
    team = yaml.safe_load((chart / "values.yaml").read_text()) or {}
    for path in sorted(chart.glob("values-*.yaml")):
        hostspace = helm_values(team, team, yaml.safe_load(path.read_text()))
        assert schema_errors(validator, hostspace) == [], path.name
        assert schema_errors(validator, layered(defaults, hostspace)) == [], path.name


# Team files that set a part of what defaults.yaml holds: valid. The same fields weakened, and
# entries of what has no default without their required fields: refused.
SPARSE = [
    {},
    {"securityContext": {}, "podSecurityContext": {}},
    {"securityContext": {"runAsUser": 10002}},
    {"image": {"tag": "1.2.3"}},
    {"livenessProbe": {"httpGet": {"path": "/livez"}}},
    {"dr": {"sites": {"active": {}}}},
]
REFUSED = [
    {"securityContext": {"readOnlyRootFilesystem": False}},
    {"securityContext": {"capabilities": {}, "seccompProfile": {"type": "Unconfined"}}},
    {"podSecurityContext": {"runAsUser": 0}},
    {"image": {"tag": "latest"}},
    {"livenessProbe": {"httpGet": {"port": 0}}},
    {"dr": {"sites": {"active": {"region": "East US"}}}},
    {"securityContext": None},
    {"hosts": {"platform": {"hostname": "a.example.com"}}},
    {"extraVolumes": [{"secret": {"secretName": "x"}}]},
]


def test_the_schema_requires_nothing_the_platforms_defaults_set(default_project):
    """A team's file sets what it changes, nothing more: no value that defaults.yaml holds is
    required of it, and what it sets is checked as strictly as before (a null too, where
    the schema refused one); what has no default keeps its required fields."""
    validator = values_schema(default_project)
    assert [values for values in SPARSE if schema_errors(validator, values)] == []
    assert [values for values in REFUSED if not schema_errors(validator, values)] == []
    assert schema_errors(validator, {"hosts": {"platform": None}}) == []  # stops serving a hostname


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_the_teams_values_file_is_short_and_holds_no_platform_default(bake, answers):
    """chart/values.yaml is the team's: a header that says what it is, how the layers work and
    where every value is documented, and no value; the platform's defaults are defaults.yaml."""
    chart = bake(**answers) / "chart"
    text = (chart / "values.yaml").read_text()
    assert len(text.splitlines()) <= TEAM_VALUES_MAX_LINES
    assert yaml.safe_load(text) is None
    for named in ("defaults.yaml", "values-<hostspace>.yaml", "docs/kubernetes.md"):
        assert named in text, named
    defaults = yaml.safe_load((chart / "defaults.yaml").read_text())
    assert defaults["image"]["repository"] and defaults["securityContext"] and defaults["dr"]["sites"]
    header = (chart / "defaults.yaml").read_text().split("\n\n", 1)[0]
    assert "platform's defaults" in header and "values.yaml" in header and "values-<hostspace>.yaml" in header


# Renovate's helm-values manager reads the files this pattern matches (its documented default,
# docs.renovatebot.com/modules/manager/helm-values), which renovate.json leaves as it is.
RENOVATE_HELM_VALUES = re.compile(r"(^|/)values\.ya?ml$")


def test_renovate_never_proposes_the_charts_own_image(default_project):
    """Renovate reads the team's chart/values.yaml, where the chart's own image (if the team sets
    it) stays ignored by its rule; never the platform's chart/defaults.yaml, the template's file
    (a change there would conflict with the next template update), whose image has no tag."""
    config = json.loads((default_project / "renovate.json").read_text())
    assert "helm-values" not in config  # no file patterns of its own
    assert RENOVATE_HELM_VALUES.search("chart/values.yaml") and not RENOVATE_HELM_VALUES.search("chart/defaults.yaml")
    image = yaml.safe_load((default_project / "chart/defaults.yaml").read_text())["image"]
    assert image["tag"] == ""
    [rule] = [rule for rule in config["packageRules"] if rule.get("matchManagers") == ["helm-values"]]
    assert rule["enabled"] is False
    assert [
        glob for glob in rule["matchPackageNames"] if fnmatch.fnmatch(image["repository"], glob.replace("**/", "*/"))
    ]


def test_helm_packages_the_platforms_defaults(default_project):
    """The chart reads defaults.yaml with .Files.Get: no pattern of .helmignore may leave it out."""
    patterns = [
        line.strip().rstrip("/")
        for line in (default_project / "chart/.helmignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert [pattern for pattern in patterns if fnmatch.fnmatch("defaults.yaml", pattern)] == []
    assert "defaults.yaml" in (default_project / "chart/templates/_helpers.tpl").read_text()


@pytest.fixture(scope="module")
def custom_project(bake):
    return bake(**NON_DEFAULT)


def test_app_name_names_the_directory_and_the_service(custom_project):
    assert custom_project.name == "orders-api"
    assert '"orders-api"' in (custom_project / "source/scale/settings.py").read_text()
    assert "# orders-api" in (custom_project / "README.md").read_text()


def test_appcode_reaches_the_rbac_groups_in_the_readme_and_the_manual(custom_project):
    assert "ng-ngdc-ord7-*" in (custom_project / "README.md").read_text()
    assert "ng-ngdc-ord7-*" in (custom_project / "docs/local-development.md").read_text()


def test_python_version_sets_pipfile_and_base_image(custom_project):
    assert 'python_version = "3.12"' in (custom_project / "source/Pipfile").read_text()
    for name in ("docs/local-development.md", "Dockerfile", "Makefile"):
        assert "library/python:3.12-slim" in (custom_project / name).read_text(), name


def test_description_survives_verbatim(custom_project):
    assert NON_DEFAULT["description"] in (custom_project / "README.md").read_text()


def test_gunicorn_workers_is_the_default_worker_count(custom_project):
    assert '"GUNICORN_WORKERS": Setting("3"' in (custom_project / "source/scale/settings.py").read_text()
    run_locally = (custom_project / "docs/local-development.md").read_text()
    assert "gunicorn -w 3 -b :8080 --reload 'api:create_app()'" in run_locally


def test_private_index_reaches_the_pipfile_without_credentials(bake):
    pipfile = (bake(**PRIVATE_INDEX) / "source/Pipfile").read_text()
    assert 'url = "https://${PYPI_USER}:${PYPI_TOKEN}@artifactory.example.com/api/pypi/pypi/simple"' in pipfile


PROMPTED = [name for name in DEFAULTS if not name.startswith("_")]


@pytest.mark.parametrize("name", PROMPTED)
def test_every_variable_has_a_question(name):
    assert name in DEFAULTS["__prompts__"], f"{name} has no question in __prompts__"


@pytest.mark.parametrize("name", PROMPTED)
def test_every_variable_is_in_the_readme_table(name):
    readme = (REPO / "README.md").read_text()
    rows = [line for line in readme.splitlines() if line.startswith("| `")]
    assert any(f"`{name}`" in row.split("|")[1] for row in rows), f"{name} is not documented in README.md"


FEATURE_QUESTIONS = {
    "hpa": ["hpa_max_replicas", "hpa_cpu_target"],
    "pvc": ["pvc_size", "pvc_storage_class", "pvc_access_mode", "pvc_mount_path"],
    "dr": ["dr_active_region", "dr_passive_region"],
}


@pytest.mark.parametrize("feature", FEATURE_QUESTIONS)
def test_questions_say_when_they_apply(feature):
    """cookiecutter cannot skip a question: it says which answer it depends on."""
    for name in FEATURE_QUESTIONS[feature]:
        question = DEFAULTS["__prompts__"][name]
        question = question["__prompt__"] if isinstance(question, dict) else question
        assert question.endswith(f"(used only when {feature} is yes)"), name
    prompts = DEFAULTS["__prompts__"]
    assert "with hpa no, the fixed number of pods in pre-production and production" in prompts["hpa_min_replicas"]
    assert prompts["custom_url"].startswith("Extra hostname served by production")


@pytest.mark.parametrize(
    "hostspaces, expected",
    [
        ("dev, stage, prod", {"dev": 1, "stage": 3, "prod": 3}),
        ("live", {"live": 3}),  # alone, the hostspace is production
    ],
    ids=["three hostspaces", "production alone"],
)
def test_without_hpa_production_runs_hpa_min_replicas_pods(bake, hostspaces, expected):
    chart = bake(hpa=False, hpa_min_replicas="3", hostspaces=hostspaces) / "chart"
    replicas = {name: yaml.safe_load((chart / f"values-{name}.yaml").read_text())["replicaCount"] for name in expected}
    assert replicas == expected


@pytest.mark.parametrize("name", [n for n in PROMPTED if isinstance(DEFAULTS[n], list)])
def test_every_choice_option_has_a_label(name):
    labels = DEFAULTS["__prompts__"][name]
    assert set(DEFAULTS[name]) <= set(labels), f"{name}: options without a label"


def test_make_messages_can_be_echoed_in_single_quotes(default_project):
    text = (default_project / "Makefile").read_text()
    hows = [line for line in text.replace("\\\n", "").splitlines() if line.startswith("HOW_")]
    assert len(hows) == 9 and [line for line in hows if "'" in line] == []


# The headings of each generated document: the team's README, and the manual's pages in docs/.
GENERATED_SECTIONS = {
    "README.md": ["## Getting started", "## Run and test", "## Deploy", "## Endpoints", "## Who owns what"],
    "docs/README.md": ["# The platform manual"],
    "docs/configuration.md": [
        "## Environment variables",
        "## Endpoints, errors and logs",
        "## Readiness checks",
        "## Metrics and graceful shutdown",
        "## Workers and slow clients",
    ],
    "docs/local-development.md": [
        "## Without a container",
        "## Quality gates",
        "## Artifactory token",
        "## Build locally",
        "## Run locally",
        "## Troubleshooting the build",
    ],
    "docs/pipeline.md": ["# CI/CD pipeline"],  # its sections: test_pipeline.py
    "docs/kubernetes.md": ["# Kubernetes deployment"],  # its sections: test_chart_objects.py
    "docs/updates.md": ["## Who owns which file", "## Taking a release", "## A project without .cruft.json"],
}


@pytest.mark.parametrize("document", GENERATED_SECTIONS)
def test_the_generated_documents_have_every_section(default_project, document):
    headings = [line for line in (default_project / document).read_text().splitlines() if line.startswith("#")]
    assert [h for h in GENERATED_SECTIONS[document] if h not in headings] == []


def test_every_environment_variable_is_in_the_configuration_table(default_project):
    source = default_project / "source"
    used = set(re.findall(r'"([A-Z][A-Z0-9_]+)":', (source / "scale" / "settings.py").read_text()))
    used |= set(re.findall(r'environ\.get\("([A-Z][A-Z0-9_]+)"', (source / "gunicorn.conf.py").read_text()))
    configuration = (default_project / "docs/configuration.md").read_text()
    section = configuration.split("## Environment variables", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", section))
    assert used and used - documented == set()


def editorconfig_sections(project):
    """[(glob, {property: value})] of the project's .editorconfig, in file order."""
    sections = []
    for line in (project / ".editorconfig").read_text().splitlines():
        line = line.strip()
        if line.startswith("["):
            sections.append((line[1:-1], {}))
        elif line and not line.startswith(("#", ";")) and sections:
            key, value = (part.strip() for part in line.split("=", 1))
            sections[-1][1][key] = value
    return sections


def editorconfig_properties(sections, name):
    """The properties of a file named `name`: later sections win. A glob without '/' matches
    the file name; {a,b} gives alternatives (all that the generated .editorconfig uses)."""
    properties = {}
    for glob, values in sections:
        braces = re.fullmatch(r"(.*)\{(.*)\}(.*)", glob)
        globs = [braces[1] + choice + braces[3] for choice in braces[2].split(",")] if braces else [glob]
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in globs):
            properties.update(values)
    return properties


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_generated_text_is_tidy(bake, answers):
    """What Jinja blocks leave: no trailing spaces (in Markdown too: the generated files use no
    hard line breaks), no run of blank lines longer than the file's style allows (two in
    Python, between top-level definitions; one elsewhere). And what the project's .editorconfig
    asks: a final newline, LF line ends, tabs for indenting the Makefile and spaces elsewhere."""
    project = bake(**answers)
    sections = editorconfig_sections(project)
    assert [glob for glob, _ in sections if "/" in glob] == []  # editorconfig_properties matches names only
    untidy = []
    for path, text in text_files(project):
        rules = editorconfig_properties(sections, path.name)
        assert rules.get("charset") == "utf-8", path  # text_files read it as UTF-8
        if rules.get("insert_final_newline") == "true" and text and not text.endswith("\n"):
            untidy.append(f"{path.relative_to(project)}: no final newline")
        if rules.get("end_of_line") == "lf" and "\r" in text:
            untidy.append(f"{path.relative_to(project)}: CR line ends")
        wrong_indent = " " if rules.get("indent_style") == "tab" else "\t"
        allowed = 2 if path.suffix == ".py" else 1
        blank = 0
        for number, line in enumerate(text.splitlines(), 1):
            if line != line.rstrip():
                untidy.append(f"{path.relative_to(project)}:{number}: trailing space")
            if wrong_indent in line[: len(line) - len(line.lstrip(" \t"))]:
                untidy.append(f"{path.relative_to(project)}:{number}: indented with {wrong_indent!r}")
            blank = blank + 1 if not line.strip() else 0
            if blank > allowed:
                untidy.append(f"{path.relative_to(project)}:{number}: {blank} blank lines")
    assert untidy == []


# ---- a fact in a team's file and in a template's file ------------------------------------------
# The team's files are never touched by a release; the template's are replaced. A fact both state
# (from one answer) drifts apart when the team edits its file alone, so each such pair has a guard
# that names the disagreement and the one command that changes both (`make reconfigure`), or is
# a gap said here. The team's prose and example code (README.md, source/api/, source/tests/)
# mention answers without stating facts the project runs on.
SHARED_FACTS = {
    ("python_version", "source/Pipfile"): "make lock and make install refuse a Pipfile Python other than the answer",
    ("package_index", "source/Pipfile"): "make lock and make install refuse an index the Pipfile no longer names",
    **{
        (answer, "chart/values-<hostspace>.yaml"): "make helm-lint: each hostname azure-pipelines.yaml deploys "
        "the hostspace as must be served"
        for answer in ("app_name", "platform_domain", "custom_url", "hostspaces", "skip_hostspaces")
    },
    **{
        (answer, "chart/values-<hostspace>.yaml"): "make helm-lint: each DR site's hostname must name the "
        "site's region, which chart/defaults.yaml holds"
        for answer in ("dr_active_region", "dr_passive_region")
    },
}
TEAM_PROSE = ("README.md", "source/api/", "source/tests/")


def data_of(path):
    """The values a team's data file states: TOML and YAML leaves, other files' lines but comments."""
    if path.name == "Pipfile":
        document = tomllib.loads(path.read_text())
    elif path.suffix == ".yaml":
        document = yaml.safe_load(path.read_text())
    else:
        return [line for line in path.read_text().splitlines() if line.strip() and not line.lstrip().startswith("#")]
    leaves, nodes = [], [document]
    while nodes:
        node = nodes.pop()
        if isinstance(node, dict):
            nodes += node.values()
        elif isinstance(node, list):
            nodes += node
        elif node is not None and not isinstance(node, bool):
            leaves.append(str(node))
    return leaves


def as_stated(name, value):
    """How an answer appears in files: Python as X.Y, an index without its scheme."""
    if name == "python_version":
        return ".".join(value.split(".")[:2])
    return value.split("://", 1)[-1]


@pytest.mark.parametrize("answers", COMBINATIONS, ids=combination_id)
def test_every_fact_a_teams_file_shares_with_a_template_file_has_a_guard(bake, answers):
    project = bake(**answers)
    stated = {
        name: as_stated(name, value)
        for name, value in answered(answers).items()
        if isinstance(value, str) and len(value) >= 3
    }
    files = {str(path.relative_to(project)): path for path in project.rglob("*") if path.is_file()}
    template = "\n".join(
        path.read_text(errors="ignore") for name, path in files.items() if owner_of(name)[0] == "template"
    )
    shared = set()
    for name, path in files.items():
        who, row = owner_of(name)
        if who != "team" or name.startswith(TEAM_PROSE) or name.endswith(".lock"):
            continue
        for leaf in data_of(path):
            shared |= {(answer, row) for answer, value in stated.items() if value in leaf and value in template}
    assert shared <= set(SHARED_FACTS), sorted(shared - set(SHARED_FACTS))
