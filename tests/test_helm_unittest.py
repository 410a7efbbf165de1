"""The suite's own helm-unittest runner (tools/helm_unittest.py), which stands in for the plugin
where the plugin cannot be installed: each assertion kind it supports holds when it should and
fails when it should, on a tiny chart rendered by real helm 4; an assertion it does not support
fails the suite, never passes it; and every assertion in the generated chart's suites is one it
supports."""

import pytest
import yaml

from tools.helm_unittest import SUPPORTED, check, helm_unittest_plugin, run_suite

CHART = {
    "Chart.yaml": "apiVersion: v2\nname: tiny\nversion: 0.1.0\n",
    "values.yaml": "greeting: hello\nfail: false\n",
    "templates/configmap.yaml": """\
{{- if .Values.fail }}{{ fail "greeting must be a word" }}{{ end }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-settings
  namespace: {{ .Release.Namespace }}
  labels: {app: tiny, tier: web}
data:
  greeting: {{ .Values.greeting | quote }}
  empty: ""
""",
    "templates/services.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-web
spec:
  ports:
    - {name: http, port: 80}
---
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-metrics
spec:
  ports:
    - {name: metrics, port: 9100}
    - {name: debug, port: 9200}
""",
    "templates/NOTES.txt": "Reach {{ .Release.Name }} on port 80.\n",
}

SERVICES = "templates/services.yaml"
NOTES = "templates/NOTES.txt"

# (assertion, whether it holds) on the tiny chart, release "tiny" in namespace "ns"; the suite's
# templates default to templates/configmap.yaml. Each supported kind holds once and fails once.
CASES = [
    ({"isKind": {"of": "ConfigMap"}}, True),
    ({"isKind": {"of": "Secret"}}, False),
    ({"isAPIVersion": {"of": "v1"}}, True),
    ({"isAPIVersion": {"of": "apps/v1"}}, False),
    ({"equal": {"path": "data.greeting", "value": "hello"}}, True),
    ({"equal": {"path": "data.greeting", "value": "goodbye"}}, False),
    ({"notEqual": {"path": "data.greeting", "value": "goodbye"}}, True),
    ({"notEqual": {"path": "data.greeting", "value": "hello"}}, False),
    ({"exists": {"path": "metadata.labels.tier"}}, True),
    ({"exists": {"path": "data.missing"}}, False),
    ({"notExists": {"path": "data.missing"}}, True),
    ({"notExists": {"path": "data.greeting"}}, False),
    (
        {
            "contains": {"path": "spec.ports", "content": {"name": "http", "port": 80}},
            "template": SERVICES,
            "documentIndex": 0,
        },
        True,
    ),
    (
        {
            "contains": {"path": "spec.ports", "content": {"name": "http", "port": 81}},
            "template": SERVICES,
            "documentIndex": 0,
        },
        False,
    ),
    (
        {
            "notContains": {"path": "spec.ports", "content": {"name": "http", "port": 81}},
            "template": SERVICES,
            "documentIndex": 0,
        },
        True,
    ),
    (
        {
            "notContains": {"path": "spec.ports", "content": {"name": "http", "port": 80}},
            "template": SERVICES,
            "documentIndex": 0,
        },
        False,
    ),
    ({"isSubset": {"path": "metadata.labels", "content": {"app": "tiny"}}}, True),
    ({"isSubset": {"path": "metadata.labels", "content": {"app": "huge"}}}, False),
    (
        {
            "lengthEqual": {"path": "spec.ports", "count": 2},
            "template": SERVICES,
            "documentSelector": {"path": "metadata.name", "value": "tiny-metrics"},
        },
        True,
    ),
    ({"lengthEqual": {"path": "spec.ports", "count": 2}, "template": SERVICES, "documentIndex": 0}, False),
    ({"matchRegex": {"path": "metadata.name", "pattern": "-settings$"}}, True),
    ({"matchRegex": {"path": "metadata.name", "pattern": "^settings"}}, False),
    ({"isNullOrEmpty": {"path": "data.empty"}}, True),
    ({"isNullOrEmpty": {"path": "data.greeting"}}, False),
    ({"isNotNullOrEmpty": {"path": "data.greeting"}}, True),
    ({"isNotNullOrEmpty": {"path": "data.empty"}}, False),
    ({"hasDocuments": {"count": 2}, "template": SERVICES}, True),
    ({"hasDocuments": {"count": 1}, "template": SERVICES}, False),
    ({"matchRegexRaw": {"pattern": "Reach tiny on port 80"}, "template": NOTES}, True),
    ({"matchRegexRaw": {"pattern": "port 8080"}, "template": NOTES}, False),
    ({"equal": {"path": 'metadata.labels["tier"]', "value": "web"}, "not": True}, False),
    ({"equal": {"path": "spec.ports[1].port", "value": 9200}, "template": SERVICES, "documentIndex": 1}, True),
]
# failedTemplate needs the template to fail: it is set to.
FAILING = {"fail": True}
FAILED_CASES = [
    ({"failedTemplate": {"errorPattern": "must be a word"}}, FAILING, True),
    ({"failedTemplate": {"errorMessage": "greeting must be a word"}}, FAILING, True),
    ({"failedTemplate": {"errorPattern": "must be a word"}}, {}, False),
    ({"failedTemplate": {"errorPattern": "must be a number"}}, FAILING, False),
    ({"equal": {"path": "data.greeting", "value": "hello"}}, FAILING, False),  # it did not render
]


def case_id(case):
    assertion, *_, holds = case
    (name,) = [key for key in assertion if key not in ("not", "template", "documentIndex", "documentSelector")]
    qualifiers = "".join(f"-{key}" for key in assertion if key in ("not", "documentIndex", "documentSelector"))
    return f"{name}{qualifiers}-{'holds' if holds else 'fails'}"


@pytest.fixture(scope="module")
def tiny_chart(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny") / "tiny"
    for name, text in CHART.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def run_one(tiny_chart, helms, tmp_path, assertion, values=None):
    """The runner's failures for a one-test suite holding `assertion`."""
    paths, env = helms
    suite = tmp_path / "one_test.yaml"
    suite.write_text(
        yaml.safe_dump(
            {
                "suite": "one assertion",
                "templates": ["templates/configmap.yaml"],
                "release": {"name": "tiny", "namespace": "ns"},
                "tests": [{"it": "holds or fails", "set": values or {}, "asserts": [assertion]}],
            }
        )
    )
    return run_suite(suite, tiny_chart, paths["4"], tmp_path, env=env, notes_helm=paths["4"])


@pytest.mark.slow
@pytest.mark.parametrize("case", CASES, ids=[case_id(c) for c in CASES])
def test_each_supported_assertion_holds_or_fails_on_real_helm_output(tiny_chart, helms, tmp_path, case):
    assertion, holds = case
    failures = run_one(tiny_chart, helms, tmp_path, assertion)
    assert (failures == []) is holds, failures


@pytest.mark.slow
@pytest.mark.parametrize("case", FAILED_CASES, ids=[case_id(c) for c in FAILED_CASES])
def test_failed_template_holds_only_when_rendering_fails_with_the_message(tiny_chart, helms, tmp_path, case):
    assertion, values, holds = case
    failures = run_one(tiny_chart, helms, tmp_path, assertion, values)
    assert (failures == []) is holds, failures


def test_every_supported_kind_is_shown_holding_and_failing():
    shown = {(case_id(case).split("-")[0], case[-1]) for case in [*CASES, *FAILED_CASES]}
    assert shown == {(name, holds) for name in SUPPORTED for holds in (True, False)}


@pytest.mark.slow
def test_an_unsupported_assertion_fails_the_suite_and_is_named(tiny_chart, helms, tmp_path):
    failures = run_one(tiny_chart, helms, tmp_path, {"isType": {"path": "data", "type": "map"}})
    assert len(failures) == 1 and "unsupported assertion isType" in failures[0], failures


@pytest.mark.parametrize(
    "assertion",
    [
        {"isType": {"path": "data", "type": "map"}},  # a plugin assertion the runner does not know
        {"not": True},  # no assertion at all
        {"exists": {"path": "data"}, "notExists": {"path": "spec"}},  # two in one item
    ],
    ids=["unknown", "none", "two"],
)
def test_an_assertion_the_runner_cannot_evaluate_is_an_error_never_a_pass(assertion):
    rendered = {"templates/configmap.yaml": [{"kind": "ConfigMap", "data": {}}]}
    for negated in (assertion, {**assertion, "not": True}):
        error = check(negated, ["templates/configmap.yaml"], rendered, "")
        assert error and error.startswith("unsupported assertion"), negated


def test_every_assertion_of_the_generated_suites_is_supported(default_project):
    used = set()
    for path in sorted((default_project / "chart" / "tests").glob("*_test.yaml")):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for assertion in test["asserts"]:
                used.update(k for k in assertion if k not in ("not", "template", "documentIndex", "documentSelector"))
    assert used and used <= set(SUPPORTED), used - set(SUPPORTED)


def test_the_plugin_is_found_where_helm_plugin_install_puts_it(tmp_path):
    assert helm_unittest_plugin(environ={}, home=tmp_path) is None
    plugins = tmp_path / "data" / "helm" / "plugins"
    (plugins / "helm-unittest").mkdir(parents=True)
    (plugins / "helm-unittest" / "plugin.yaml").write_text("name: unittest\nversion: 0.8.2\n")
    assert helm_unittest_plugin(environ={"XDG_DATA_HOME": str(tmp_path / "data")}, home=tmp_path) == (plugins, "0.8.2")
    assert helm_unittest_plugin(environ={"HELM_PLUGINS": str(plugins)}, home=tmp_path / "elsewhere") == (
        plugins,
        "0.8.2",
    )
