"""The pre-generation rules (hooks/pre_gen_project.py), called directly: no bake."""

import copy
import json
import shlex

import pytest
from answers import rendered
from cookiecutter.prompt import prompt_for_config

import tasks
from hooks import post_gen_project as post
from hooks import pre_gen_project as pre
from tools.project import DEFAULTS, REPO

VARIABLES = [key for key in DEFAULTS if not key.startswith("_")]
CHOICES = {key: value for key, value in DEFAULTS.items() if key in VARIABLES and isinstance(value, list)}


RENDERED_DEFAULTS = rendered()


def answers(**changes):
    """The default answers, plus changes. Without the derived names, which cookiecutter would
    derive from the changed answers (their own tests below give them)."""
    given = {**{k: v for k, v in RENDERED_DEFAULTS.items() if k not in pre.DERIVED}, **changes}
    if "app_version" in changes and "pipeline_ref" not in changes:  # as cookiecutter.json's default follows it
        given["pipeline_ref"] = f"refs/tags/v{changes['app_version']}"
    return given


def named(found):
    """The variables each problem names, e.g. ["app_name", "hpa_min_replicas+hpa_max_replicas"]."""
    return ["+".join(problem.variables) for problem in found]


# ---- the table covers cookiecutter.json --------------------------------------------------


def test_every_variable_of_cookiecutter_json_has_a_rule():
    assert sorted(set(VARIABLES) - {rule.variable for rule in pre.RULES}) == []


def test_every_rule_is_about_a_variable_of_cookiecutter_json():
    named_in_rules = {rule.variable for rule in pre.RULES}
    named_in_rules |= {name for rule in pre.COMBINATIONS for name in rule.variables + rule.needs}
    assert sorted(named_in_rules - set(VARIABLES)) == []


def test_the_table_follows_cookiecutter_json_order():
    order = list(dict.fromkeys(rule.variable for rule in pre.RULES))
    assert order == VARIABLES


def readme_accepted_column():
    """{variable: its "accepted" cell} of the README's variable table, as a Markdown reader shows it."""
    rows = [line.split(" | ") for line in (REPO / "README.md").read_text().splitlines() if line.startswith("| `")]
    return {
        row[0].strip("| `"): row[3].removesuffix(" |").replace("\\|", "|").replace("&lt;", "<")
        for row in rows
        if len(row) == 4
    }


def test_the_readmes_accepted_column_is_the_rules_text():
    accepted = {}
    for rule in pre.RULES:
        accepted.setdefault(rule.variable, []).append(rule.accepted)
    documented = readme_accepted_column()
    assert {name: documented.get(name) for name in accepted} == {
        name: "; ".join(texts) for name, texts in accepted.items()
    }


def test_the_defaults_pass():
    assert pre.problems(answers()) == []
    assert pre.problems(RENDERED_DEFAULTS) == []  # with the derived names cookiecutter made


@pytest.mark.parametrize("variable", sorted(CHOICES))
def test_choice_rules_accept_exactly_cookiecutter_json_choices(variable):
    for choice in CHOICES[variable]:
        # Its own rule accepts it (a combination may still want another answer with it).
        assert variable not in named(pre.problems(answers(**{variable: choice}))), choice
    assert named(pre.problems(answers(**{variable: "sometimes"}))) == [variable]


@pytest.mark.parametrize("variable", [key for key, value in DEFAULTS.items() if isinstance(value, bool)])
def test_boolean_rules_take_json_booleans_only(variable):
    assert pre.problems(answers(**{variable: not DEFAULTS[variable]})) == []
    assert named(pre.problems(answers(**{variable: "yes"}))) == [variable]


# ---- single values -------------------------------------------------------------------------

