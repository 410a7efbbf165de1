"""The chart holds for every values file its schema accepts, not only for the ones we thought of.

Values files are drawn from the chart's own values.schema.json (hypothesis-jsonschema, a fixed
number of examples, derandomized: every run draws the same files), laid over the production
hostspace's values as the pipeline deploys them, and rendered by helm 3.17 and 4. The schema
requires nothing that the platform's defaults (defaults.yaml) set, so a drawn file may set any
part of any value: the chart lays it over them. Every render must be the same on both helms and
keep the invariants below, or be refused by the chart's own checks (chart_refusal); then a real
API server (tools/kube.py) judges every render under Pod Security "restricted", and one checkov
scan (its start-up dominates a scan) reads them. The Kubernetes objects the chart passes through
verbatim are drawn from valid examples (PASSTHROUGH): their validity is the server's.
"""

import copy
import json
import os
import re
import time

import pytest
from chart_matrix import container, of_kind, one, split_documents
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_jsonschema import _from_schema, from_schema

from tools.validators import run_checkov

# About half the draws set every optional field (everything_set), so each field is drawn a dozen
# times and more; each example costs two helm renders (it was 50: the same fields, twice the time).
# CHART_VALUES_EXAMPLES=100 draws more (here about 1 s each, the API server's judgement included).
EXAMPLES = int(os.environ.get("CHART_VALUES_EXAMPLES", "25"))

# What the Deployment's pod spec and container may hold: the chart's fields, and the optional
# ones present exactly when their value is not empty. Nothing else (no host namespaces, no
# init or ephemeral containers, no node name, no host aliases).
POD_FIELDS = {
    "serviceAccountName",
    "automountServiceAccountToken",
    "securityContext",
    "terminationGracePeriodSeconds",
    "containers",
    "volumes",
}
OPTIONAL_POD_FIELDS = ("imagePullSecrets", "nodeSelector", "tolerations", "topologySpreadConstraints")
CONTAINER_FIELDS = {
    "name",
    "image",
    "imagePullPolicy",
    "securityContext",
    "ports",
    "env",
    "livenessProbe",
    "readinessProbe",
    "lifecycle",
    "resources",
    "volumeMounts",
}
MAPPING_FIELDS = {"hostname", "prefix", "rewrite", "service", "timeout_ms"}
# Where no volume may appear: the code and its packages, and the service-account token's directory.
FORBIDDEN_TREES = ("/app", "/opt/venv", "/var/run/secrets", "/run/secrets")


# Characters a values file cannot carry to both helms: helm 3.17 writes the values back to YAML
# to check the schema, raw, and its own parser then refuses a control character; YAML 1.1 reads
# NEL, LS and PS as line breaks. Drawn strings get "?" instead (keys and values alike).
UNPRINTABLE = re.compile("[^\t\n\r\x20-\x7e\xa0-\u2027\u202a-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]")


def printable(value):
    if isinstance(value, str):
        return UNPRINTABLE.sub("?", value)
    if isinstance(value, dict):
        return {printable(key): printable(inner) for key, inner in value.items()}
    if isinstance(value, list):
        return [printable(inner) for inner in value]
    return value


def everything_set(schema):
    """The schema with every property of every object required (where that leaves it
    satisfiable: not where an object takes one of its properties at a time), so that drawn
    files set every value, nested ones too, and not only the few a free draw picks."""
    schema = copy.deepcopy(schema)

    def require(node):
        if isinstance(node, dict):
            if node.get("properties") and "maxProperties" not in node and "oneOf" not in node:
                node["required"] = sorted(node["properties"])
            for inner in node.values():
                require(inner)
        elif isinstance(node, list):
            for inner in node:
                require(inner)

    require(schema)
    return schema


