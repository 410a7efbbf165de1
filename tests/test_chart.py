"""Helm chart: real helm 3.17 and 4, Kubernetes and Ambassador schemas, checkov, helm-unittest.

Each combination of answers is baked once and rendered once per values file and helm
version (the `chart` fixture); every test of that combination reads those renders.
"""
import copy
import json
import os
import re
import subprocess
import sys
from functools import cached_property
from pathlib import Path

import jsonschema
import pytest
import yaml

from answers import combination_id
from tools.helm import helm_binaries
from tools.validators import SCHEMAS, run_checkov

pytestmark = pytest.mark.slow

# Every value of every chart option at least once, in few combinations (pairwise where it
# pays): hpa on/off, pvc off/ReadWriteOnce/ReadWriteMany, anti-affinity none/preferred/
# required, dr on/off, custom URL on/off, one and several hostspaces.
MATRIX = [
    {},
    {"hpa": False, "pvc": True, "pvc_access_mode": "ReadWriteOnce", "pod_anti_affinity": "none",
     "custom_url": "api.example.org"},
    {"pvc": True, "pvc_access_mode": "ReadWriteMany", "pvc_storage_class": "shared-nfs",
     "pvc_size": "5Gi", "pvc_mount_path": "/var/lib/orders", "pod_anti_affinity": "required",
     "dr": False, "hostspaces": "dev"},
    {"app_name": "orders-api", "hpa_min_replicas": "3", "hpa_max_replicas": "8",
     "hpa_cpu_target": "60", "dr": False, "custom_url": "orders.example.org",
     "hostspaces": "sandbox, live"},
    {"hpa": False, "pod_anti_affinity": "required", "custom_url": "api.example.org",
     "hostspaces": "dev", "dr_active_region": "north", "dr_passive_region": "south"},
]

KUBE_VERSION = "1.29.0"  # the oldest Kubernetes the chart supports
GRACEFUL_TIMEOUT = 20  # gunicorn's graceful_timeout (source/gunicorn.conf.py)
AMBASSADOR = "getambassador.io/v3alpha1"
VENV_BIN = Path(sys.executable).parent


def tool(name):
    """A tool of the test venv (.venv/bin), found even when PATH does not list it."""
    path = VENV_BIN / name
    return str(path) if path.exists() else name


# --- helm ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def helms(tmp_path_factory):
    """{"3.17": path, "4": path} and an environment that keeps helm off any real cluster."""
    home = tmp_path_factory.mktemp("helm-home")
    env = dict(
        os.environ,
        HELM_CONFIG_HOME=str(home / "config"),
        HELM_CACHE_HOME=str(home / "cache"),
        HELM_DATA_HOME=str(home / "data"),
        KUBECONFIG=str(home / "no-kubeconfig"),
    )
    return {label: str(path) for label, path in helm_binaries().items()}, env


def run(args, env=None, cwd=None):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env,
                          cwd=cwd, timeout=300)


def split_documents(text):
    return [doc for doc in yaml.safe_load_all(text) if doc]


class Chart:
    """A baked project's chart, rendered with each values file by each helm."""

    def __init__(self, project, answers, helms):
        self.project = project
        self.dir = project / "chart"
        self.answers_given = answers
        self.answers = {**DEFAULT_ANSWERS, **answers}
        self.helms, self.env = helms
        self.app = self.answers["app_name"]
        self.hostspaces = [h.strip() for h in self.answers["hostspaces"].split(",")]
        # "values.yaml" alone, then each hostspace as the pipeline deploys it.
        self.labels = ["values.yaml", *(f"values-{h}.yaml" for h in self.hostspaces)]
        self.lints = {}
        self.renders = {}
        for label in self.labels:
            for version, helm in self.helms.items():
                self.lints[label, version] = run(
                    [helm, "lint", "--strict", self.dir, *self.values_args(label),
                     "--kube-version", KUBE_VERSION], env=self.env)
                self.renders[label, version] = self.template(label, helm=helm)

    def namespace(self, label):
        space = label[len("values-"):-len(".yaml")] if label != "values.yaml" else ""
        return f"{self.answers['appcode']}-{space}" if space else self.answers["appcode"]

    def values_args(self, label, extra=()):
        files = ["values.yaml"] if label == "values.yaml" else ["values.yaml", label]
        args = [a for f in files for a in ("-f", self.dir / f)]
        return args + [a for f in extra for a in ("-f", f)]

    def template(self, label, extra_values=(), sets=(), helm=None):
        """`helm template` as the pipeline runs it; returns the CompletedProcess."""
        return run(
            [helm or self.helms["4"], "template", self.app, self.dir,
             *self.values_args(label, extra_values), *(a for s in sets for a in ("--set", s)),
             "--namespace", self.namespace(label), "--kube-version", KUBE_VERSION],
            env=self.env)

    def objects(self, label):
        """The objects helm 4 rendered with one values file."""
        result = self.renders[label, "4"]
        assert result.returncode == 0, result.stderr
        return split_documents(result.stdout)

    def stage(self, label):
        if label == "values.yaml":
            return None
        index = self.labels.index(label) - 1
        if index == len(self.hostspaces) - 1:
            return "production"
        return "development" if index == 0 else "preproduction"

    @cached_property
    def values(self):
        return yaml.safe_load((self.dir / "values.yaml").read_text())


DEFAULT_ANSWERS = {
    key: (value[0] if isinstance(value, list) else value)
    for key, value in json.loads((Path(__file__).parents[1] / "cookiecutter.json").read_text()).items()
    if not key.startswith("_")
}