VALID = [
    ("app_name", "a"),
    ("app_name", "orders-api-2"),
    ("app_name", "a" * 40),
    ("appcode", "ord7"),
    ("appcode", "d"),
    ("description", ""),
    ("description", "Orders: the \"single\" source of truth # for 'orders' — déjà vu, 東京"),
    ("description", "'''); import os; os.system(\"touch /tmp/pwned\") #"),
    ("description", "a lone } and }} and %} are plain text"),
    ("description", "emoji with a joiner: \U0001f469\u200d\U0001f4bb and Arabic \u0645\u0631\u062d\u0628\u0627"),
    ("python_version", "3.12.1"),
    ("python_version", "3.13"),
    ("pipenv_version", "2026.10.3"),
    ("app_version", "4.7.12"),
    ("hostspaces", "dev"),
    ("hostspaces", "dev,stage , prod"),
    ("hostspaces", "1st, 2nd"),
    ("skip_hostspaces", "stage"),
    ("platform_domain", "apps.example.internal"),
    ("custom_url", "orders.example.org"),
    ("hpa_min_replicas", "1"),
    ("hpa_max_replicas", "20"),
    ("hpa_cpu_target", "1"),
    ("hpa_cpu_target", "100"),
    ("pvc_size", "500Mi"),
    ("pvc_size", "1.5Gi"),
    ("pvc_size", "10G"),
    ("pvc_size", "0.001k"),
    ("pvc_size", "999Ti"),
    ("pvc_storage_class", "fast-ssd.storage.k8s.io"),
    ("pvc_mount_path", "/var/lib/orders"),
    ("pvc_mount_path", "/opt/data"),
    ("pvc_mount_path", "/etc/certificates"),
    ("dr_active_region", "us-east-1"),
    ("docker_registry", "registry.example.com"),
    ("docker_registry", "localhost:5000"),
    ("docker_registry", "10.0.0.7:443"),
    ("package_index", "https://artifactory.example.com/api/pypi/pypi/simple"),
    ("package_index", "http://127.0.0.1:8080/simple/"),
    ("pipeline_repository", "Platform.Team/devops_pipelines-v4"),
    ("pipeline_ref", "refs/tags/v4.7.0"),
    ("pipeline_ref", "refs/heads/release/4.7"),
    ("pipeline_service_connection", "SCALE GitHub"),
    ("gunicorn_workers", "1"),
]

