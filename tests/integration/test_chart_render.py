"""The chart renders and validates: `helm lint --strict` on helm 4 (helm 3.17's is the project's
own `make lint`, test_quality_gates.py), `helm template` on helm 3.17 and 4 (the same output),
the values schema and what it refuses, Kubernetes and Ambassador schemas, checkov, and the
chart's helm-unittest suites (yamllint too is `make lint`'s).

Each combination of answers is baked once and rendered once per values file and helm version
(the `chart` fixture, conftest.py); every test of that combination reads those renders.
What each option renders is in test_chart_objects.py.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import jsonschema
import pytest
import yaml
from answers import COMBINATIONS
from chart_matrix import (
    AMBASSADOR,
    HELM_VERSIONS,
    KUBE_VERSION,
    TEAM_VALUES,
    container,
    of_kind,
    one,
    run,
    split_documents,
    tool,
)
from jobs import interruptible

from tools.helm import helm_unittest_plugin
from tools.validators import SCHEMAS, check_schema_file, run_checkov

# --- helm itself -------------------------------------------------------------------------


def test_helm_4_lint_strict_passes_with_every_values_file(chart):
    failures = {key: r.stdout + r.stderr for key, r in chart.lints.items() if r.returncode != 0}
    assert failures == {}


def test_helm_3_and_4_render_the_same_manifests(chart):
    for label in chart.labels:
        three, four = chart.renders[label, "3.17"], chart.renders[label, "4"]
        assert three.returncode == four.returncode == 0, three.stderr + four.stderr
        assert three.stdout == four.stdout, label


@HELM_VERSIONS
@pytest.mark.parametrize(
    "bad, field",
    [
        ("replicaCount: two\n", "replicaCount"),  # wrong type
        ("replicas: 2\n", "replicas"),  # unknown top-level key
        ("autoscaling:\n  enabled: 'yes'\n", "enabled"),  # wrong type, nested
        ("dr:\n  role: standby\n", "role"),  # not one of active/passive
        # Ambassador's TLS below 1.2.
        ("tls:\n  minVersion: v1.0\n", "minVersion"),
        ("tls:\n  minVersion: v1.1\n", "minVersion"),
        # The Mapping routes a service path, never the whole host (/livez, /readyz, /metrics).
        ("mapping:\n  prefix: /\n", "prefix"),
        ("mapping:\n  prefix: /api\n", "prefix"),
        # A drain too short to be one.
        ("terminationGracePeriodSeconds: 1\n", "terminationGracePeriodSeconds"),
        ("gracefulTimeoutSeconds: 1\n", "gracefulTimeoutSeconds"),
        ("preStopSleepSeconds: 0\n", "preStopSleepSeconds"),
        # What the chart sets itself, and a prefix/suffix pattern's leftovers.
        ("env:\n  GUNICORN_GRACEFUL_TIMEOUT: '1'\n", "GUNICORN_GRACEFUL_TIMEOUT"),
        ("env:\n  PORT: '9090'\n", "PORT"),
        ("persistence:\n  mountPath: /data/../app\n", "mountPath"),
        ("podAntiAffinity:\n  topologyKey: 'zone key'\n", "topologyKey"),
        ("image:\n  tag: 'latest stable'\n", "tag"),
        ("nameOverride: 'Name'\n", "nameOverride"),
        # What checkov asks of every render: a fixed tag, pulled every time.
        ("image:\n  tag: latest\n", "tag"),
        ("image:\n  pullPolicy: IfNotPresent\n", "pullPolicy"),
        # A zero request or limit is none: the pod loses what the platform's defaults guarantee it
        # (checkov's CKV_K8S_10 failed on a render of the generative test's), nor is a zero /tmp one.
        ("resources:\n  requests:\n    cpu: 0\n", "cpu"),
        ("resources:\n  requests:\n    cpu: 0m\n", "cpu"),
        ("resources:\n  limits:\n    memory: 0Mi\n", "memory"),
        ("resources:\n  requests:\n    ephemeral-storage: 0\n", "ephemeral-storage"),
        ("tmpSizeLimit: 0Mi\n", "tmpSizeLimit"),
    ],
)
def test_values_schema_rejects_bad_values(default_chart, tmp_path, version, bad, field):
    helm = default_chart.helms[version]
    label = default_chart.labels[-1]
    good = default_chart.template(label, helm=helm)
    assert good.returncode == 0, good.stderr
    values = tmp_path / "bad.yaml"
    values.write_text(bad)
    result = default_chart.template(label, extra_values=[values], helm=helm)
    assert result.returncode != 0
    # helm 3 and 4 word schema errors differently; both name the schema and the field.
    assert "schema" in result.stderr and field in result.stderr, result.stderr


# A values file that, inserted unquoted, ends the line it lands on and starts pod-spec
# fields of its own: host namespaces and a privileged root init container. "overhead:" takes
# whatever deeper lines the template writes after the value, so the render stays valid YAML.
POD_FIELDS = (
    "\n      hostPID: true\n      hostNetwork: true\n      initContainers:\n        - name: root\n"
    "          image: busybox\n          securityContext: {privileged: true, runAsUser: 0}\n      overhead:"
)


def deployment_pod(objects):
    return one(objects, "Deployment")["spec"]["template"]["spec"]


def data_mount(objects):
    return [m for m in container(objects)["volumeMounts"] if m["name"] == "data"][0]["mountPath"]


def preferred_topology_key(objects):
    rules = deployment_pod(objects)["affinity"]["podAntiAffinity"]
    return rules["preferredDuringSchedulingIgnoredDuringExecution"][0]["podAffinityTerm"]["topologyKey"]


MAPPING_FIELDS = {"hostname", "prefix", "rewrite", "service", "timeout_ms"}


# Free strings of the values, each with a newline in it: where the value lands, and the
# values file that carries it.
MOUNT_PATH, TOPOLOGY_KEY = "/data" + POD_FIELDS, "kubernetes.io/hostname" + POD_FIELDS
PREFIX, STORAGE_CLASS = "/api/\n  bypass_auth: true\n  host_redirect: true", "fast\n  volumeName: someone-elses"
REPOSITORY, TAG = "registry.example.com/team/app", '1.0"\n          command: [sh]\n          args: "'
INJECTIONS = {
    "persistence.mountPath": (data_mount, MOUNT_PATH, {"persistence": {"enabled": True, "mountPath": MOUNT_PATH}}),
    "podAntiAffinity.topologyKey": (
        preferred_topology_key,
        TOPOLOGY_KEY,
        {"podAntiAffinity": {"type": "preferred", "topologyKey": TOPOLOGY_KEY}},
    ),
    "mapping.prefix": (
        lambda objects: of_kind(objects, "Mapping")[0]["spec"]["prefix"],
        PREFIX,
        {"mapping": {"prefix": PREFIX}},
    ),
    "persistence.storageClassName": (
        lambda objects: one(objects, "PersistentVolumeClaim")["spec"]["storageClassName"],
        STORAGE_CLASS,
        {"persistence": {"enabled": True, "storageClassName": STORAGE_CLASS}},
    ),
    "image.tag": (
        lambda objects: container(objects)["image"],
        f"{REPOSITORY}:{TAG}",
        {"image": {"repository": REPOSITORY, "tag": TAG}},
    ),
}


@HELM_VERSIONS
@pytest.mark.parametrize("path", INJECTIONS, ids=str)
def test_a_value_with_a_newline_is_refused_and_cannot_add_fields(default_chart, tmp_path, version, path):
    """The schema refuses it; and were the schema skipped (--skip-schema-validation), the value
    arrives as the one string it is, adding no field: every free string is quoted."""
    arrival, expected, values = INJECTIONS[path]
    file = tmp_path / "hostile.yaml"
    file.write_text(yaml.safe_dump(values))
    helm, label = default_chart.helms[version], default_chart.labels[-1]
    refused = default_chart.template(label, extra_values=[file], helm=helm)
    assert refused.returncode != 0 and "schema" in refused.stderr, refused.stdout
    lint = run(
        [helm, "lint", "--strict", default_chart.dir, *default_chart.values_args(label, [file])], env=default_chart.env
    )
    assert lint.returncode != 0, lint.stdout
    rendered = default_chart.template(label, extra_values=[file], helm=helm, flags=["--skip-schema-validation"])
    assert rendered.returncode == 0, rendered.stderr
    objects = split_documents(rendered.stdout)
    pod = deployment_pod(objects)
    assert not {"hostPID", "hostNetwork", "initContainers", "overhead"} & set(pod), pod
    assert all(set(m["spec"]) == MAPPING_FIELDS for m in of_kind(objects, "Mapping"))
    assert "command" not in container(objects)
    assert arrival(objects) == expected


def deployed_contexts(result):
    """The pod's and the container's security contexts of a render."""
    assert result.returncode == 0, result.stderr
    objects = split_documents(result.stdout)
    return deployment_pod(objects)["securityContext"], container(objects)["securityContext"]


NULL_CONTEXTS = "securityContext: null\npodSecurityContext: null\n"


@HELM_VERSIONS
def test_a_null_security_context_never_gives_a_pod_without_one(default_chart, tmp_path, version):
    """helm keeps a null that a values file sets for a key the chart's values.yaml does not
    hold, and deletes one for a key it holds (its coalesce). In a hostspace's file: for a
    security context that neither of the team's files sets, the schema refuses the null; for
    one that values.yaml sets, the null removes the team's value and the platform's defaults
    apply. A null never removes a platform default, and no pod ever runs without either context."""
    chart, helm = default_chart, default_chart.helms[version]
    label = chart.labels[-1]
    unset = chart.copy_with(tmp_path / "unset", hostspaces={label: NULL_CONTEXTS})
    refused = chart.template(label, helm=helm, directory=unset)
    assert refused.returncode != 0, refused.stdout
    for key in ("securityContext", "podSecurityContext"):
        assert re.search(rf"(?<![A-Za-z]){key}\W.*\bnull\b", refused.stderr), refused.stderr

    expected = chart.defaults["podSecurityContext"], chart.defaults["securityContext"]

    teams = {"securityContext": {"runAsUser": 10002}, "podSecurityContext": {"runAsUser": 10002}}
    team = chart.copy_with(tmp_path / "team", values=teams)
    pod, main = deployed_contexts(chart.template(label, helm=helm, directory=team))
    assert pod == {**expected[0], "runAsUser": 10002} and main == {**expected[1], "runAsUser": 10002}
    nulled = chart.copy_with(tmp_path / "nulled", values=teams, hostspaces={label: NULL_CONTEXTS})
    assert deployed_contexts(chart.template(label, helm=helm, directory=nulled)) == expected
    # A null that stops serving a hostname is still allowed (hosts.<key>: null, one file more).
    unserved = tmp_path / "unserved.yaml"
    unserved.write_text("hosts:\n  platform: null\n")
    result = chart.template(label, extra_values=[unserved], helm=helm)
    assert result.returncode == 0, result.stderr
    assert f"{chart.app}-platform" not in {
        h["metadata"]["name"] for h in of_kind(split_documents(result.stdout), "Host")
    }


@HELM_VERSIONS
def test_a_chart_without_its_defaults_refuses_to_render_and_names_them(default_chart, tmp_path, version):
    """The templates read defaults.yaml through .Files: left out of the chart (.helmignore) or
    broken, it stops the render with its name, never a render without the platform's defaults."""
    chart, helm, label = default_chart, default_chart.helms[version], default_chart.labels[-1]
    ignored = chart.copy_with(tmp_path / "ignored")
    with (ignored / ".helmignore").open("a") as file:
        file.write("defaults.yaml\n")
    broken = chart.copy_with(tmp_path / "broken")
    with (broken / "defaults.yaml").open("a") as file:
        file.write("tls: [\n")
    for directory, says in ((ignored, "is missing from the chart"), (broken, "is not YAML")):
        result = chart.template(label, helm=helm, directory=directory)
        assert result.returncode != 0 and f"defaults.yaml, the platform's defaults, {says}" in result.stderr, (
            result.stderr
        )