@pytest.fixture(scope="session")
def charts(bake, helms):
    """charts(answers) -> the Chart of that combination, baked and rendered once per worker."""
    made = {}

    def _chart(answers):
        key = json.dumps(answers, sort_keys=True)
        if key not in made:
            made[key] = Chart(bake(**answers), answers, helms)
        return made[key]

    return _chart


@pytest.fixture(scope="module", params=MATRIX, ids=combination_id)
def chart(request, charts):
    return charts(request.param)


@pytest.fixture(scope="module")
def default_chart(charts):
    return charts(MATRIX[0])


def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind):
    (found,) = of_kind(objects, kind)
    return found


def container(objects):
    return one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]


# --- helm itself -------------------------------------------------------------------------


def test_helm_lint_strict_passes_with_every_values_file(chart):
    failures = {key: r.stdout + r.stderr for key, r in chart.lints.items() if r.returncode != 0}
    assert failures == {}


def test_helm_3_and_4_render_the_same_manifests(chart):
    for label in chart.labels:
        three, four = chart.renders[label, "3.17"], chart.renders[label, "4"]
        assert three.returncode == four.returncode == 0, three.stderr + four.stderr
        assert three.stdout == four.stdout, label


@pytest.mark.parametrize("version", ["3.17", "4"])
@pytest.mark.parametrize("bad, field", [
    ("replicaCount: two\n", "replicaCount"),  # wrong type
    ("replicas: 2\n", "replicas"),  # unknown top-level key
    ("autoscaling:\n  enabled: 'yes'\n", "enabled"),  # wrong type, nested
    ("dr:\n  role: standby\n", "role"),  # not one of active/passive
])
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