INVALID = [
    ("app_name", "Orders"),
    ("app_name", "orders api"),
    ("app_name", "orders_api"),
    ("app_name", "-orders"),
    ("app_name", "orders-"),
    ("app_name", "1orders"),
    ("app_name", "a" * 41),
    ("app_name", "../orders"),
    ("app_name", ""),
    ("appcode", "DEMO"),
    ("appcode", "de-mo"),
    ("appcode", "42"),
    ("appcode", "averyverylong"),
    ("description", "two\nlines"),
    ("description", "tab\tseparated"),
    ("description", "next\x85line"),
    ("description", "line\u2028separator"),
    ("description", "paragraph\u2029separator"),
    *[("description", f"bidi {chr(code)}control") for code in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))],
    ("description", "right-to-left mark \u200f"),
    ("description", "{{ cookiecutter.app_name }}"),
    ("description", "{% if x %}"),
    ("description", "{# note #}"),
    ("python_version", "3"),
    ("python_version", "3.10.x"),
    ("python_version", "python3.10"),
    ("python_version", "3.010"),
    ("python_version", "2.7"),
    ("python_version", "4.0"),
    ("python_version", "3.8"),
    ("python_version", "3.5.0"),
    ("pipenv_version", "latest"),
    ("pipenv_version", "2023.4.20"),  # a real release, which the template does not pin with hashes
    ("pipenv_version", "2022.7"),
    ("pipenv_version", "v2022.7.24"),
    ("pipenv_version", "2018.11.26"),
    ("pipenv_version", "2022.07.24"),
    ("pipenv_version", "2022.7.24; rm -rf /"),
    ("app_version", "4.6.0"),
    ("app_version", "4.7"),
    ("app_version", "4.7.x"),
    ("hostspaces", ""),
    ("hostspaces", "dev,,prod"),
    ("hostspaces", "dev, prod,"),
    ("hostspaces", "dev, dev"),
    ("hostspaces", "Dev, prod"),
    ("hostspaces", "dev stage"),
    ("hostspaces", "dev;prod"),
    ("hostspaces", "dev, hostspaces"),
    ("skip_hostspaces", "stage,"),
    ("skip_hostspaces", "Stage"),
    ("platform_domain", "localhost"),
    ("platform_domain", "https://scale.example.com"),
    ("platform_domain", "Scale.Example.com"),
    ("custom_url", "https://orders.example.org"),
    ("custom_url", "orders.example.org/api"),
    ("custom_url", "orders.example.org:8443"),
    ("custom_url", "*.example.org"),
    ("custom_url", "orders"),
    ("custom_url", "10.0.0.1"),
    ("hpa_min_replicas", "0"),
    ("hpa_min_replicas", "-1"),
    ("hpa_min_replicas", "02"),
    ("hpa_max_replicas", "five"),
    ("hpa_cpu_target", "0"),
    ("hpa_cpu_target", "101"),
    ("hpa_cpu_target", "75%"),
    ("pvc_size", "1GB"),
    ("pvc_size", "0Gi"),
    ("pvc_size", "-1Gi"),
    ("pvc_size", "1 Gi"),
    ("pvc_size", "100m"),
    ("pvc_size", "0.1Gi"),
    ("pvc_size", "0.0001k"),
    ("pvc_size", "0"),
    ("pvc_size", "."),
    ("pvc_size", "1e3"),
    ("pvc_size", "1Pi"),
    ("pvc_size", "1Gi\n"),
    ("pvc_storage_class", "Fast_SSD"),
    ("pvc_mount_path", "data"),
    ("pvc_mount_path", "/data/../etc"),
    ("pvc_mount_path", "/data/./x"),
    ("pvc_mount_path", "/etc/ld.so.preload"),
    ("pvc_mount_path", "/data\n"),
    ("pvc_mount_path", "/data/"),
    ("pvc_mount_path", "/"),
    ("pvc_mount_path", "/tmp"),
    ("pvc_mount_path", "/app"),
    ("pvc_mount_path", "/app/data"),
    ("pvc_mount_path", "/usr/share/orders"),
    ("pvc_mount_path", "/var/run/secrets/orders"),
    ("pvc_mount_path", "/opt/venv"),
    ("pvc_mount_path", "/proc/data"),
    ("pvc_mount_path", "/my data"),
    ("pvc_mount_path", "/data;rm"),
    ("dr_active_region", "East"),
    ("dr_passive_region", "west.1"),
    ("docker_registry", "https://registry.example.com"),
    ("docker_registry", "registry.example.com/library"),
    ("docker_registry", "registry.example.com:99999"),
    ("docker_registry", "Registry.example.com"),
    ("package_index", "artifactory.example.com/simple"),
    ("package_index", "ftp://artifactory.example.com/simple"),
    ("package_index", "https://user:secret@artifactory.example.com/simple"),
    ("package_index", "https://token@artifactory.example.com/simple"),
    ("package_index", "https://artifactory.example.com/simple?token=x"),
    ("package_index", 'https://artifactory.example.com/simple" malicious = "1'),
    ("pipeline_repository", "devops-pipelines"),
    ("pipeline_repository", "SCALE/devops pipelines"),
    ("pipeline_repository", "SCALE/devops/pipelines"),
    ("pipeline_ref", "v4.7.0"),
    ("pipeline_ref", "refs/tags/v4..7"),
    ("pipeline_ref", "refs/tags/v4.7.0/"),
    ("pipeline_ref", "refs/heads/main branch"),
    ("pipeline_repository_type", "bitbucket"),
    ("pipeline_service_connection", "-leading dash"),
    ("gunicorn_workers", "0"),
    ("gunicorn_workers", "auto"),
]


def value_id(case):
    variable, value = case
    return f"{variable}={json.dumps(value, ensure_ascii=False)[:40]}"


@pytest.mark.parametrize("case", VALID, ids=value_id)
def test_valid_values_pass(case):
    variable, value = case
    assert pre.problems(answers(**{variable: value})) == []


@pytest.mark.parametrize("case", INVALID, ids=value_id)
def test_invalid_values_are_named(case):
    variable, value = case
    found = pre.problems(answers(**{variable: value}))
    assert named(found) == [variable]
    line = str(found[0])
    assert line.startswith(f"{variable} = ")
    shown, end = json.JSONDecoder().raw_decode(line, len(f"{variable} = "))
    # the value, as JSON, a URL's credentials as ***
    assert shown == pre.without_credentials(value, "***@") and line[end:].startswith(": ")
    assert "expected " in line and line.isprintable()  # one line that hides nothing


def test_python_below_3_10_says_why():
    [problem] = pre.problems(answers(python_version="3.8"))
    assert (
        "the pipeline accepts ≥ 3.5, the generated service needs ≥ 3.10 (gunicorn 27, whose threaded workers it builds on)"
        in str(problem)
    )


def test_jinja_in_an_answer_is_rejected_with_the_reason():
    [problem] = pre.problems(answers(description="uses {{ braces }}"))
    assert "cruft update" in str(problem)


