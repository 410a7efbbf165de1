"""The chart's objects: what each answer and each values file renders (helm 4; helm 3.17
renders the same, test_chart_render.py), read as Kubernetes objects.

Each combination of answers is baked once and rendered once per values file and helm version
(the `chart` fixture, conftest.py); every test of that combination reads those renders.
"""

import json
import re

import jsonschema
import pytest
import yaml
from answers import combination_id, combinations_where
from chart_matrix import (
    AMBASSADOR,
    KUBE_VERSION,
    TEAM_VALUES,
    container,
    of_kind,
    one,
    run,
    split_documents,
    tool,
)

from tools.project import DEFAULTS, lock_program

# --- the objects themselves --------------------------------------------------------------


def expected_hostnames(chart, label):
    """Hostnames one hostspace serves: platform, DR site (active), custom URL in the last."""
    if label == "values.yaml":
        return set()
    space = label[len("values-") : -len(".yaml")]
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
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "name": deployment["metadata"]["name"],
        }
        # Development starts from one pod; every other hostspace from the answer.
        expected_min = 1 if chart.stage(label) == "development" else int(chart.answers["hpa_min_replicas"])
        assert hpa["spec"]["minReplicas"] == expected_min, label
        assert hpa["spec"]["maxReplicas"] == int(chart.answers["hpa_max_replicas"])
        assert hpa["spec"]["metrics"] == [
            {
                "type": "Resource",
                "resource": {
                    "name": "cpu",
                    "target": {"type": "Utilization", "averageUtilization": int(chart.answers["hpa_cpu_target"])},
                },
            }
        ]


def test_hpa_scales_on_memory_only_when_asked(default_chart):
    result = default_chart.template(default_chart.labels[-1], sets=["autoscaling.targetMemoryUtilizationPercentage=80"])
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
            assert mapping["spec"]["service"] == (f"{service['metadata']['name']}.{chart.namespace(label)}:{port}")
            assert isinstance(mapping["spec"]["timeout_ms"], int)


def test_dr_configmap_keys_reach_the_container(chart):
    for label in chart.labels[1:]:
        objects = chart.objects(label)
        if not chart.answers["dr"]:
            assert of_kind(objects, "ConfigMap") == []
            continue
        configmap = one(objects, "ConfigMap")
        space = label[len("values-") : -len(".yaml")]
        domain, active, passive = (
            chart.answers[k] for k in ("platform_domain", "dr_active_region", "dr_passive_region")
        )
        assert configmap["data"] == {
            "DR_ROLE": "active",
            "DR_REGION": active,
            "DR_PEER_REGION": passive,
            "DR_SITE_HOSTNAME": f"{chart.app}-{space}.{active}.{domain}",
            "DR_GLOBAL_HOSTNAME": f"{chart.app}-{space}.{domain}",
        }
        assert {"configMapRef": {"name": configmap["metadata"]["name"]}} in container(objects)["envFrom"]
        # The application reads DR_ROLE and DR_REGION (source/scale/settings.py).
        config = (chart.project / "source/scale/settings.py").read_text()
        assert '"DR_ROLE"' in config and '"DR_REGION"' in config


# A passive site exists only with DR on; test_disabled_features_render_nothing covers DR off.
WITH_DR = combinations_where(lambda answers: answers["dr"])


@pytest.mark.parametrize("answers", WITH_DR, ids=combination_id)
def test_passive_site_serves_its_own_hostname_at_reduced_replicas(charts, answers):
    chart = charts(answers)
    assert chart.answers["dr"]
    label = chart.labels[-1]
    space = label[len("values-") : -len(".yaml")]
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
    annotations = [
        one(o, "Deployment")["spec"]["template"]["metadata"]["annotations"][checksum] for o in (active, passive)
    ]
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
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert {"name": "tmp", "mountPath": "/tmp"} in main["volumeMounts"]
        assert "emptyDir" in [v for v in pod["volumes"] if v["name"] == "tmp"][0]
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pause = int(main["lifecycle"]["preStop"]["exec"]["command"][-1])
        graceful = int({e["name"]: e.get("value") for e in main["env"]}["GUNICORN_GRACEFUL_TIMEOUT"])
        assert pause >= 2 and graceful >= 10 and pod["terminationGracePeriodSeconds"] > pause + graceful
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
    (peer,) = TEAM_VALUES["networkPolicy"]["from"]  # Ambassador's namespace
    values = tmp_path / "networkpolicy.yaml"
    values.write_text(yaml.safe_dump({"networkPolicy": TEAM_VALUES["networkPolicy"]}))
    result = default_chart.template(label, extra_values=[values])
    assert result.returncode == 0, result.stderr
    objects = split_documents(result.stdout)
    policy = one(objects, "NetworkPolicy")
    assert policy["apiVersion"] == "networking.k8s.io/v1"
    assert policy["spec"]["podSelector"] == one(objects, "Deployment")["spec"]["selector"]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["ingress"] == [{"from": [peer], "ports": [{"port": "http", "protocol": "TCP"}]}]
    assert {
        "name": "http",
        "containerPort": default_chart.defaults["containerPort"],
        "protocol": "TCP",
    }.items() <= container(objects)["ports"][0].items()

    renders = tmp_path / "renders"
    renders.mkdir()
    (renders / label).write_text(result.stdout)
    validated = run([tool("kubernetes-validate"), "--strict", "--quiet", "-k", KUBE_VERSION, renders / label])
    assert validated.returncode == 0, validated.stdout + validated.stderr
    # checkov's check for a NetworkPolicy, which the chart skips, passes: test_chart_render.py.