def test_values_schema_is_self_contained_draft_07(default_chart):
    schema = json.loads((default_chart.dir / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    refs = re.findall(r'"\$ref":\s*"([^"]*)"', json.dumps(schema))
    assert refs and all(ref.startswith("#/") for ref in refs)
    assert "$id" not in json.dumps(schema)
    assert schema["additionalProperties"] is False
    # values.yaml itself and every hostspace file satisfy it.
    validator = jsonschema.Draft7Validator(schema)
    for path in sorted(default_chart.dir.glob("values*.yaml")):
        values = merge(yaml.safe_load((default_chart.dir / "values.yaml").read_text()),
                       yaml.safe_load(path.read_text()))
        errors = [e.message for e in validator.iter_errors(values)]
        assert errors == [], path.name


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


@pytest.fixture(scope="session")
def checkov_report(charts, tmp_path_factory):
    """One checkov scan of every combination's renders (its start-up dominates a scan):
    {combination index: [failed checks]}, and the summary of the whole scan."""
    root = tmp_path_factory.mktemp("checkov")
    for index, answers in enumerate(MATRIX):
        chart = charts(answers)
        write_renders(chart, root / str(index))
    result = run_checkov(root, config=chart.dir / ".checkov.yaml", output="json")
    report = json.loads(result.stdout)
    failed = {index: [] for index in range(len(MATRIX))}
    for check in report["results"]["failed_checks"]:
        index = int(Path(check["file_path"]).parts[1])
        failed[index].append(f"{check['check_id']} {check['check_name']}: {check['resource']} "
                             f"in {check['file_path']}")
    return failed, report["summary"]


def test_every_object_is_valid_kubernetes(chart, written_renders):
    from kubernetes_validate.utils import latest_version

    files = sorted(written_renders.glob("*.yaml"))
    for version in (KUBE_VERSION, latest_version()):
        result = run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", version, *files])
        assert result.returncode == 0, result.stdout + result.stderr
        # It only warns about kinds it has no schema for: those must be Ambassador's alone.
        unknown = [line for line in (result.stdout + result.stderr).splitlines()
                   if line.strip() and AMBASSADOR not in line]
        assert unknown == [], version


def test_hosts_and_mappings_match_ambassador_schemas(chart, tmp_path):
    for kind, schema in (("Host", "host_v3alpha1.json"), ("Mapping", "mapping_v3alpha1.json")):
        files = []
        for label in chart.labels:
            for index, obj in enumerate(of_kind(chart.objects(label), kind)):
                assert obj["apiVersion"] == AMBASSADOR
                files.append(tmp_path / f"{kind}-{label}-{index}.json")
                files[-1].write_text(json.dumps(obj))
        assert files, f"no {kind} rendered"
        result = run([tool("check-jsonschema"), "--schemafile",
                      SCHEMAS / "getambassador.io" / schema, *files])
        assert result.returncode == 0, result.stdout + result.stderr


def test_checkov_finds_no_failed_check(chart, checkov_report):
    failed, summary = checkov_report
    assert summary["passed"] > 0 and summary["resource_count"] > 0  # it did scan the renders
    assert failed[MATRIX.index(chart.answers_given)] == []


def test_every_checkov_skip_is_justified(default_chart):
    text = (default_chart.dir / ".checkov.yaml").read_text()
    skips = yaml.safe_load(text)["skip-check"]
    assert skips
    for check in skips:
        before = text.split(f"- {check}")[0].rstrip().splitlines()
        assert before[-1].lstrip().startswith("#") and len(before[-1]) > 20, check


# --- the objects themselves --------------------------------------------------------------


def expected_hostnames(chart, label):
    """Hostnames one hostspace serves: platform, DR site (active), custom URL in the last."""
    if label == "values.yaml":
        return set()
    space = label[len("values-"):-len(".yaml")]
    domain = chart.answers["platform_domain"]
    names = {f"{chart.app}-{space}.{domain}"}
    if chart.answers["dr"]:
        names.add(f"{chart.app}-{space}.{chart.answers['dr_active_region']}.{domain}")
    if chart.answers["custom_url"] and space == chart.hostspaces[-1]:
        names.add(chart.answers["custom_url"])
    return names


def test_disabled_features_render_nothing(chart):
    answers = chart.answers
    for label in chart.labels:
        objects = chart.objects(label)
        kinds = {o["kind"] for o in objects}
        assert ("HorizontalPodAutoscaler" in kinds) == answers["hpa"], label
        assert ("PersistentVolumeClaim" in kinds) == answers["pvc"], label
        assert ("ConfigMap" in kinds) == answers["dr"], label
        names = {o["metadata"]["name"] for o in objects}
        assert (f"{chart.app}-site" in names) == (answers["dr"] and label != "values.yaml"), label
        serves_custom = bool(answers["custom_url"]) and label == chart.labels[-1]
        assert (f"{chart.app}-custom" in names) == serves_custom, label
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        assert ("affinity" in pod) == (answers["pod_anti_affinity"] != "none"), label
        assert ("envFrom" in pod["containers"][0]) == answers["dr"], label
        assert [v["name"] for v in pod["volumes"]] == (["tmp", "data"] if answers["pvc"] else ["tmp"])
        assert "TLSContext" not in kinds
        assert "NetworkPolicy" not in kinds, label  # off by default (networkPolicy.enabled)


def test_hpa_bounds_and_target_are_the_answers(chart):
    for label in chart.labels:
        objects = chart.objects(label)
        deployment = one(objects, "Deployment")
        if not chart.answers["hpa"]:
            assert of_kind(objects, "HorizontalPodAutoscaler") == []
            expected = 1 if chart.stage(label) == "development" else int(chart.answers["hpa_min_replicas"])
            assert deployment["spec"]["replicas"] == expected, label
            continue
        assert "replicas" not in deployment["spec"], label
        hpa = one(objects, "HorizontalPodAutoscaler")
        assert hpa["apiVersion"] == "autoscaling/v2"
        assert hpa["spec"]["scaleTargetRef"] == {
            "apiVersion": "apps/v1", "kind": "Deployment", "name": deployment["metadata"]["name"]}
        # Development starts from one pod; every other hostspace from the answer.
        expected_min = 1 if chart.stage(label) == "development" else int(chart.answers["hpa_min_replicas"])
        assert hpa["spec"]["minReplicas"] == expected_min, label
        assert hpa["spec"]["maxReplicas"] == int(chart.answers["hpa_max_replicas"])
        assert hpa["spec"]["metrics"] == [{"type": "Resource", "resource": {
            "name": "cpu", "target": {"type": "Utilization",
                                      "averageUtilization": int(chart.answers["hpa_cpu_target"])}}}]


def test_hpa_scales_on_memory_only_when_asked(default_chart):
    result = default_chart.template(default_chart.labels[-1],
                                    sets=["autoscaling.targetMemoryUtilizationPercentage=80"])
    assert result.returncode == 0, result.stderr
    metrics = one(split_documents(result.stdout), "HorizontalPodAutoscaler")["spec"]["metrics"]
    assert [m["resource"]["name"] for m in metrics] == ["cpu", "memory"]
    assert metrics[1]["resource"]["target"]["averageUtilization"] == 80


def test_pvc_is_claimed_and_mounted_where_answered(chart):
    answers = chart.answers
    for label in chart.labels:
        objects = chart.objects(label)
        main = container(objects)
        if not answers["pvc"]:
            assert of_kind(objects, "PersistentVolumeClaim") == []
            assert "DATA_DIR" not in {e["name"] for e in main["env"]}
            continue
        pvc = one(objects, "PersistentVolumeClaim")
        assert pvc["spec"]["accessModes"] == [answers["pvc_access_mode"]]
        assert pvc["spec"]["resources"]["requests"]["storage"] == answers["pvc_size"]
        assert pvc["spec"].get("storageClassName", "") == answers["pvc_storage_class"]
        pod = one(objects, "Deployment")["spec"]["template"]["spec"]
        assert {"name": "data", "persistentVolumeClaim": {"claimName": pvc["metadata"]["name"]}} in pod["volumes"]
        assert {"name": "data", "mountPath": answers["pvc_mount_path"]} in main["volumeMounts"]
        assert {"name": "DATA_DIR", "value": answers["pvc_mount_path"]} in main["env"]
        assert main["securityContext"]["readOnlyRootFilesystem"] is True


def test_pod_anti_affinity_has_the_answered_kind_and_topology_key(chart):
    kind = chart.answers["pod_anti_affinity"]
    for label in chart.labels:
        deployment = one(chart.objects(label), "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        if kind == "none":
            assert "affinity" not in pod
            continue
        rules = pod["affinity"]["podAntiAffinity"]
        assert list(rules) == [f"{kind}DuringSchedulingIgnoredDuringExecution"]
        (term,) = rules[f"{kind}DuringSchedulingIgnoredDuringExecution"]
        if kind == "preferred":
            assert term["weight"] == 100
            term = term["podAffinityTerm"]
        assert term["topologyKey"] == "kubernetes.io/hostname"
        assert term["labelSelector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]


def test_every_hostname_has_a_host_and_a_mapping_to_the_service(chart):
    for label in chart.labels:
        objects = chart.objects(label)
        hosts = {h["spec"]["hostname"]: h for h in of_kind(objects, "Host")}
        mappings = {m["spec"]["hostname"]: m for m in of_kind(objects, "Mapping")}
        assert set(hosts) == set(mappings) == expected_hostnames(chart, label), label
        service = one(objects, "Service")
        port = service["spec"]["ports"][0]["port"]
        for hostname, host in hosts.items():
            assert host["apiVersion"] == AMBASSADOR
            assert host["spec"]["tlsSecret"]["name"]
            assert host["spec"]["requestPolicy"] == {"insecure": {"action": "Redirect"}}
            selector = host["spec"]["mappingSelector"]["matchLabels"]
            mapping = mappings[hostname]
            assert selector.items() <= mapping["metadata"]["labels"].items()
            # Only the API is public: probes and /metrics are not routed from the internet.
            assert mapping["spec"]["prefix"] == "/api/" and mapping["spec"]["rewrite"] == ""
            assert host["spec"]["tls"] == {"min_tls_version": "v1.2"}
            assert mapping["spec"]["service"] == (
                f"{service['metadata']['name']}.{chart.namespace(label)}:{port}")
            assert isinstance(mapping["spec"]["timeout_ms"], int)


def test_dr_configmap_keys_reach_the_container(chart):
    for label in chart.labels[1:]:
        objects = chart.objects(label)
        if not chart.answers["dr"]:
            assert of_kind(objects, "ConfigMap") == []
            continue
        configmap = one(objects, "ConfigMap")
        space = label[len("values-"):-len(".yaml")]
        domain, active, passive = (chart.answers[k] for k in ("platform_domain", "dr_active_region",
                                                             "dr_passive_region"))
        assert configmap["data"] == {
            "DR_ROLE": "active",
            "DR_REGION": active,
            "DR_PEER_REGION": passive,
            "DR_SITE_HOSTNAME": f"{chart.app}-{space}.{active}.{domain}",
            "DR_GLOBAL_HOSTNAME": f"{chart.app}-{space}.{domain}",
        }
        assert {"configMapRef": {"name": configmap["metadata"]["name"]}} in container(objects)["envFrom"]
        # The application reads DR_ROLE and DR_REGION (source/settings.py).
        config = (chart.project / "source/settings.py").read_text()
        assert '"DR_ROLE"' in config and '"DR_REGION"' in config


def test_passive_site_serves_its_own_hostname_at_reduced_replicas(chart):
    if not chart.answers["dr"]:
        return  # nothing to switch: test_disabled_features_render_nothing covers DR off
    label = chart.labels[-1]
    space = label[len("values-"):-len(".yaml")]
    result = chart.template(label, sets=["dr.role=passive"])
    assert result.returncode == 0, result.stderr
    passive, active = split_documents(result.stdout), chart.objects(label)
    regions = chart.answers["dr_active_region"], chart.answers["dr_passive_region"]
    assert one(passive, "ConfigMap")["data"]["DR_ROLE"] == "passive"
    assert one(passive, "ConfigMap")["data"]["DR_REGION"] == regions[1]
    site = [h for h in of_kind(passive, "Host") if h["metadata"]["name"].endswith("-site")][0]
    assert site["spec"]["hostname"] == f"{chart.app}-{space}.{regions[1]}.{chart.answers['platform_domain']}"
    if chart.answers["hpa"]:
        assert one(passive, "HorizontalPodAutoscaler")["spec"]["minReplicas"] == 1
    else:
        assert one(passive, "Deployment")["spec"]["replicas"] == 1
    # Pods restart on failover: the ConfigMap's checksum is in the pod template.
    checksum = "checksum/dr-config"
    annotations = [one(o, "Deployment")["spec"]["template"]["metadata"]["annotations"][checksum]
                   for o in (active, passive)]
    assert annotations[0] != annotations[1]


def test_deployment_is_hardened_and_drains_gracefully(chart):
    for label in chart.labels:
        objects = chart.objects(label)
        deployment = one(objects, "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        main = pod["containers"][0]
        assert main["livenessProbe"]["httpGet"]["path"] == "/livez"
        assert main["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert main["resources"]["requests"] and main["resources"]["limits"]
        for bound in ("requests", "limits"):
            assert main["resources"][bound]["ephemeral-storage"], (label, bound)
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(main["ports"][0]["containerPort"])
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert main["securityContext"] == {
            "runAsNonRoot": True, "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}}
        assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
        assert "emptyDir" in [v for v in pod["volumes"] if v["name"] == "tmp"][0]
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pause = int(main["lifecycle"]["preStop"]["exec"]["command"][-1])
        assert pause > 0 and pod["terminationGracePeriodSeconds"] > pause + GRACEFUL_TIMEOUT
        assert pod["automountServiceAccountToken"] is False
        assert one(objects, "ServiceAccount")["automountServiceAccountToken"] is False
        can_scale = chart.answers["hpa"] or deployment["spec"]["replicas"] > 1
        pdbs = of_kind(objects, "PodDisruptionBudget")
        assert len(pdbs) == (1 if can_scale else 0), label
        for pdb in pdbs:
            assert pdb["apiVersion"] == "policy/v1"
            assert pdb["spec"]["selector"] == deployment["spec"]["selector"]


def test_network_policy_admits_only_its_peers_to_the_http_port(default_chart, tmp_path):
    label = default_chart.labels[-1]
    peer = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ambassador"}}}
    values = tmp_path / "networkpolicy.yaml"
    values.write_text(yaml.safe_dump({"networkPolicy": {"enabled": True, "from": [peer]}}))
    result = default_chart.template(label, extra_values=[values])
    assert result.returncode == 0, result.stderr
    objects = split_documents(result.stdout)
    policy = one(objects, "NetworkPolicy")
    assert policy["apiVersion"] == "networking.k8s.io/v1"
    assert policy["spec"]["podSelector"] == one(objects, "Deployment")["spec"]["selector"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"from": [peer], "ports": [{"port": "http", "protocol": "TCP"}]}]
    assert {"name": "http", "containerPort": default_chart.values["containerPort"],
            "protocol": "TCP"}.items() <= container(objects)["ports"][0].items()

    renders = tmp_path / "renders"
    renders.mkdir()
    (renders / label).write_text(result.stdout)
    validated = run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBE_VERSION,
                     renders / label])
    assert validated.returncode == 0, validated.stdout + validated.stderr

    # checkov with the chart's skips except CKV2_K8S_6, which this policy now satisfies.
    config = yaml.safe_load((default_chart.dir / ".checkov.yaml").read_text())
    config["skip-check"] = [c for c in config["skip-check"] if c != "CKV2_K8S_6"]
    config_file = tmp_path / "checkov.yaml"
    config_file.write_text(yaml.safe_dump(config))
    report = json.loads(run_checkov(renders, config=config_file, output="json").stdout)
    failed = [c["check_id"] for c in report["results"]["failed_checks"]]
    passed = [c["check_id"] for c in report["results"]["passed_checks"]]
    assert "CKV2_K8S_6" not in failed and "CKV2_K8S_6" in passed, failed


# Weakened security contexts a hostspace's values file might try; the schema refuses each.
WEAKENED = {
    "pod runAsNonRoot false": {"podSecurityContext": {"runAsNonRoot": False}},
    "pod runs as root": {"podSecurityContext": {"runAsUser": 0}},
    "pod runAsNonRoot removed": {"podSecurityContext": {"runAsNonRoot": None}},
    "pod unconfined seccomp": {"podSecurityContext": {"seccompProfile": {"type": "Unconfined"}}},
    "runAsNonRoot false": {"securityContext": {"runAsNonRoot": False}},
    "privilege escalation": {"securityContext": {"allowPrivilegeEscalation": True}},
    "privileged": {"securityContext": {"privileged": True}},
    "added capability": {"securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}},
    "nothing dropped": {"securityContext": {"capabilities": {"drop": []}}},
    "writable root": {"securityContext": {"readOnlyRootFilesystem": False}},
    "host path volume": {"extraVolumes": [{"name": "node", "hostPath": {"path": "/"}}]},
}


@pytest.mark.parametrize("version", ["3.17", "4"])
@pytest.mark.parametrize("weakening", WEAKENED, ids=str)
def test_values_schema_refuses_a_weakened_security_context(default_chart, tmp_path, version, weakening):
    values = tmp_path / "weak.yaml"
    values.write_text(yaml.safe_dump(WEAKENED[weakening]))
    result = default_chart.template(default_chart.labels[-1], extra_values=[values],
                                    helm=default_chart.helms[version])
    assert result.returncode != 0, weakening
    assert "schema" in result.stderr, result.stderr


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


def test_first_week_values_render_valid_and_checkov_clean(default_chart, tmp_path):
    label = default_chart.labels[-1]
    values = tmp_path / "first-week.yaml"
    values.write_text(FIRST_WEEK)
    renders = {version: default_chart.template(label, extra_values=[values], helm=helm)
               for version, helm in default_chart.helms.items()}
    assert renders["3.17"].stdout == renders["4"].stdout, renders["3.17"].stderr + renders["4"].stderr
    objects = split_documents(renders["4"].stdout)
    main = container(objects)
    assert {"name": "DATABASE_URL",
            "valueFrom": {"secretKeyRef": {"name": "orders-database", "key": "url"}}} in main["env"]
    assert {"secretRef": {"name": "orders-credentials"}} in main["envFrom"]
    assert {"name": "certificates", "mountPath": "/etc/orders/certificates", "readOnly": True} in main["volumeMounts"]
    pod = one(objects, "Deployment")["spec"]["template"]
    assert pod["metadata"]["labels"]["cost-centre"] == "4711"
    assert pod["metadata"]["annotations"]["team"] == "orders"
    assert pod["spec"]["topologySpreadConstraints"][0]["labelSelector"]["matchLabels"] == (
        one(objects, "Deployment")["spec"]["selector"]["matchLabels"])
    monitor = one(objects, "ServiceMonitor")
    assert monitor["spec"]["selector"]["matchLabels"] == one(objects, "Service")["spec"]["selector"]

    (tmp_path / "renders").mkdir()
    # kubernetes-validate knows no ServiceMonitor (a CRD): it is checked above, the rest here.
    core = [o for o in objects if o["kind"] != "ServiceMonitor"]
    (tmp_path / "renders" / label).write_text(yaml.safe_dump_all(core))
    validated = run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBE_VERSION,
                     tmp_path / "renders" / label])
    unknown = [line for line in (validated.stdout + validated.stderr).splitlines()
               if line.strip() and AMBASSADOR not in line]
    assert validated.returncode == 0 and unknown == [], validated.stdout + validated.stderr
    report = json.loads(run_checkov(tmp_path / "renders", config=default_chart.dir / ".checkov.yaml",
                                    output="json").stdout)
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert report["summary"]["passed"] > 0 and failed == []


def readme_values_example(project, heading):
    """The YAML block under a heading of the generated README."""
    readme = (project / "README.md").read_text()
    section = readme.split(f"\n### {heading}\n", 1)[1].split("\n### ", 1)[0]
    return re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)


def test_readme_database_url_example_renders_as_documented(default_chart, tmp_path):
    example = readme_values_example(default_chart.project, "Variables from Secrets")
    production = default_chart.labels[-1]
    assert f"values-{default_chart.hostspaces[-1]}.yaml" in example  # the file it belongs in
    merged = tmp_path / production
    merged.write_text((default_chart.dir / production).read_text() + "\n" + example)
    result = run([default_chart.helms["4"], "template", default_chart.app, default_chart.dir,
                  "-f", default_chart.dir / "values.yaml", "-f", merged,
                  "--namespace", default_chart.namespace(production), "--kube-version", KUBE_VERSION],
                 env=default_chart.env)
    assert result.returncode == 0, result.stderr
    env = container(split_documents(result.stdout))["env"]
    (database_url,) = [e for e in env if e["name"] == "DATABASE_URL"]
    assert database_url["valueFrom"]["secretKeyRef"]["key"]
    assert {"name": "LOG_LEVEL", "value": "INFO"} in env  # the other variables stay


def test_no_tlscontext_anywhere(chart):
    for (label, version), result in chart.renders.items():
        assert "TLSContext" not in {o["kind"] for o in split_documents(result.stdout)}
    for path in (chart.dir / "templates").iterdir():
        assert not re.search(r"^kind:\s*TLSContext", path.read_text(), re.MULTILINE), path.name


def test_namespace_and_labels_on_every_object(chart):
    for label in chart.labels:
        for obj in chart.objects(label):
            assert obj["metadata"]["namespace"] == chart.namespace(label)
            labels = obj["metadata"]["labels"]
            assert labels["app.kubernetes.io/instance"] == chart.app
            assert labels["app.kubernetes.io/managed-by"] == "Helm"


def test_chart_metadata(chart):
    meta = yaml.safe_load((chart.dir / "Chart.yaml").read_text())
    assert meta["apiVersion"] == "v2" and meta["name"] == chart.app
    assert meta["description"] == chart.answers["description"]
    assert meta["appVersion"]


# --- values files ------------------------------------------------------------------------


def undocumented_keys(text):
    """Top-level keys with no comment right above them or above each of their children."""
    lines = text.splitlines()
    missing = []
    for index, line in enumerate(lines):
        match = re.match(r"^([A-Za-z][\w-]*):", line)
        if not match:
            continue
        if index and lines[index - 1].startswith("#"):
            continue
        children = []
        for number in range(index + 1, len(lines)):
            child = re.match(r"^  ([A-Za-z][\w-]*):", lines[number])
            if lines[number] and not lines[number].startswith(" "):
                break
            if child:
                children.append(lines[number - 1].strip().startswith("#"))
        if not children or not all(children):
            missing.append(match.group(1))
    return missing


def test_every_value_is_documented(chart):
    for label in chart.labels:
        assert undocumented_keys((chart.dir / label).read_text()) == [], label


def test_values_files_follow_the_answers(chart):
    values, answers = chart.values, chart.answers
    assert values["autoscaling"]["enabled"] is answers["hpa"]
    assert values["persistence"]["enabled"] is answers["pvc"]
    assert values["persistence"]["mountPath"] == answers["pvc_mount_path"]
    assert values["podAntiAffinity"]["type"] == answers["pod_anti_affinity"]
    assert values["dr"]["enabled"] is answers["dr"]
    assert values["env"]["GUNICORN_WORKERS"] == answers["gunicorn_workers"]
    assert sorted(p.name for p in chart.dir.glob("values*.yaml")) == sorted(chart.labels)
    assert not (chart.dir / "values-hostspaces.yaml").exists()
    for label in chart.labels[1:]:
        first = (chart.dir / label).read_text().splitlines()[0]
        assert first.startswith(f"# {label}: ") and chart.stage(label) in first


def test_chart_yaml_files_pass_yamllint(chart):
    config = chart.project / ".yamllint.yaml"
    args = ["-c", config] if config.exists() else ["-d", "{extends: default, rules: {document-start: disable}}"]
    result = run([tool("yamllint"), "--strict", *args, "chart"], cwd=chart.project)
    assert result.returncode == 0, result.stdout + result.stderr


# --- helm-unittest suites ----------------------------------------------------------------

# The suites are written for the helm-unittest plugin (`helm unittest chart/`), which no
# package registry ships. They are checked against the plugin's JSON schema, and run: by the
# real plugin where it is installed (the template's CI installs it, pinned: .github/workflows/
# ci.yml, azure-pipelines.yml), else by this module's own runner (run_suite below), with the
# assertions they use on real `helm template`. The test says in its measurement which ran.

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


def test_every_suite_validates_against_the_helm_unittest_schema(chart):
    result = run([tool("check-jsonschema"), "--schemafile", SCHEMAS / "helm-testsuite.json",
                  *suites(chart)])
    assert result.returncode == 0, result.stdout + result.stderr


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


def helm_unittest_plugin(environ=os.environ, home=Path.home()):
    """(plugins directory, version) of an installed helm-unittest plugin, or None.

    `helm plugin install` puts it into $HELM_PLUGINS, by default ${XDG_DATA_HOME:-~/.local/
    share}/helm/plugins; the suite's helm runs with its own data home, so it is pointed there.
    """
    data_home = Path(environ.get("XDG_DATA_HOME") or Path(home) / ".local" / "share")
    for root in filter(None, [environ.get("HELM_PLUGINS"), data_home / "helm" / "plugins"]):
        for manifest in sorted(Path(root).glob("*/plugin.yaml")):
            plugin = yaml.safe_load(manifest.read_text()) or {}
            if plugin.get("name") == "unittest":
                return Path(root), str(plugin.get("version", "?"))
    return None


def test_helm_unittest_suites_pass(chart, tmp_path, record_property):
    """The real plugin where it is installed, else the own runner on helm 4; the measurement
    says which ran, so a CI log shows whether the real plugin checked the suites."""
    plugin = helm_unittest_plugin()
    if plugin:
        plugins, version = plugin
        # helm-unittest is a helm 3 plugin: helm 3.17 runs it.
        result = run([chart.helms["3.17"], "unittest", chart.dir],
                     env={**chart.env, "HELM_PLUGINS": str(plugins)})
        record_property("measurement", f"helm-unittest: the plugin {version} (helm 3.17) ran the suites of "
                                       f"combination {MATRIX.index(chart.answers_given) + 1} of {len(MATRIX)}")
        assert result.returncode == 0, result.stdout + result.stderr
        assert re.search(rf"Test Suites:\s+{len(suites(chart))} passed", result.stdout), result.stdout
        return
    failures = []
    for path in suites(chart):
        failures += run_suite(path, chart, chart.helms["4"], tmp_path)
    record_property("measurement", "helm-unittest: the plugin is not installed; the suite's own runner (helm 4) "
                                   f"ran the suites of combination {MATRIX.index(chart.answers_given) + 1} of {len(MATRIX)}")
    assert failures == []


def test_helm_unittest_suites_pass_on_helm_3(default_chart, tmp_path):
    # Every combination renders the same on both helms (test_helm_3_and_4_render_the_same_
    # manifests), so helm 3 runs the suites on one combination only.
    failures = []
    for path in suites(default_chart):
        failures += run_suite(path, default_chart, default_chart.helms["3.17"], tmp_path)
    assert failures == []


def set_path(values, dotted, value):
    *parents, last = dotted.split(".")
    for key in parents:
        values = values.setdefault(key, {})
    if isinstance(value, dict) and isinstance(values.get(last), dict):
        merge(values[last], value)
    else:
        values[last] = copy.deepcopy(value)


def merge(base, extra):
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def run_suite(path, chart, helm, tmp):
    """Run one helm-unittest suite; return a list of failure messages."""
    suite = yaml.safe_load(path.read_text())
    failures = []
    for number, test in enumerate(suite["tests"]):
        values = {}
        for source in (suite, test):
            for file in source.get("values", []):
                merge(values, yaml.safe_load((path.parent / file).read_text()) or {})
            for key, value in source.get("set", {}).items():
                set_path(values, key, value)
        values_file = tmp / f"{path.stem}-{number}.yaml"
        values_file.write_text(yaml.safe_dump(values))
        release = {"name": "RELEASE-NAME", "namespace": "NAMESPACE",
                   **suite.get("release", {}), **test.get("release", {})}
        result = run([helm, "template", release["name"], chart.dir, "--namespace",
                      release["namespace"], "-f", values_file, "--kube-version", KUBE_VERSION],
                     env=chart.env)
        rendered = None if result.returncode else render_by_template(result.stdout)
        default_templates = [test["template"]] if "template" in test else suite.get("templates", [])
        wanted = {a.get("template") for a in test["asserts"]} | set(default_templates)
        if rendered is not None and "templates/NOTES.txt" in wanted:
            rendered["templates/NOTES.txt"] = notes(chart, release, values_file)
        for assertion in test["asserts"]:
            templates = [assertion["template"]] if "template" in assertion else default_templates
            error = check(assertion, templates, rendered, result.stderr)
            if error:
                failures.append(f"{path.name} / {test.get('it')}: {error}")
    return failures


def render_by_template(manifest):
    """{"templates/x.yaml": [documents]} from the output of `helm template`."""
    rendered = {}
    for chunk in re.split(r"^---\s*$", manifest, flags=re.MULTILINE):
        source = re.search(r"^# Source: [^/]+/(.+)$", chunk, re.MULTILINE)
        if source:
            rendered.setdefault(source.group(1), []).extend(split_documents(chunk))
    return rendered


def notes(chart, release, values_file):
    """NOTES.txt as `helm install` prints it. helm template leaves NOTES.txt out, and only
    helm 4 renders a client-side dry run without a cluster, so NOTES come from helm 4."""
    result = run([chart.helms["4"], "install", release["name"], chart.dir, "--dry-run=client",
                  "--output", "json", "--namespace", release["namespace"], "-f", values_file],
                 env=chart.env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["info"].get("notes", "")


PATH_TOKEN = re.compile(r"""\.?([^.\[\]"']+)|\[(\d+)\]|\[["']([^"']+)["']\]""")


def lookup(document, path):
    """(found, value) at a helm-unittest path such as a.b[0].c or a["x/y"]."""
    value, position = document, 0
    while position < len(path):
        token = PATH_TOKEN.match(path, position)
        if not token:
            raise ValueError(f"cannot parse path {path!r}")
        position = token.end()
        key, index, quoted = token.groups()
        if index is not None:
            if not isinstance(value, list) or int(index) >= len(value):
                return False, None
            value = value[int(index)]
        else:
            key = key if key is not None else quoted
            if not isinstance(value, dict) or key not in value:
                return False, None
            value = value[key]
    return True, value


def check(assertion, templates, rendered, stderr):
    """Evaluate one assertion; return an error message or None."""
    negate = assertion.get("not", False)
    (name, spec), = [(k, v) for k, v in assertion.items()
                     if k not in ("not", "template", "documentIndex", "documentSelector")]
    if name == "failedTemplate":
        pattern = spec.get("errorPattern") or re.escape(spec.get("errorMessage", ""))
        failed = rendered is None and re.search(pattern, stderr) is not None
        return None if failed != negate else f"failedTemplate {spec}: {stderr.strip() or 'rendered'}"
    if rendered is None:
        return f"{name}: rendering failed: {stderr.strip()}"
    if name == "matchRegexRaw":
        raw = "".join(rendered.get(t, "") for t in templates if isinstance(rendered.get(t), str))
        matched = re.search(spec["pattern"], raw) is not None
        return None if matched != negate else f"matchRegexRaw {spec['pattern']!r} on {raw!r}"
    documents = [d for t in templates for d in rendered.get(t, [])]
    if name == "hasDocuments":
        ok = len(documents) == spec["count"]
        return None if ok != negate else f"hasDocuments {spec['count']}: got {len(documents)}"
    if "documentIndex" in assertion:
        documents = documents[assertion["documentIndex"]:assertion["documentIndex"] + 1]
    if "documentSelector" in assertion:
        selector = assertion["documentSelector"]
        documents = [d for d in documents if lookup(d, selector["path"]) == (True, selector["value"])]
    if not documents:
        return f"{name}: no document in {templates}"
    for document in documents:
        ok = ASSERTIONS[name](document, spec)
        if ok == negate:
            found, actual = lookup(document, spec["path"]) if "path" in spec else (True, document.get("kind"))
            return f"{'not ' if negate else ''}{name} {spec}: actual {actual if found else '(missing)'}"
    return None


def _value(document, spec):
    return lookup(document, spec["path"])[1]


ASSERTIONS = {
    "isKind": lambda d, s: d.get("kind") == s["of"],
    "isAPIVersion": lambda d, s: d.get("apiVersion") == s["of"],
    "equal": lambda d, s: lookup(d, s["path"]) == (True, s["value"]),
    "notEqual": lambda d, s: lookup(d, s["path"]) != (True, s["value"]),
    "exists": lambda d, s: lookup(d, s["path"])[0],
    "notExists": lambda d, s: not lookup(d, s["path"])[0],
    "contains": lambda d, s: s["content"] in (_value(d, s) or []),
    "notContains": lambda d, s: s["content"] not in (_value(d, s) or []),
    "isSubset": lambda d, s: s["content"].items() <= (_value(d, s) or {}).items(),
    "lengthEqual": lambda d, s: len(_value(d, s) or []) == s["count"],
    "matchRegex": lambda d, s: re.search(s["pattern"], str(_value(d, s) or "")) is not None,
    "isNullOrEmpty": lambda d, s: not _value(d, s),
    "isNotNullOrEmpty": lambda d, s: bool(_value(d, s)),
}


def test_the_suite_runner_catches_a_wrong_expectation(default_chart, tmp_path):
    suite = tmp_path / "wrong_test.yaml"
    suite.write_text(yaml.safe_dump({
        "suite": "deliberately wrong",
        "templates": ["templates/service.yaml"],
        "release": {"name": default_chart.app, "namespace": "ns"},
        "tests": [
            {"it": "expects the wrong port", "set": {"service.port": 80},
             "asserts": [{"equal": {"path": "spec.ports[0].port", "value": 81}}]},
            {"it": "expects a failure that does not happen",
             "asserts": [{"failedTemplate": {"errorPattern": "replicaCount"}}]},
            {"it": "expects a document that is not there", "set": {"autoscaling.enabled": False},
             "asserts": [{"hasDocuments": {"count": 1}, "template": "templates/hpa.yaml"}]},
        ],
    }))
    failures = run_suite(suite, default_chart, default_chart.helms["4"], tmp_path)
    assert len(failures) == 3, failures


def test_readme_documents_the_kubernetes_deployment(chart):
    readme = (chart.project / "README.md").read_text()
    section = readme.split("## Kubernetes deployment\n", 1)[1].split("\n## ", 1)[0]
    for heading in ("Deployment objects", "Per-hostspace values", "Variables from Secrets", "Metrics",
                    "Horizontal Pod Autoscaler",
                    "Persistent volume", "Pod anti-affinity", "DR ConfigMap and Host setup",
                    "Migrating from TLSContext to Host"):
        assert f"\n### {heading}\n" in section
    for label in chart.labels[1:]:
        assert f"`{label}`" in section
    for key in ("DR_ROLE", "DR_REGION", "DR_PEER_REGION", "DR_SITE_HOSTNAME", "DR_GLOBAL_HOSTNAME"):
        assert f"`{key}`" in section
    if chart.answers["hpa"]:
        assert f"between {chart.answers['hpa_min_replicas']} and {chart.answers['hpa_max_replicas']} pods" in section
    assert f"`podAntiAffinity.type` is `{chart.answers['pod_anti_affinity']}`" in section