def test_a_hidden_character_is_named_by_its_code_point():
    [problem] = pre.problems(answers(description="invoice \u202egnp.exe"))
    assert "it contains U+202E, a line break, control or bidirectional formatting character" in str(problem)
    assert str(problem).startswith('description = "invoice \\u202egnp.exe": ')


@pytest.mark.parametrize(
    "variable, value, reason",
    [
        # "café" typed in a Latin-1 terminal: Python hands the byte 0xE9 over as U+DCE9.
        ("description", "caf\udce9", "at character 4, byte 0xE9 is not UTF-8 (is the terminal set to UTF-8?)"),
        ("app_name", "orders\udcff", "at character 7, byte 0xFF is not UTF-8 (is the terminal set to UTF-8?)"),
        ("description", "a \ud800 b", "at character 3, U+D800 is a lone surrogate, not a character"),
        ("description", "Orders\uffff", "at character 7, U+FFFF is a Unicode noncharacter"),
        ("description", "\ufdd0Orders", "at character 1, U+FDD0 is a Unicode noncharacter"),
        ("description", "Orders \U0010fffe", "at character 8, U+10FFFE is a Unicode noncharacter"),
        ("description", "pay\u200bments", "at character 4, U+200B is an invisible formatting character"),
        ("description", "\ufeffOrders", "at character 1, U+FEFF is an invisible formatting character"),
        ("custom_url", "ord\u00aders.example.com", "at character 4, U+00AD is an invisible formatting character"),
        ("description", "\u3164", "at character 1, U+3164 is a Hangul filler, an invisible character"),
        ("app_name", "orders\u115f", "at character 7, U+115F is a Hangul filler, an invisible character"),
        ("description", "pay\u1160ments", "at character 4, U+1160 is a Hangul filler, an invisible character"),
        ("description", "Orders \uffa0", "at character 8, U+FFA0 is a Hangul filler, an invisible character"),
        (
            "description",
            "pay\u034fments",
            "at character 4, U+034F is the combining grapheme joiner, an invisible character",
        ),
    ],
    ids=lambda value: value if value.isidentifier() else None,
)
def test_text_that_is_not_plain_visible_utf8_is_named_with_its_position(variable, value, reason):
    [problem] = pre.problems(answers(**{variable: value}))
    assert f": {reason}; expected " in str(problem)
    assert str(problem).encode("utf-8")  # the report itself prints: the character is escaped in it


def test_visible_unicode_text_passes():
    assert pre.problems(answers(description="Café orders — 注文 ✓ 👩\u200d💻 می\u200cخواهم")) == []


def test_a_missing_answer_is_a_problem():
    base = answers()
    del base["appcode"]
    assert [str(problem) for problem in pre.problems(base)] == [
        f"appcode = null: it is missing; expected {pre.RULES[1].accepted}"
    ]


def test_a_hostspace_named_after_the_templates_values_file_is_refused_saying_why():
    [problem] = pre.problems(answers(hostspaces="dev, hostspaces, prod"))
    assert "'hostspaces' is taken: chart/values-hostspaces.yaml is the template's file" in str(problem)


def test_the_names_a_hostspace_may_not_take_are_the_templates_own_values_files():
    """The post-gen hook writes chart/values-<hostspace>.yaml beside the template's chart files and
    removes chart/values-hostspaces.yaml: each values-<name>.yaml of the template reserves <name>."""
    chart = REPO / "{{cookiecutter.app_name}}" / "chart"
    template_files = sorted(path.name[len("values-") : -len(".yaml")] for path in chart.glob("values-*.yaml"))
    assert template_files == sorted(pre.TEMPLATE_VALUES_FILES)


# ---- combinations --------------------------------------------------------------------------