@HELM_VERSIONS
def test_a_drain_the_kubelet_would_cut_short_is_refused(default_chart, version):
    """Each value within its bounds, but the preStop pause plus gunicorn's graceful timeout
    outlasts the grace period: the kubelet would kill requests in flight."""
    sets = ["preStopSleepSeconds=5", "gracefulTimeoutSeconds=25", "terminationGracePeriodSeconds=30"]
    helm = default_chart.helms[version]
    result = default_chart.template(default_chart.labels[-1], sets=sets, helm=helm)
    assert result.returncode != 0
    assert "terminationGracePeriodSeconds (30) must exceed" in result.stderr, result.stderr
    enough = default_chart.template(
        default_chart.labels[-1], sets=[*sets[:2], "terminationGracePeriodSeconds=31"], helm=helm
    )
    assert enough.returncode == 0, enough.stderr


# A template action that writes a value into YAML: quoted, a number, JSON, or YAML from toYaml
# (include of the label helpers, whose values are quoted there). Anything else is a statement.
STATEMENT = re.compile(
    r"^(if|else|end|with|range|define|fail)\b|^/\*|^\$\w+\s*:?=|^include \"app\.(init|refusals)\" \.$"
)
WRITES_SAFELY = re.compile(
    r"(\|\s*(quote|int|toJson|sha256sum)|toYaml .*|include \"app\.(labels|selectorLabels)\" \S+ \| nindent \d+)$"
)