# The Kubernetes types the chart passes through verbatim (the schema leaves them open: an object
# with no properties, or a string it cannot type, such as ipBlock's CIDRs): their validity is the
# API server's, which a team checks against its cluster with `make dry-run HOSTSPACE=<name>`, not
# the chart's. Drawn anything, they would test the server, not the chart; drawn from a few valid
# examples each (empty where Kubernetes takes empty), they test that the chart carries them
# through. Rows are by where they are in the schema (free_form_paths), every open object has one
# and every row is used: a new open object fails the test until its examples are written here.
SELECTOR_EXAMPLES = [
    {},
    {"matchLabels": {"app.kubernetes.io/name": "ambassador"}},
    {"matchExpressions": [{"key": "team", "operator": "In", "values": ["platform", "payments"]}]},
    {"matchExpressions": [{"key": "tier", "operator": "Exists"}]},
]
PASSTHROUGH = {
    "affinity": [
        {},
        {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [
                        {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In", "values": ["amd64"]}]}
                    ]
                }
            }
        },
        {
            "podAntiAffinity": {
                "preferredDuringSchedulingIgnoredDuringExecution": [
                    {
                        "weight": 50,
                        "podAffinityTerm": {
                            "topologyKey": "topology.kubernetes.io/zone",
                            "labelSelector": {"matchLabels": {"app.kubernetes.io/name": "app"}},
                        },
                    }
                ]
            }
        },
    ],
    "extraVolumes[].secret": [
        {"secretName": "app-secret"},
        {"secretName": "tls", "items": [{"key": "tls.crt", "path": "tls.crt"}], "defaultMode": 0o440, "optional": True},
    ],
    "extraVolumes[].configMap": [
        {"name": "settings"},
        {"name": "settings", "items": [{"key": "app.yaml", "path": "app.yaml", "mode": 0o444}], "optional": True},
    ],
    "extraVolumes[].emptyDir": [{}, {"sizeLimit": "1Gi"}, {"medium": "Memory", "sizeLimit": "64Mi"}],
    "extraVolumes[].persistentVolumeClaim": [{"claimName": "shared"}, {"claimName": "shared", "readOnly": True}],
    "extraVolumes[].downwardAPI": [
        {},
        {"items": [{"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}], "defaultMode": 0o444},
    ],
    "extraVolumes[].csi": [
        {"driver": "secrets-store.csi.k8s.io", "readOnly": True, "volumeAttributes": {"secretProviderClass": "app"}},
        {"driver": "example.csi.k8s.io"},
    ],
    "extraVolumes[].ephemeral": [
        {
            "volumeClaimTemplate": {
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
            }
        },
        {
            "volumeClaimTemplate": {
                "metadata": {"labels": {"purpose": "scratch"}},
                "spec": {
                    "accessModes": ["ReadWriteOncePod"],
                    "storageClassName": "fast",
                    "resources": {"requests": {"storage": "10Gi"}},
                },
            }
        },
    ],
    "extraVolumes[].projected.sources[]": [
        {"secret": {"name": "app-secret"}},
        {"configMap": {"name": "settings", "items": [{"key": "app.yaml", "path": "app.yaml"}], "optional": True}},
        {"downwardAPI": {"items": [{"path": "name", "fieldRef": {"fieldPath": "metadata.name"}}]}},
    ],
    "networkPolicy.from[].namespaceSelector": SELECTOR_EXAMPLES,
    "networkPolicy.from[].podSelector": SELECTOR_EXAMPLES,
    # An object the schema types, but only as strings: CIDRs are the server's to read.
    "networkPolicy.from[].ipBlock": [
        {"cidr": "10.0.0.0/8"},
        {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16", "10.2.3.0/24"]},
        {"cidr": "2001:db8::/32"},
    ],
    "envValue.valueFrom.fieldRef": [
        {"fieldPath": "metadata.name"},
        {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
        {"fieldPath": "status.podIP"},
        {"fieldPath": "metadata.labels['app.kubernetes.io/name']"},
    ],
    "envValue.valueFrom.resourceFieldRef": [
        {"resource": "limits.memory"},
        {"resource": "requests.cpu", "divisor": "1m"},
    ],
}
# Paths whose schema is typed but whose values are Kubernetes' (the table above, not the walk, knows them).
TYPED_AS_STRINGS = {"networkPolicy.from[].ipBlock"}


def walk(node, path=""):
    """(path, schema) of every schema in the schema, by where its values sit in a values file:
    property names joined by '.', '[]' for an array's items, a definition's name for its root."""
    if not isinstance(node, dict):
        return
    yield path, node
    for name, inner in (node.get("properties") or {}).items():
        yield from walk(inner, f"{path}.{name}" if path else name)
    for name, inner in (node.get("definitions") or {}).items():
        yield from walk(inner, name)
    if isinstance(node.get("items"), dict):
        yield from walk(node["items"], path + "[]")
    for key in ("oneOf", "anyOf", "allOf"):
        for inner in node.get(key) or []:
            yield from walk(inner, path)


def is_object(node):
    return "object" in (node.get("type") if isinstance(node.get("type"), list) else [node.get("type")])


def free_form(node):
    """An object schema that says nothing of its keys: a Kubernetes type passed through."""
    typed_keys = ("properties", "additionalProperties", "patternProperties", "propertyNames")
    return is_object(node) and not any(key in node for key in typed_keys)


def free_form_paths(schema):
    return {path for path, node in walk(schema) if free_form(node)} | TYPED_AS_STRINGS


def with_passthrough_examples(schema):
    """The schema, each free-form Kubernetes object drawn from its examples in PASSTHROUGH, and
    each object that types some of its keys and leaves the rest open (a Kubernetes type the chart
    passes through whole, e.g. topologySpreadConstraints) drawn with the typed keys only."""
    schema = copy.deepcopy(schema)
    for path, node in list(walk(schema)):
        if path in PASSTHROUGH:
            node.clear()
            node["enum"] = PASSTHROUGH[path]
        elif is_object(node) and "properties" in node and "additionalProperties" not in node:
            node["additionalProperties"] = False
        elif path + "[]" in PASSTHROUGH:
            # Each example once in a list: two projected sources of one path, the server refuses.
            node["uniqueItems"] = True
    return schema


def expected_pod_fields(values):
    fields = set(POD_FIELDS) | {name for name in OPTIONAL_POD_FIELDS if values.get(name)}
    if values.get("affinity") or values["podAntiAffinity"]["type"] != "none":
        fields.add("affinity")
    return fields


def with_its_service_account(objects):
    """The render, and the ServiceAccount its pods run as where the chart makes none
    (serviceAccount.create false: the team's own, which the server looks up and a cluster has)."""
    name = one(objects, "Deployment")["spec"]["template"]["spec"]["serviceAccountName"]
    if name == "default" or any(o["metadata"]["name"] == name for o in of_kind(objects, "ServiceAccount")):
        return objects
    return [*objects, {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name}}]


def under(path, tree):
    return path == tree or path.startswith(tree + "/")


def broken_invariants(objects, values):
    """Every invariant the render breaks, as sentences (none: an empty list)."""
    broken = []
    deployments = of_kind(objects, "Deployment")
    if len(deployments) != 1:
        return [f"{len(deployments)} Deployments"]
    pod = deployments[0]["spec"]["template"]["spec"]
    if set(pod) != expected_pod_fields(values):
        broken.append(f"pod spec fields {sorted(set(pod) ^ expected_pod_fields(values))} differ")
    if len(pod["containers"]) != 1:
        return broken + [f"{len(pod['containers'])} containers"]
    main = container(objects)
    expected = CONTAINER_FIELDS | ({"envFrom"} if values["dr"]["enabled"] or values.get("envFrom") else set())
    if set(main) != expected:
        broken.append(f"container fields {sorted(set(main) ^ expected)} differ")
    context, pod_context = main["securityContext"], pod["securityContext"]
    checks = {
        "runs as root": not (pod_context["runAsNonRoot"] is context["runAsNonRoot"] is True),
        "a root user or group": 0
        in [
            *(c.get(k) for c in (context, pod_context) for k in ("runAsUser", "runAsGroup", "fsGroup")),
            *pod_context.get("supplementalGroups", []),
        ],
        "privileged or escalates": context.get("privileged", False) or context["allowPrivilegeEscalation"],
        "a writable root filesystem": context["readOnlyRootFilesystem"] is not True,
        "capabilities kept": context["capabilities"] != {"drop": ["ALL"]},
        "seccomp not RuntimeDefault": {context["seccompProfile"]["type"], pod_context["seccompProfile"]["type"]}
        != {"RuntimeDefault"},
        "a service-account token": pod["automountServiceAccountToken"] is not False
        or any("serviceAccountToken" in s for v in pod["volumes"] for s in v.get("projected", {}).get("sources", [])),
        "a host path": any("hostPath" in v for v in pod["volumes"]),
        "a host port": any("hostPort" in p for p in main["ports"]),
        "a volume over the code or the token": any(
            under(m["mountPath"], tree) for m in main["volumeMounts"] for tree in FORBIDDEN_TREES
        ),
        "a drain shorter than its parts": pod["terminationGracePeriodSeconds"]
        <= values["preStopSleepSeconds"] + values["gracefulTimeoutSeconds"],
        "a Service other than ClusterIP": one(objects, "Service")["spec"]["type"] != "ClusterIP",
        "a Mapping with other fields or the whole host": any(
            set(m["spec"]) != MAPPING_FIELDS or m["spec"]["prefix"] == "/" for m in of_kind(objects, "Mapping")
        ),
        "TLS below 1.2": any(
            h["spec"]["tls"]["min_tls_version"] not in ("v1.2", "v1.3") for h in of_kind(objects, "Host")
        ),
    }
    return broken + [sentence for sentence, failed in checks.items() if failed]


QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(.*)$")
FACTORS = {"": 1, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
FACTORS.update({f"{prefix}i": 1024 ** (n + 1) for n, prefix in enumerate("KMGTPE")})


def quantity(value):
    number, suffix = QUANTITY.match(str(value)).groups()
    return float(number) * FACTORS[suffix] if suffix in FACTORS else float(str(value))


def chart_refusal(values):
    """What the chart's app.refusals says of these (deployed) values, or None: the values
    Kubernetes would refuse although each is within its schema."""
    if values["terminationGracePeriodSeconds"] <= values["preStopSleepSeconds"] + values["gracefulTimeoutSeconds"]:
        return "must exceed preStopSleepSeconds"
    scaling = values["autoscaling"]
    if scaling["enabled"] and int(scaling["minReplicas"]) > int(scaling["maxReplicas"]):
        return "autoscaling.minReplicas"
    requests = values["resources"].get("requests") or {}
    for resource, limit in sorted((values["resources"].get("limits") or {}).items()):  # as Go ranges a map
        if resource in requests and quantity(requests[resource]) > quantity(limit):
            return f"resources.requests.{resource}"
    volumes = ["tmp", *(["data"] if values["persistence"]["enabled"] else [])]
    for volume in values.get("extraVolumes") or []:
        if volume["name"] in volumes:
            return "extraVolumes:"
        volumes.append(volume["name"])
    if any(mount["name"] not in volumes for mount in values.get("extraVolumeMounts") or []):
        return "extraVolumeMounts:"
    paths = ["/tmp", *([values["persistence"]["mountPath"]] if values["persistence"]["enabled"] else [])]
    for mount in values.get("extraVolumeMounts") or []:
        if mount["mountPath"] in paths:
            return "is the mount path of another mount"
        paths.append(mount["mountPath"])
    spreads = [(c["topologyKey"], c["whenUnsatisfiable"]) for c in values.get("topologySpreadConstraints") or []]
    if len(set(spreads)) < len(spreads):
        return "topologySpreadConstraints: two constraints"
    return None


@pytest.fixture
def strategies_built_once(monkeypatch):
    """hypothesis-jsonschema builds the strategy of an object's property anew each time it draws
    one (inside its object strategy), so every values file drawn builds some hundred strategies
    again: three quarters of the drawing's time. A strategy is a function of its schema: built
    once per schema here, the same files are drawn three times faster. (The library's own private
    builder, hypothesis-jsonschema 0.23.1, pinned: monkeypatch fails loudly if it is renamed.)"""
    build, built = getattr(_from_schema, "__from_schema"), {}

    def once(schema, *, alphabet, custom_formats):
        if custom_formats is not None:  # strategies of the caller's: not ours to reuse
            return build(schema, alphabet=alphabet, custom_formats=custom_formats)
        key = (json.dumps(schema, sort_keys=True), alphabet)
        if key not in built:
            built[key] = build(schema, alphabet=alphabet, custom_formats=custom_formats)
        return built[key]

    monkeypatch.setattr(_from_schema, "__from_schema", once)


@pytest.mark.xdist_group("api-server")
def test_values_drawn_from_the_schema_render_safe_pods_that_checkov_and_the_api_server_pass(
    default_chart, api_server, tmp_path, record_property, strategies_built_once
):
    chart, label = default_chart, default_chart.labels[-1]
    schema = json.loads((chart.dir / "values.schema.json").read_text())
    renders, refused = [], []
    drawing = [with_passthrough_examples(s) for s in (schema, everything_set(schema))]

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )
    @given(st.one_of(*map(from_schema, drawing)).map(printable))
    def renders_safely(drawn):
        # JSON is YAML whose strings are all quoted: YAML 1.1 would read a bare y or no as a boolean.
        file = tmp_path / "drawn.yaml"
        file.write_text(json.dumps(drawn, ensure_ascii=False))
        three, four = (chart.template(label, extra_values=[file], helm=chart.helms[v]) for v in ("3.17", "4"))
        assert (three.returncode, three.stdout) == (four.returncode, four.stdout), three.stderr + four.stderr
        values = chart.deployed(label, drawn)  # what the templates read, as helm and app.init make it
        says = chart_refusal(values)
        if says:
            # Each value within its bounds, together not: the chart's own check refuses them.
            assert four.returncode != 0 and says in four.stderr, four.stderr
            refused.append(file.read_text())
            return
        assert four.returncode == 0, four.stderr
        assert broken_invariants(split_documents(four.stdout), values) == []
        renders.append((file.read_text(), four.stdout))

    start = time.monotonic()
    renders_safely()
    drawn = time.monotonic() - start
    assert len(renders) >= EXAMPLES // 2, f"only {len(renders)} of {EXAMPLES} drawn values files rendered"

    # Whatever the chart renders, the API server accepts, under Pod Security "restricted".
    # Every render at once, each in a namespace of its own; on a refusal, the render that caused it.
    namespaces = {
        f"{chart.namespace(label)}-{n}": with_its_service_account(split_documents(manifest))
        for n, (_, manifest) in enumerate(renders)
    }
    judged = api_server.dry_run(namespaces)
    if judged.returncode:
        for (values, _), (namespace, objects) in zip(renders, namespaces.items()):
            alone = api_server.dry_run({namespace: objects})
            assert alone.returncode == 0, f"the server refused the render of {values}:\n{alone.stdout}{alone.stderr}"
        pytest.fail(f"the server refused the renders together, each alone accepted:\n{judged.stdout}{judged.stderr}")
    objects = [o for objects in namespaces.values() for o in objects]
    pods = sum(o["kind"] == "Deployment" for o in objects)
    assert judged.stdout.count("(server dry run)") == len(objects) + pods, judged.stdout
    judging = time.monotonic() - start - drawn

    folder = tmp_path / "renders"
    folder.mkdir()
    for index, (_, manifest) in enumerate(renders):
        (folder / f"{index}.yaml").write_text(manifest)
    report = json.loads(run_checkov(folder, config=chart.dir / ".checkov.yaml", output="json").stdout)
    failed = [
        f"{c['check_id']} {c['check_name']}: {c['resource']} in {c['file_path']}"
        for c in report["results"]["failed_checks"]
    ]
    assert report["summary"]["passed"] > 0
    assert failed == []
    record_property(
        "measurement",
        f"chart values drawn from its schema: {len(renders)} rendered safe and {len(refused)} refused "
        f"by the chart of {EXAMPLES}, on helm 3.17 and 4 in {drawn:.0f} s; the API server accepted the "
        f"{len(renders)} renders in {judging:.0f} s; checkov read them in "
        f"{time.monotonic() - start - drawn - judging:.0f} s",
    )


def test_every_free_form_kubernetes_object_of_the_schema_has_valid_examples(default_chart):
    """PASSTHROUGH covers every object the schema leaves open, and nothing else."""
    schema = json.loads((default_chart.dir / "values.schema.json").read_text())
    assert free_form_paths(schema) == set(PASSTHROUGH)