COMBINATIONS = {
    "hpa min above max": ({"hpa_min_replicas": "6", "hpa_max_replicas": "5"}, ["hpa_min_replicas+hpa_max_replicas"]),
    "rwo pvc, required anti-affinity, hpa": (
        {"pvc": True, "pod_anti_affinity": "required"},
        ["pvc+pvc_access_mode+pod_anti_affinity"],
    ),
    "rwo pvc, required anti-affinity, hpa max 1 (a rollout still runs 2)": (
        {"pvc": True, "pod_anti_affinity": "required", "hpa_min_replicas": "1", "hpa_max_replicas": "1"},
        ["pvc+pvc_access_mode+pod_anti_affinity"],
    ),
    "rwo pvc, required anti-affinity, no hpa, one hostspace": (
        {"pvc": True, "pod_anti_affinity": "required", "hpa": False, "hostspaces": "dev"},
        ["pvc+pvc_access_mode+pod_anti_affinity"],
    ),
    "custom url is a platform hostname": ({"custom_url": "flask-app-prod.scale.example.com"}, ["custom_url"]),
    "custom url is another hostspace's platform hostname": (
        {"custom_url": "flask-app-dev.scale.example.com"},
        ["custom_url"],
    ),
    "custom url is a dr site hostname": ({"custom_url": "flask-app-prod.west.scale.example.com"}, ["custom_url"]),
    "hostname label over 63 characters": (
        {"app_name": "a" * 40, "hostspaces": "dev, " + "p" * 23},
        ["app_name+hostspaces"],
    ),
    "same dr regions": ({"dr_passive_region": "east"}, ["dr+dr_active_region+dr_passive_region"]),
    "a skipped hostspace that is not one": ({"skip_hostspaces": "stage, qa"}, ["hostspaces+skip_hostspaces"]),
    "github templates without a service connection": (
        {"pipeline_repository_type": "github"},
        ["pipeline_repository_type+pipeline_service_connection"],
    ),
    "pipeline templates of another release": (
        {"app_version": "4.7.3", "pipeline_ref": "refs/tags/v4.7.2"},
        ["app_version+pipeline_ref"],
    ),
    "pipeline templates of another release, tag without v": (
        {"app_version": "4.7.3", "pipeline_ref": "refs/tags/4.7.2"},
        ["app_version+pipeline_ref"],
    ),
    "old pipenv on python 3.12": (
        {"python_version": "3.12", "pipenv_version": "2022.7.24"},
        ["python_version+pipenv_version"],
    ),
    "old pipenv on python 3.13.0": (
        {"python_version": "3.13.0", "pipenv_version": "2022.7.24"},
        ["python_version+pipenv_version"],
    ),
}

COMBINATIONS_THAT_WORK = {
    "rwx pvc with required anti-affinity": {
        "pvc": True,
        "pvc_access_mode": "ReadWriteMany",
        "pod_anti_affinity": "required",
    },
    "rwo pvc with preferred anti-affinity": {"pvc": True, "pod_anti_affinity": "preferred"},
    "rwo pvc without anti-affinity": {"pvc": True, "pod_anti_affinity": "none"},
    "required anti-affinity without pvc": {"pod_anti_affinity": "required"},
    "hpa min equals max": {"hpa_min_replicas": "3", "hpa_max_replicas": "3"},
    "a dr site hostname is free when dr is off": {"dr": False, "custom_url": "flask-app-prod.west.scale.example.com"},
    "the same regions when dr is off": {"dr": False, "dr_passive_region": "east"},
    "github templates through a service connection": {
        "pipeline_repository_type": "github",
        "pipeline_service_connection": "SCALE GitHub",
    },
    "python 3.10 with a recent pipenv": {"python_version": "3.10", "pipenv_version": "2026.10.3"},
    "python 3.12 with a recent pipenv": {"python_version": "3.12", "pipenv_version": "2026.10.3"},
    "python 3.11 with the pipenv the platform documents": {"python_version": "3.11", "pipenv_version": "2022.7.24"},
    "hostname label of exactly 63 characters": {"app_name": "a" * 40, "hostspaces": "p" * 22},
    "pipeline templates of the pipeline's release": {"app_version": "4.7.3", "pipeline_ref": "refs/tags/v4.7.3"},
    "pipeline templates from a branch": {"app_version": "4.7.3", "pipeline_ref": "refs/heads/release/4.7"},
    "pipeline templates from a tag that is no release": {"app_version": "4.7.3", "pipeline_ref": "refs/tags/stable"},
}


@pytest.mark.parametrize("changes, expected", COMBINATIONS.values(), ids=COMBINATIONS.keys())
def test_combinations_that_cannot_work(changes, expected):
    assert named(pre.problems(answers(**changes))) == expected


@pytest.mark.parametrize("changes", COMBINATIONS_THAT_WORK.values(), ids=COMBINATIONS_THAT_WORK.keys())
def test_combinations_that_work(changes):
    assert pre.problems(answers(**changes)) == []