def test_the_teams_values_yaml_reaches_every_hostspace_and_each_hostspaces_file_wins(default_chart, tmp_path):
    """chart/values.yaml holds the team's values only (the platform's defaults are defaults.yaml):
    what it sets reaches every hostspace's render, key by key over the defaults, and what a
    hostspace's file sets wins over it. On both helms, which render the same."""
    chart = default_chart
    directory = chart.copy_with(tmp_path / "chart", values=TEAM_VALUES)
    for label in chart.labels:
        three, four = (chart.template(label, helm=chart.helms[v], directory=directory) for v in ("3.17", "4"))
        assert three.returncode == four.returncode == 0, three.stderr + four.stderr
        assert three.stdout == four.stdout, label
        defaults = chart.defaults
        objects = split_documents(four.stdout)
        policy = one(objects, "NetworkPolicy")
        assert policy["spec"]["ingress"][0]["from"] == TEAM_VALUES["networkPolicy"]["from"], label
        assert (
            one(objects, "PersistentVolumeClaim")["spec"]["resources"]["requests"]["storage"]
            == (defaults["persistence"]["size"])
        )
        main = container(objects)
        env = {entry["name"]: entry.get("value") for entry in main["env"]}
        # The team's variable is added to the platform's; a development hostspace's LOG_LEVEL wins.
        assert env["FEATURE_FLAGS"] == "search,export", label
        assert env["GUNICORN_WORKERS"] == defaults["env"]["GUNICORN_WORKERS"], label
        assert env["LOG_LEVEL"] == ("DEBUG" if chart.stage(label) == "development" else "WARNING"), label
        assert env["DATA_DIR"] == defaults["persistence"]["mountPath"], label
        assert env["LD_PRELOAD"] == "", label  # what envFrom may not set, the chart sets
        assert {"configMapRef": {"name": "orders-settings"}} in main["envFrom"], label
        annotations = one(objects, "Deployment")["spec"]["template"]["metadata"]["annotations"]
        assert annotations["team"] == "orders" and annotations["prometheus.io/scrape"] == "true", label
        # resources, three layers: the hostspace's file, then values.yaml, then the defaults.
        own = {} if label == "values.yaml" else yaml.safe_load((chart.dir / label).read_text())["resources"]
        assert main["resources"]["requests"]["cpu"] == own.get("requests", {}).get("cpu", "300m"), label
        assert main["resources"]["limits"]["ephemeral-storage"] == "512Mi", label
        assert (
            main["resources"]["requests"]["ephemeral-storage"] == defaults["resources"]["requests"]["ephemeral-storage"]
        )
        assert main["resources"]["limits"]["memory"] == own.get("limits", defaults["resources"]["limits"])["memory"]
        assert main["securityContext"] == defaults["securityContext"], label


# Weakened security contexts a hostspace's values file might try; the schema refuses each.


def manual_values_example(project, heading):
    """The YAML block under a heading of the generated manual's Kubernetes page."""
    page = (project / "docs" / "kubernetes.md").read_text()
    section = page.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```yaml\n(.*?)```", section, re.DOTALL).group(1)


def test_the_manuals_database_url_example_renders_as_documented(default_chart, tmp_path):
    example = manual_values_example(default_chart.project, "Variables from Secrets")
    production = default_chart.labels[-1]
    assert f"values-{default_chart.hostspaces[-1]}.yaml" in example  # the file it belongs in
    merged = tmp_path / production
    merged.write_text((default_chart.dir / production).read_text() + "\n" + example)
    result = run(
        [
            default_chart.helms["4"],
            "template",
            default_chart.app,
            default_chart.dir,
            "-f",
            default_chart.dir / "values.yaml",
            "-f",
            merged,
            "--namespace",
            default_chart.namespace(production),
            "--kube-version",
            KUBE_VERSION,
        ],
        env=default_chart.env,
    )
    assert result.returncode == 0, result.stderr
    env = container(split_documents(result.stdout))["env"]
    (database_url,) = [e for e in env if e["name"] == "DATABASE_URL"]
    assert database_url["valueFrom"]["secretKeyRef"]["key"]
    assert {"name": "LOG_LEVEL", "value": "INFO"} in env  # the other variables stay


def image_environment(project):
    """The variables the Dockerfile's ENV instructions set: {name: value}."""
    text = (project / "Dockerfile").read_text().replace("\\\n", " ")
    pairs = [word for line in text.splitlines() if line.startswith("ENV ") for word in line.split()[1:]]
    return dict(pair.split("=", 1) for pair in pairs)