def test_every_value_reaches_yaml_quoted_or_typed(default_chart):
    """A value written bare takes YAML's reading of it (a newline starts new fields; `yes` is a
    boolean): every action that writes one quotes it, types it, or writes it with toYaml/toJson."""
    bare = []
    for path in sorted((default_chart.dir / "templates").iterdir()):
        if path.name == "NOTES.txt":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if path.suffix == ".tpl" and not re.match(r"^\s*[-\w./]+: ", line):
                continue  # helper bodies build strings; only the label lines are YAML
            for action in re.findall(r"{{-?\s*(.*?)\s*-?}}", line):
                if not STATEMENT.match(action) and not WRITES_SAFELY.search(action):
                    bare.append(f"{path.name}:{number}: {action}")
    assert bare == []


def test_values_schema_is_self_contained_draft_07(default_chart):
    schema = json.loads((default_chart.dir / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    refs = re.findall(r'"\$ref":\s*"([^"]*)"', json.dumps(schema))
    assert refs and all(ref.startswith("#/") for ref in refs)
    assert "$id" not in json.dumps(schema)
    assert schema["additionalProperties"] is False
    # The values every label's templates read satisfy it (tests/unit/test_bake.py checks each
    # combination's defaults.yaml and values files on their own).
    validator = jsonschema.Draft7Validator(schema)
    for label in default_chart.labels:
        errors = [e.message for e in validator.iter_errors(default_chart.deployed(label))]
        assert errors == [], label


# --- Kubernetes, Ambassador and checkov --------------------------------------------------


def write_renders(chart, folder):
    """Each helm 4 render of the chart in its own file, named after its values file."""
    folder.mkdir(parents=True, exist_ok=True)
    for label in chart.labels:
        (folder / label).write_text(chart.renders[label, "4"].stdout)
    return folder


@pytest.fixture(scope="module")
def written_renders(chart, tmp_path_factory):
    return write_renders(chart, tmp_path_factory.mktemp("renders"))


# The first week's values (below) and a render made unsafe by hand, which the scan must fail.
FIRST_WEEK_FOLDER, PLANTED = "first-week", "planted"


@pytest.fixture(scope="module")
def first_week(default_chart, tmp_path_factory):
    """The default chart's production values with FIRST_WEEK on top: {helm version: result}."""
    values = tmp_path_factory.mktemp("first-week") / "first-week.yaml"
    values.write_text(FIRST_WEEK)
    return {
        version: default_chart.template(default_chart.labels[-1], extra_values=[values], helm=helm)
        for version, helm in default_chart.helms.items()
    }


def unsafe(manifest):
    """The manifest with its Deployment's container privileged and allowed to run as root."""
    documents = split_documents(manifest)
    context = container(documents)["securityContext"]
    context.update(privileged=True, allowPrivilegeEscalation=True, runAsNonRoot=False)
    return yaml.safe_dump_all(documents)


# The default chart's production render with a NetworkPolicy (test_chart_objects.py tests what it
# renders), which must pass the check the chart skips until a team enables one: pods without a
# NetworkPolicy (.checkov.yaml says why).
NETWORK_POLICY_FOLDER, NETWORK_POLICY_CHECK = "network-policy", "CKV2_K8S_6"
NETWORK_POLICY = {"networkPolicy": TEAM_VALUES["networkPolicy"]}  # Ambassador's namespace as its peer


@pytest.fixture(scope="module")
def checkov_report(charts, default_chart, first_week, tmp_path_factory):
    """One checkov scan (its start-up dominates a scan) of every combination's renders (folders
    0, 1, ...), the first week's, the planted one and the NetworkPolicy's: {folder: [failed
    checks]}, {folder: {passed check ids}}, and the summary. The scan runs with the chart's skips
    but the NetworkPolicy check, whose failures count in the NetworkPolicy's folder alone."""
    scratch = tmp_path_factory.mktemp("checkov-inputs")
    (scratch / "network-policy.yaml").write_text(yaml.safe_dump(NETWORK_POLICY))
    policy = default_chart.template(default_chart.labels[-1], extra_values=[scratch / "network-policy.yaml"])
    assert policy.returncode == 0, policy.stderr
    root = tmp_path_factory.mktemp("checkov")
    for index, answers in enumerate(COMBINATIONS):
        write_renders(charts(answers), root / str(index))
    for folder, manifest in (
        (FIRST_WEEK_FOLDER, first_week["4"].stdout),
        (PLANTED, unsafe(first_week["4"].stdout)),
        (NETWORK_POLICY_FOLDER, policy.stdout),
    ):
        (root / folder).mkdir()
        (root / folder / "render.yaml").write_text(manifest)
    # checkov lets a NetworkPolicy cover every matching Pod of the scan, whatever its folder: the
    # NetworkPolicy's folder must be the only one with one, or another could pass its check.
    others = [folder.name for folder in root.iterdir() if folder.name != NETWORK_POLICY_FOLDER]
    assert [f for f in others for r in (root / f).iterdir() if "\nkind: NetworkPolicy\n" in r.read_text()] == []
    config = yaml.safe_load((default_chart.dir / ".checkov.yaml").read_text())
    assert NETWORK_POLICY_CHECK in config["skip-check"]
    config["skip-check"].remove(NETWORK_POLICY_CHECK)
    (scratch / "checkov.yaml").write_text(yaml.safe_dump(config))
    report = json.loads(run_checkov(root, config=scratch / "checkov.yaml", output="json").stdout)
    failed, passed = {}, {}
    for check in report["results"]["failed_checks"]:
        folder = Path(check["file_path"]).parts[1]
        if check["check_id"] != NETWORK_POLICY_CHECK or folder == NETWORK_POLICY_FOLDER:
            failed.setdefault(folder, []).append(
                f"{check['check_id']} {check['check_name']}: {check['resource']} in {check['file_path']}"
            )
    for check in report["results"]["passed_checks"]:
        passed.setdefault(Path(check["file_path"]).parts[1], set()).add(check["check_id"])
    return failed, passed, report["summary"]


# The tests that read the checkov scan (and the schema checks below) run on one worker, so that
# each runs once.
scanned = pytest.mark.xdist_group("chart-checkov")


def test_every_object_is_valid_kubernetes(chart, written_renders):
    from kubernetes_validate.utils import latest_version

    files = sorted(written_renders.glob("*.yaml"))
    versions = [arg for version in (KUBE_VERSION, latest_version()) for arg in ("-k", version)]
    result = run([tool("kubernetes-validate"), "--strict", "--quiet", *versions, *files])  # both in one run
    assert result.returncode == 0, result.stdout + result.stderr
    # It only warns about kinds it has no schema for: those must be Ambassador's alone.
    unknown = [line for line in (result.stdout + result.stderr).splitlines() if line.strip() and AMBASSADOR not in line]
    assert unknown == []


@scanned
def test_checkov_fails_the_planted_privileged_container(checkov_report):
    failed, _, summary = checkov_report
    assert summary["passed"] > 0
    assert [check for check in failed.get(PLANTED, []) if check.startswith("CKV_K8S_16 ")]  # privileged


@scanned
def test_checkov_finds_no_failed_check(chart, checkov_report):
    failed, _, _ = checkov_report
    assert failed.get(str(COMBINATIONS.index(chart.answers_given)), []) == []


@scanned
def test_checkov_finds_no_failed_check_with_the_first_week_values(checkov_report):
    failed, _, _ = checkov_report
    assert failed.get(FIRST_WEEK_FOLDER, []) == []


@scanned
def test_checkov_passes_the_check_the_chart_skips_once_a_network_policy_is_enabled(checkov_report):
    failed, passed, _ = checkov_report
    assert failed.get(NETWORK_POLICY_FOLDER, []) == []
    assert NETWORK_POLICY_CHECK in passed[NETWORK_POLICY_FOLDER]


# The JSON schemas each combination's files are checked against: the Ambassador objects it renders
# (every values file) and its helm-unittest suites.
HOST, MAPPING, SUITE = (
    SCHEMAS / "getambassador.io" / "host_v3alpha1.json",
    SCHEMAS / "getambassador.io" / "mapping_v3alpha1.json",
    SCHEMAS / "helm-testsuite.json",
)


@pytest.fixture(scope="module")
def schema_checks(charts, tmp_path_factory):
    """{(schema, combination index): errors of its files} for every combination, each schema
    checked in one check-jsonschema run (its start-up dominates a check); a combination with no
    file for a schema has no entry."""
    root = tmp_path_factory.mktemp("schema-checks")
    files = {schema: {} for schema in (HOST, MAPPING, SUITE)}  # {schema: {file: combination index}}
    for index, answers in enumerate(COMBINATIONS):
        chart = charts(answers)
        files[SUITE].update((str(suite), index) for suite in suites(chart))
        for kind, schema in (("Host", HOST), ("Mapping", MAPPING)):
            for label in chart.labels:
                for number, obj in enumerate(of_kind(chart.objects(label), kind)):
                    assert obj["apiVersion"] == AMBASSADOR
                    file = root / str(index) / f"{kind}-{label}-{number}.json"
                    file.parent.mkdir(exist_ok=True)
                    file.write_text(json.dumps(obj))
                    files[schema][str(file)] = index
    checks = {}
    for schema, indexes in files.items():
        for file, errors in check_schema_file(schema, list(indexes)).items():
            checks.setdefault((schema, indexes[file]), []).extend(f"{file}: {error}" for error in errors)
    return checks


@scanned  # on the worker that has every combination's chart
def test_hosts_and_mappings_match_ambassador_schemas(chart, schema_checks):
    index = COMBINATIONS.index(chart.answers_given)
    for schema in (HOST, MAPPING):
        assert (schema, index) in schema_checks, f"no object of {schema.name} rendered"
        assert schema_checks[schema, index] == []


@scanned
def test_every_suite_validates_against_the_helm_unittest_schema(chart, schema_checks):
    assert schema_checks[SUITE, COMBINATIONS.index(chart.answers_given)] == []


def test_every_checkov_skip_is_justified(default_chart):
    text = (default_chart.dir / ".checkov.yaml").read_text()
    skips = yaml.safe_load(text)["skip-check"]
    assert skips
    for check in skips:
        before = text.split(f"- {check}")[0].rstrip().splitlines()
        assert before[-1].lstrip().startswith("#") and len(before[-1]) > 20, check


WEAKENED = {
    "pod runAsNonRoot false": {"podSecurityContext": {"runAsNonRoot": False}},
    "pod runs as root": {"podSecurityContext": {"runAsUser": 0}},
    "a low user ID, maybe a node's user": {"securityContext": {"runAsUser": 1000}},
    "pod runAsNonRoot removed": {"podSecurityContext": {"runAsNonRoot": None}},
    "pod unconfined seccomp": {"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}},
    "runAsNonRoot false": {"securityContext": {"runAsNonRoot": False}},
    "privilege escalation": {"securityContext": {"allowPrivilegeEscalation": True}},
    "privileged": {"securityContext": {"privileged": True}},
    "added capability": {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}},
    "nothing dropped": {"securityContext": {"capabilities": {"drop": []}}},
    "writable root": {"securityContext": {"readOnlyRootFilesystem": False}},
    "host path volume": {"extraVolumes": [{"name": "node", "hostPath": {"path": "/"}}]},
    "container AppArmor unconfined": {"securityContext": {"appArmorProfile": {"type": "Unconfined"}}},
    "pod AppArmor unconfined": {"podSecurityContext": {"appArmorProfile": {"type": "Unconfined"}}},
    "AppArmor unconfined annotation": {
        "podAnnotations": {"container.apparmor.security.beta.kubernetes.io/flask-app": "unconfined"}
    },
    "seccomp unconfined annotation": {"podAnnotations": {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}},
    "localhost seccomp": {"securityContext": {"seccompProfile": {"type": "Localhost", "localhostProfile": "x"}}},
    "SELinux spc_t": {"securityContext": {"seLinuxOptions": {"type": "spc_t"}}},
    "pod SELinux spc_t": {"podSecurityContext": {"seLinuxOptions": {"type": "spc_t"}}},
    "root group": {"podSecurityContext": {"fsGroup": 0, "supplementalGroups": [0]}},
    "sysctls": {"podSecurityContext": {"sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "0"}]}},
    "unmasked /proc": {"securityContext": {"procMount": "Unmasked"}},
    "Windows host process": {"securityContext": {"windowsOptions": {"hostProcess": True}}},
    "privileged port": {"containerPort": 80},
    "service-account token volume": {
        "extraVolumes": [{"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
        "extraVolumeMounts": [{"name": "token", "mountPath": "/etc/token", "readOnly": True}],
    },
    "a volume at the token's path": {
        "extraVolumes": [{"name": "token", "secret": {"secretName": "stolen-token"}}],
        "extraVolumeMounts": [{"name": "token", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
    },
    "writable volume over /app/api": {
        "extraVolumes": [{"name": "code", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "code", "mountPath": "/app/api"}],
    },
    "writable volume over /app/scale": {
        "extraVolumes": [{"name": "code", "emptyDir": {}}],
        "extraVolumeMounts": [{"name": "code", "mountPath": "/app/scale"}],
    },
    "writable volume over /app": {"persistence": {"enabled": True, "mountPath": "/app"}},
    "writable volume over the packages": {"persistence": {"enabled": True, "mountPath": "/opt/venv/lib"}},
    "LoadBalancer service": {"service": {"type": "LoadBalancer"}},
    "NodePort service": {"service": {"type": "NodePort"}},
    "control-plane toleration": {
        "tolerations": [{"key": "node-role.kubernetes.io/control-plane", "operator": "Exists", "effect": "NoSchedule"}]
    },
    "tolerates every taint": {"tolerations": [{"operator": "Exists"}]},
    "a library preloaded into every process": {"env": {"LD_PRELOAD": "/data/hook.so"}},
    "Python code from outside /app": {"env": {"PYTHONPATH": "/data"}},
    "gunicorn's options from the environment": {"env": {"GUNICORN_CMD_ARGS": "--access-logformat %(r)s"}},
    "another metrics directory": {"env": {"PROMETHEUS_MULTIPROC_DIR": "/data"}},
    "a file over the preload list": {
        "extraVolumes": [{"name": "preload", "configMap": {"name": "preload"}}],
        "extraVolumeMounts": [{"name": "preload", "mountPath": "/etc/ld.so.preload", "subPath": "preload"}],
    },
}


@HELM_VERSIONS
@pytest.mark.parametrize("weakening", WEAKENED, ids=str)
def test_values_schema_refuses_a_weakened_security_context(default_chart, tmp_path, version, weakening):
    values = tmp_path / "weak.yaml"
    values.write_text(yaml.safe_dump(WEAKENED[weakening]))
    result = default_chart.template(default_chart.labels[-1], extra_values=[values], helm=default_chart.helms[version])
    assert result.returncode != 0, weakening
    assert "schema" in result.stderr, result.stderr


@HELM_VERSIONS
def test_a_large_number_in_env_reaches_the_container_as_digits(default_chart, tmp_path, version):
    """YAML numbers reach Helm as floats: 2097152 must not become "2.097152e+06", which the
    service's settings refuse (a pod that never starts)."""
    values = tmp_path / "numbers.yaml"
    values.write_text("env:\n  MAX_CONTENT_LENGTH: 2097152\n  RATIO: 0.5\n  FLAG: true\n")
    result = default_chart.template(default_chart.labels[-1], extra_values=[values], helm=default_chart.helms[version])
    assert result.returncode == 0, result.stderr
    [deployment] = [doc for doc in yaml.safe_load_all(result.stdout) if doc and doc["kind"] == "Deployment"]
    env = {item["name"]: item.get("value") for item in deployment["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert (env["MAX_CONTENT_LENGTH"], env["RATIO"], env["FLAG"]) == ("2097152", "0.5", "true")


# Everything a team adds in its first week, at once: variables from a Secret and a ConfigMap,
# a Secret as files, placement, spread, extra pod metadata and the ServiceMonitor.
FIRST_WEEK = """
env:
  DATABASE_URL:
    valueFrom:
      secretKeyRef: {name: orders-database, key: url}
  POD_IP:
    valueFrom:
      fieldRef: {fieldPath: status.podIP}
envFrom:
  - secretRef: {name: orders-credentials}
  - configMapRef: {name: orders-settings}
    prefix: ORDERS_
extraVolumes:
  - name: certificates
    secret: {secretName: orders-client-cert, defaultMode: 0440}
extraVolumeMounts:
  - {name: certificates, mountPath: /etc/orders/certificates, readOnly: true}
podAnnotations: {team: orders}
podLabels: {cost-centre: "4711"}
nodeSelector: {kubernetes.io/arch: amd64}
tolerations:
  - {key: dedicated, operator: Equal, value: orders, effect: NoSchedule}
topologySpreadConstraints:
  - {maxSkew: 1, topologyKey: topology.kubernetes.io/zone, whenUnsatisfiable: ScheduleAnyway}
metrics:
  serviceMonitor: {enabled: true, labels: {release: prometheus}}
"""


def test_first_week_values_render_as_valid_objects(first_week, tmp_path):
    assert first_week["3.17"].stdout == first_week["4"].stdout, first_week["3.17"].stderr + first_week["4"].stderr
    objects = split_documents(first_week["4"].stdout)
    main = container(objects)
    assert {"name": "DATABASE_URL", "valueFrom": {"secretKeyRef": {"name": "orders-database", "key": "url"}}} in main[
        "env"
    ]
    assert {"secretRef": {"name": "orders-credentials"}} in main["envFrom"]
    assert {"name": "certificates", "mountPath": "/etc/orders/certificates", "readOnly": True} in main["volumeMounts"]
    pod = one(objects, "Deployment")["spec"]["template"]
    assert pod["metadata"]["labels"]["cost-centre"] == "4711"
    assert pod["metadata"]["annotations"]["team"] == "orders"
    assert (
        pod["spec"]["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"]
        == (one(objects, "Deployment")["spec"]["selector"]["matchLabels"])
    )
    monitor = one(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == one(objects, "Service")["spec"]["selector"]

    # kubernetes-validate knows no ServiceMonitor (a CRD): it is checked above, the rest here.
    core = [o for o in objects if o["kind"] != "ServiceMonitor"]
    (tmp_path / "first-week.yaml").write_text(yaml.safe_dump_all(core))
    validated = run(
        [tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBE_VERSION, tmp_path / "first-week.yaml"]
    )
    unknown = [
        line for line in (validated.stdout + validated.stderr).splitlines() if line.strip() and AMBASSADOR not in line
    ]
    assert validated.returncode == 0 and unknown == [], validated.stdout + validated.stderr


# --- helm-unittest suites ----------------------------------------------------------------

# The suites are written for the helm-unittest plugin (`helm unittest chart`, which the generated
# project's `make check` runs too). They are checked against the plugin's JSON schema, and run by
# the real plugin on both helms: the plugin installed for helm (the template's CI installs it,
# pinned: .github/workflows/ci.yml, azure-pipelines.yml), else the suite's own build of the same
# release (tools/helm.py). The measurement names the plugin, its version and where it came from.

TOGGLES = {
    "autoscaling.enabled": {True, False},
    "persistence.enabled": {True, False},
    "dr.enabled": {True, False},
    "dr.role": {"active", "passive"},
    "podAntiAffinity.type": {"none", "preferred", "required"},
    "hosts.custom": {"set"},
    "networkPolicy.enabled": {True, False},
    "metrics.scrapeAnnotations": {True, False},
    "metrics.serviceMonitor.enabled": {True, False},
}


def suites(chart):
    return sorted((chart.dir / "tests").glob("*_test.yaml"))


def flatten(prefix, value):
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            yield from flatten(f"{prefix}.{key}" if prefix else key, inner)
    else:
        yield prefix, value


def test_there_is_a_suite_for_every_template_and_toggle(chart):
    templates = {p.name for p in (chart.dir / "templates").iterdir() if not p.name.startswith("_")}
    tested = set()
    toggled = {key: set() for key in TOGGLES}
    for path in suites(chart):
        suite = yaml.safe_load(path.read_text())
        tested.update(Path(t).name for t in suite.get("templates", []))
        for test in suite["tests"]:
            for key, value in [*flatten("", suite.get("set", {})), *flatten("", test.get("set", {}))]:
                for toggle in TOGGLES:
                    if key == toggle:
                        toggled[toggle].add(value)
                    elif key.startswith(toggle + "."):
                        toggled[toggle].add("set")
    assert templates <= tested
    assert {k: v & TOGGLES[k] for k, v in toggled.items()} == TOGGLES


@HELM_VERSIONS
def test_helm_unittest_suites_pass(chart, version, helm_unittest, record_property):
    """One `helm unittest` call per chart and helm runs every suite, as `make check` does."""
    count = len(suites(chart))
    started = time.monotonic()
    result = run(
        [chart.helms[version], "unittest", chart.dir], env={**chart.env, "HELM_PLUGINS": helm_unittest.plugins}
    )
    record_property(
        "measurement",
        f"helm-unittest: the plugin unittest {helm_unittest.version} ({helm_unittest.origin}) on helm {version} "
        f"ran the {count} suites of combination {chart.number} in {time.monotonic() - started:.1f} s",
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert re.search(rf"^Test Suites:\s+{count} passed, {count} total$", result.stdout, re.MULTILINE), result.stdout


def test_an_installed_helm_unittest_plugin_is_the_one_used(helm_unittest, tmp_path):
    """A plugin installed for helm (here: in HELM_PLUGINS, as `helm plugin install` puts it)
    is used as it is, and named with its own version."""
    manifests = [m for root in helm_unittest.plugins.split(os.pathsep) for m in Path(root).glob("*/plugin.yaml")]
    (plugin,) = [m.parent for m in manifests if yaml.safe_load(m.read_text())["name"] == "unittest"]
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "helm-unittest").symlink_to(plugin)
    found = helm_unittest_plugin({**os.environ, "HELM_PLUGINS": str(plugins)})
    assert found == (str(plugins), helm_unittest.version, f"installed in {plugins}")


# `make helm-unittest` (the project's gate, which `make check` runs) tests the platform's chart:
# helm-unittest always reads the chart's values.yaml, which is the team's, so the target runs the
# suites on a temporary copy of the chart whose values.yaml is empty, removed however it ends.


def make_helm_unittest(project, environment, helm, **changes):
    """`make helm-unittest` in `project` with this helm first on PATH."""
    path = os.pathsep.join([str(Path(helm).parent), environment["PATH"]])
    return run(["make", "helm-unittest"], cwd=project, env={**environment, "PATH": path, **changes})


@pytest.fixture
def teams_project(default_project, helms, make_environment, helm_unittest, tmp_path):
    """(project, environment, temporary folder): a copy of the default project whose
    chart/values.yaml holds TEAM_VALUES, and `make`'s environment with its own TMPDIR."""
    project = tmp_path / default_project.name
    shutil.copytree(default_project, project)
    (project / "chart/values.yaml").write_text(yaml.safe_dump(TEAM_VALUES))
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    return project, make_environment({}, TMPDIR=str(temporary)), temporary


def test_make_helm_unittest_tests_the_platforms_chart_whatever_values_yaml_sets(teams_project, helms):
    project, environment, temporary = teams_project
    count = len(list((project / "chart/tests").glob("*_test.yaml")))
    # The plugin on the chart itself reads the team's values: the suites' defaults fail.
    direct = run([helms[0]["4"], "unittest", project / "chart"], env=environment)
    assert direct.returncode != 0 and "is left out by default" in direct.stdout, direct.stdout
    for version, helm in helms[0].items():
        result = make_helm_unittest(project, environment, helm)
        assert result.returncode == 0, version + result.stdout + result.stderr
        assert re.search(rf"^Test Suites:\s+{count} passed, {count} total$", result.stdout, re.MULTILINE), version
        assert list(temporary.iterdir()) == [], version
    assert yaml.safe_load((project / "chart/values.yaml").read_text()) == TEAM_VALUES  # the team's file untouched


def test_make_helm_unittest_removes_its_copy_of_the_chart_however_the_run_ends(teams_project, helms, tmp_path):
    project, environment, temporary = teams_project
    helm = helms[0]["3.17"]
    # A suite that fails (a defect in a template) fails the gate, and leaves no copy behind.
    account = project / "chart/templates/serviceaccount.yaml"
    account.write_text(
        account.read_text().replace("automountServiceAccountToken: false", "automountServiceAccountToken: true")
    )
    failed = make_helm_unittest(project, environment, helm)
    assert failed.returncode != 0 and "- mounts no API token" in failed.stdout, failed.stdout + failed.stderr
    assert list(temporary.iterdir()) == []
    # Interrupted (Ctrl-C reaches make's whole process group) while the suites run: a helm that
    # runs them for a minute, and says when it starts.
    slow, started = tmp_path / "slow-helm", tmp_path / "started"
    slow.mkdir()
    (slow / "helm").write_text(
        f'#!/bin/sh\nif [ "$1" = unittest ]; then : > "{started}"; exec sleep 60; fi\nexec "{helm}" "$@"\n'
    )
    (slow / "helm").chmod(0o755)
    path = os.pathsep.join([str(slow), environment["PATH"]])
    make = subprocess.Popen(
        ["make", "helm-unittest"],
        cwd=project,
        env={**environment, "PATH": path},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=interruptible,
    )
    try:
        deadline = time.monotonic() + 60
        while not started.exists() and make.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert started.exists(), "the suites never started"
        [copy] = list(temporary.iterdir())
        assert (copy / "chart/values.yaml").read_text() == ""  # the copy's values.yaml is empty
        os.killpg(make.pid, signal.SIGINT)
        make.wait(timeout=30)
    finally:
        if make.poll() is None:
            os.killpg(make.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while list(temporary.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert make.returncode != 0
    assert list(temporary.iterdir()) == []