def test_the_volume_message_explains_why_pods_stay_pending():
    [problem] = pre.problems(answers(pvc=True, pod_anti_affinity="required"))
    assert "up to 6 pods run at once" in str(problem)
    assert "stays Pending" in str(problem)


def test_without_hpa_the_fixed_replica_count_is_hpa_min_replicas():
    """values-<production>.yaml's replicaCount is hpa_min_replicas when the HPA is off."""
    assert pre.most_pods(answers(hpa=False, hpa_min_replicas="3")) == 4
    assert pre.most_pods(answers(hpa=True, hpa_min_replicas="3", hpa_max_replicas="7")) == 8
    [problem] = pre.problems(answers(pvc=True, pod_anti_affinity="required", hpa=False, hpa_min_replicas="3"))
    assert "up to 4 pods run at once" in str(problem)


def test_a_combination_is_not_checked_when_one_of_its_values_is_invalid():
    found = pre.problems(answers(hpa_min_replicas="6", hpa_max_replicas="many"))
    assert named(found) == ["hpa_max_replicas"]


# ---- all at once ---------------------------------------------------------------------------


def test_every_problem_is_reported_at_once_in_table_order():
    found = pre.problems(
        answers(
            app_name="Orders",
            python_version="3.8",
            hostspaces="dev, dev",
            pvc_size="lots",
            gunicorn_workers="0",
            hpa_min_replicas="9",
            dr_passive_region="east",
        )
    )
    assert named(found) == [
        "app_name",
        "python_version",
        "hostspaces",
        "pvc_size",
        "gunicorn_workers",
        "hpa_min_replicas+hpa_max_replicas",
        "dr+dr_active_region+dr_passive_region",
    ]


def test_the_report_has_one_line_per_problem_even_for_multiline_values():
    found = pre.problems(answers(description="a\nb", appcode="x\ny"))
    lines = pre.report(found).splitlines()
    assert len(lines) == 2 + len(found)
    assert lines[1] == f'  - appcode = "x\\ny": expected {pre.RULES[1].accepted}'


def test_the_hooks_page_shows_the_report_as_the_hook_prints_it():
    page = (REPO / "docs" / "hooks.md").read_text(encoding="utf-8")
    example = page.split("## Before generation", 1)[1].split("```text\n", 1)[1].split("```", 1)[0]
    given = answers(python_version="3.8", hpa_min_replicas="6")
    found = pre.problems(given)
    shown = pre.report(found, {**given, "_template": "gh:example-org/flask-appstack"}, "/home/me/src/x").splitlines()
    assert example.splitlines()[:-1] == shown[:-1]
    # The page shortens the command (…); what it shows is the command's own beginning.
    assert shown[-1].startswith(example.splitlines()[-1].split(" app_name=")[0] + " app_name=")


# ---- derived names -------------------------------------------------------------------------

DERIVED_CASES = [
    {"python_version": "3.10", "pipenv_version": "2026.10.3", "app_name": "a", "appcode": "d"},
    {"python_version": "3.12.1", "app_name": "orders-api", "appcode": "ord7"},
    {"python_version": "3.13", "app_name": "flask-app", "appcode": "demo"},
]


@pytest.mark.parametrize("changes", DERIVED_CASES, ids=lambda changes: changes["python_version"])
def test_derived_names_follow_cookiecutter_json(changes):
    """The hook's formulas are cookiecutter.json's: cookiecutter renders them, the hook agrees."""
    rendered = prompt_for_config({"cookiecutter": {**copy.deepcopy(DEFAULTS), **changes}}, no_input=True)
    assert set(pre.DERIVED) == {key for key in DEFAULTS if key.startswith("__") and key != "__prompts__"}
    assert {name: derive(rendered) for name, (_, derive) in pre.DERIVED.items()} == {
        name: rendered[name] for name in pre.DERIVED
    }
    assert pre.problems(rendered) == []


def test_a_stale_derived_name_is_named_with_the_value_it_must_have():
    """A replay file with an edited app_name still holds the old chart and image names."""
    stale = {**RENDERED_DEFAULTS, "app_name": "orders-api"}
    found = pre.problems(stale)
    assert named(found) == ["__chart_name", "__image_name"]
    assert '__chart_name = "flask-app": it no longer agrees with app_name; expected "orders-api"' in str(found[0])
    assert '"demo/orders-api"' in str(found[1])