def refused_in_env(schema, values, name):
    """Whether the values schema refuses `name` in `env` (`values` with that one variable added)."""
    errors = jsonschema.Draft7Validator(schema).iter_errors({**values, "env": {**values["env"], name: "x"}})
    return any(list(error.absolute_path)[:1] == ["env"] for error in errors)


def test_with_envfrom_the_deployment_sets_what_env_refuses_so_no_configmap_can(default_chart, tmp_path):
    """The chart cannot see the keys of envFrom's Secrets and ConfigMaps. With envFrom, the
    deployment sets in `env` (which wins over envFrom for a name) what the schema refuses in
    `env`: each name it adds is one the schema refuses, every alternative of the schema's refusal
    has its names there, and each is empty (unset, to the loader, Python and gunicorn) but for
    the variables the image sets, which keep the image's value. On both helms."""
    schema = json.loads((default_chart.dir / "values.schema.json").read_text())
    pattern = schema["properties"]["env"]["propertyNames"]["not"]["pattern"]
    alternatives = re.fullmatch(r"\^\((.*)\)\$", pattern)[1].split("|")
    assert not refused_in_env(schema, default_chart.defaults, "ORDERS_URL")  # it can tell
    image = {name: value for name, value in image_environment(default_chart.project).items() if re.match(pattern, name)}
    values = tmp_path / "envfrom.yaml"
    values.write_text("envFrom:\n  - configMapRef: {name: orders-settings}\n")
    for version, helm in default_chart.helms.items():
        rendered = default_chart.template("values.yaml", extra_values=[values], helm=helm)
        assert rendered.returncode == 0, rendered.stderr
        without = container(default_chart.objects("values.yaml"))["env"]
        added = [entry for entry in container(split_documents(rendered.stdout))["env"] if entry not in without]
        pinned = {entry["name"]: entry["value"] for entry in added}
        assert len(pinned) == len(added) and pinned, version
        assert [name for name in pinned if not refused_in_env(schema, default_chart.defaults, name)] == [], version
        assert [a for a in alternatives if not any(re.fullmatch(a, name) for name in pinned)] == [], version
        # PATH: the image's venv first, then the system's directories (the base image's own PATH
        # is not the chart's to know): never a directory of a volume.
        assert pinned["PATH"].split(":")[0] == image["PATH"].split(":")[0] == "/opt/venv/bin", version
        assert {name: value for name, value in pinned.items() if value and name != "PATH"} == {
            name: value for name, value in image.items() if name != "PATH"
        }, version
    assert {"LD_PRELOAD", "PYTHONPATH", "GUNICORN_CMD_ARGS", "PROMETHEUS_MULTIPROC_DIR"} <= set(pinned)
    # Among them every variable the image's Python documents, and the dynamic loader's that load
    # code or change how it works and are off when empty (ld.so(8)).
    found = lock_program().find_python(DEFAULTS["python_version"])
    if found is None:
        pytest.skip(f"no Python {DEFAULTS['python_version']} here to ask for its variables (python3 --help-env)")
    documented = set(re.findall(r"\bPYTHON[A-Z0-9_]*", run([found[0], "--help-env"]).stdout))
    loader = {
        "LD_PRELOAD",
        "LD_LIBRARY_PATH",
        "LD_AUDIT",
        "LD_DEBUG",
        "LD_BIND_NOW",
        "LD_BIND_NOT",
        "LD_VERBOSE",
        "LD_WARN",
    }
    assert len(documented) > 20 and sorted((documented | loader) - set(pinned)) == []


def test_no_tlscontext_anywhere(chart):
    for label in chart.labels:
        assert "TLSContext" not in {o["kind"] for o in chart.objects(label)}
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
    for name in ("defaults.yaml", *chart.labels):
        assert undocumented_keys((chart.dir / name).read_text()) == [], name


def test_values_files_follow_the_answers(chart):
    values, answers = chart.defaults, chart.answers
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


def test_the_manual_documents_the_kubernetes_deployment(chart):
    page = (chart.project / "docs" / "kubernetes.md").read_text()
    for heading in (
        "Deployment objects",
        "Per-hostspace values",
        "Variables from Secrets",
        "Metrics",
        "Horizontal Pod Autoscaler",
        "Persistent volume",
        "Pod anti-affinity",
        "DR ConfigMap and Host setup",
        "Network policy",
        "Migrating from TLSContext to Host",
        "Testing the chart",
    ):
        assert f"\n## {heading}\n" in page
    for label in chart.labels[1:]:
        assert f"`{label}`" in page
    for key in ("DR_ROLE", "DR_REGION", "DR_PEER_REGION", "DR_SITE_HOSTNAME", "DR_GLOBAL_HOSTNAME"):
        assert f"`{key}`" in page
    if chart.answers["hpa"]:
        assert f"between {chart.answers['hpa_min_replicas']} and {chart.answers['hpa_max_replicas']} pods" in page
    assert f"`podAntiAffinity.type` is `{chart.answers['pod_anti_affinity']}`" in page