def test_a_derived_name_is_not_checked_when_its_answer_is_invalid():
    found = pre.problems({**RENDERED_DEFAULTS, "app_name": "Orders-API"})
    assert named(found) == ["app_name"]


# ---- the command that generates again ------------------------------------------------------


def public(**changes):
    """The answers a user gives: no private (_) entries of cookiecutter.json."""
    return {key: value for key, value in answers(**changes).items() if not key.startswith("_")}


def test_the_report_ends_with_a_cookiecutter_command_holding_every_answer(tmp_path):
    given = public(app_name="Orders", description='it\'s "quoted" $(not run)', hpa=False)
    context = {
        **given,
        "_template": "gh:scale/flask-appstack",
        "_output_dir": str(tmp_path),
        "_checkout": None,
        "__chart_name": "Orders",
    }
    lines = pre.report(pre.problems(context), context, str(tmp_path / "Orders")).splitlines()
    words = shlex.split(lines[-1])
    assert words[:5] == ["cookiecutter", "--no-input", "--output-dir", str(tmp_path), "gh:scale/flask-appstack"]
    expected = {key: ("yes" if value is True else "no" if value is False else value) for key, value in given.items()}
    del expected["pipeline_ref"]  # it follows app_version (refs/tags/v<app_version>), also a corrected one
    assert dict(word.split("=", 1) for word in words[5:]) == expected
    assert [word.split("=", 1)[0] for word in words[5:]] == [v for v in VARIABLES if v != "pipeline_ref"]


def test_a_pipeline_ref_chosen_on_purpose_stays_in_the_command(tmp_path):
    context = {**public(app_name="Orders", pipeline_ref="refs/heads/release/4.7"), "_template": "t"}
    assert "pipeline_ref=refs/heads/release/4.7" in shlex.split(pre.rerun_command(context, str(tmp_path / "x")))


def test_after_cruft_the_command_is_cruft_create_with_the_answers_as_json(tmp_path):
    given = public(app_name="Orders")
    context = {**given, "_template": "/srv/templates/flask-appstack", "_commit": "0" * 40}
    command = pre.rerun_command(context, str(tmp_path / "out" / "Orders"))
    words = shlex.split(command)
    assert words[:5] == ["cruft", "create", "--no-input", "--output-dir", str(tmp_path / "out")]
    following = {key: value for key, value in given.items() if key != "pipeline_ref"}  # follows app_version
    assert words[5] == "--extra-context" and json.loads(words[6]) == following
    assert words[7:] == ["/srv/templates/flask-appstack"]


CREDENTIALS = {"package_index": "https://team-user:s3cret-token@artifactory.example.com/api/pypi/pypi/simple"}


@pytest.mark.parametrize("after", ["cookiecutter", "cruft", "tasks.py generate"])
def test_a_url_with_credentials_is_refused_and_the_report_never_shows_them(tmp_path, after):
    """The message and the command show the URL without them: credentials come from PYPI_USER and
    PYPI_TOKEN at build time, and a token printed stays in the terminal's log and the shell's history."""
    context = {**public(**CREDENTIALS), "_template": "https://ci:gh-token@github.example.com/org/flask-appstack"}
    context.update({"cruft": {"_commit": "0" * 40}, "cookiecutter": {}, "tasks.py generate": {}}[after])
    generate = ["python3", "/src/flask-appstack/tasks.py", "generate"] if after == "tasks.py generate" else None
    found = pre.problems(context)
    assert named(found) == ["package_index"]
    shown = pre.report(found, context, str(tmp_path / "flask-app"), generate)
    assert "s3cret-token" not in shown and "team-user" not in shown and "gh-token" not in shown
    assert (
        'package_index = "https://***@artifactory.example.com/api/pypi/pypi/simple": it contains credentials' in shown
    )
    words = shlex.split(shown.splitlines()[-1])
    given = (
        json.loads(words[words.index("--extra-context") + 1])
        if after == "cruft"
        else dict(word.split("=", 1) for word in words if "=" in word and not word.startswith("-"))
    )
    assert given["package_index"] == "https://artifactory.example.com/api/pypi/pypi/simple"
    assert pre.problems({**context, "package_index": given["package_index"]}) == []  # the command, run, works
    if after != "tasks.py generate":
        assert words[-1 if after == "cruft" else 4] == "https://github.example.com/org/flask-appstack"


def test_the_command_over_an_interrupted_generation_says_so_to_each_program(tmp_path):
    """-f: the incomplete project's marker names the command that generates over it."""
    context = {**public(), "_template": "t"}
    cwd = str(tmp_path / "flask-app")
    assert shlex.split(pre.rerun_command(context, cwd, overwrite=True))[:3] == [
        "cookiecutter",
        "--no-input",
        "--overwrite-if-exists",
    ]
    assert "--overwrite-if-exists" in shlex.split(
        pre.rerun_command({**context, "_commit": "0" * 40}, cwd, overwrite=True)
    )
    assert shlex.split(pre.rerun_command(context, cwd, ["python3", "tasks.py", "generate"], overwrite=True))[:5] == [
        "python3",
        "tasks.py",
        "generate",
        "--no-input",
        "-f",
    ]


# ---- the Quickstart checks the answers it is given with these rules ------------------------


def test_the_quickstart_reads_yes_no_words_as_cookiecutter_does():
    """cookiecutter turns them into booleans before any hook runs; a word it does not know stays text,
    for the rule to refuse."""
    from cookiecutter.prompt import YesNoPrompt

    assert (set(tasks.YES), set(tasks.NO)) == (set(YesNoPrompt.yes_choices), set(YesNoPrompt.no_choices))
    assert [tasks.as_cookiecutter_takes(True, word) for word in (" Yes", "off", "maybe", True)] == [
        YesNoPrompt().process_response(" Yes"),
        YesNoPrompt().process_response("off"),
        "maybe",
        True,
    ]
    assert tasks.as_cookiecutter_takes("2", 3) == "3"  # a number of a YAML config: text, as cookiecutter renders it


def test_the_quickstart_refuses_every_answer_given_that_is_wrong_by_itself_with_its_own_command():
    argv = [
        "--no-input",
        "-o",
        "out",
        "hpa=maybe",
        "pvc=Y",
        "hpa_min_replicas=9",
        "description={{ cookiecutter.appcode }}",
    ]
    argv.append("package_index=https://me:s3cret@artifactory.example.com/simple")
    refused = tasks.answers_refusal(argv, {"pod_anti_affinity": "always", "platform_domain": "apps.example.corp"})
    lines = refused.splitlines()
    # hpa_min_replicas=9 is fine alone (above hpa_max_replicas is the hook's, with every answer);
    # an answer with Jinja is the hook's, once cookiecutter rendered it.
    assert [line.split(" = ")[0] for line in lines[1:-2]] == ["  - hpa", "  - pod_anti_affinity", "  - package_index"]
    assert "s3cret" not in refused
    assert shlex.split(lines[-1]) == [
        *tasks.QUICKSTART,
        *argv[:-1],
        "package_index=https://artifactory.example.com/simple",
        "pod_anti_affinity=always",  # the config's wrong answer, to correct here
    ]
    assert lines[-2].endswith("and run it: it asks nothing.")
    assert tasks.answers_refusal(["hpa=no", "pod_anti_affinity=none", "pvc_access_mode=ReadWriteMany"], {}) is None


# ---- the facts the hooks and the generated files share -------------------------------------


@pytest.mark.parametrize("spaces", ["dev, stage, prod", "only", "a,b", " sandbox , qa, uat ,live"])
def test_the_jinja_facts_agree_with_the_hooks(spaces):
    """templates/appstack.jinja (the generated files' hostnames) and the pre-gen hook's functions
    (its checks') say the same for the same answers."""
    import jinja2

    given = answers(hostspaces=spaces, app_name="orders", platform_domain="apps.example.org")
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(REPO / "templates")))
    facts = environment.from_string(
        '{%- import "appstack.jinja" as appstack with context -%}'
        "{% for space in appstack.hostspaces %}{{ space }} "
        '{{ appstack.hostname(space) }} {{ appstack.hostname(space, "east") }}\n{% endfor %}'
    ).render(cookiecutter=given)
    assert facts.splitlines() == [
        f"{space} {pre.platform_hostname(given, space)} {pre.platform_hostname(given, space, 'east')}"
        for space in pre.hostspaces(given)
    ]
    assert post.hostspaces(given) == pre.hostspaces(given)  # each hook has its copy: they run apart
