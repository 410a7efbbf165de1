"""A real Kubernetes API server (tools/kube.py) judges what the chart renders: every object of
every combination and hostspace, and each workload's pod template as a Pod (no controller runs
to make Pods), server-side, under Pod Security "restricted" (enforced, and warned of: kubectl's
warnings are refusals). What the server would refuse and every offline check passes, the chart
refuses first, naming the value. `make dry-run HOSTSPACE=<name>` asks the current kubectl
context's server the same question."""

import json
import os
import shutil
from pathlib import Path

import pytest
from chart_matrix import HELM_VERSIONS

from tools.cache import run
from tools.helm import helm_binaries

# One API server, on the worker that runs these tests.
pytestmark = pytest.mark.xdist_group("api-server")


def test_the_api_server_accepts_every_render_of_every_combination(chart, api_server):
    """Each values file in the namespace of its hostspace, as the pipeline deploys them."""
    renders = {chart.namespace(label): chart.objects(label) for label in chart.labels}
    judged = api_server.dry_run(renders)
    assert judged.returncode == 0, judged.stdout + judged.stderr
    objects = [o for objects in renders.values() for o in objects]
    pods = sum(o["kind"] == "Deployment" for o in objects)
    assert judged.stdout.count("(server dry run)") == len(objects) + pods, judged.stdout


# What the API server refuses (or Pod Security would), although helm, the schema and
# kubernetes-validate pass it on today's chart: each on top of production's values, and what the
# chart says instead.
REFUSED = {
    "hpa minimum above maximum": ("autoscaling: {minReplicas: 6, maxReplicas: 5}", "autoscaling.minReplicas (6)"),
    "memory request above its limit": (
        "resources: {requests: {memory: 1Gi}, limits: {memory: 512Mi}}",
        "resources.requests.memory (1Gi) must not be above resources.limits.memory (512Mi)",
    ),
    "cpu request above its limit": (
        "resources: {requests: {cpu: '2'}, limits: {cpu: '1'}}",
        "resources.requests.cpu (2) must not be above resources.limits.cpu (1)",
    ),
    "a toleration Exists with a value": ("tolerations: [{key: dedicated, operator: Exists, value: x}]", "tolerations"),
    "a mount of a volume the pod lacks": (
        "extraVolumeMounts: [{name: certificates, mountPath: /etc/certificates}]",
        'extraVolumeMounts: "certificates" names no volume of the pod',
    ),
    "two extra volumes of one name": (
        "extraVolumes: [{name: cache, emptyDir: {}}, {name: cache, emptyDir: {}}]",
        'extraVolumes: "cache" is the name of another volume of the pod',
    ),
    "PATH from the values": ("env: {PATH: /data/bin}", "PATH"),
    "a hostname of one label": ("hosts: {platform: {hostname: '*.com', tlsSecretName: wild}}", "hostname"),
    "an annotation the chart writes": ("podAnnotations: {prometheus.io/scrape: 'false'}", "prometheus.io/scrape"),
    "a label the chart writes": ("podLabels: {app.kubernetes.io/version: '9'}", "app.kubernetes.io/version"),
    "no pod security context": ("podSecurityContext: null", "podSecurityContext"),
    "no container security context": ("securityContext: null", "securityContext"),
    "a liveness probe of more than one success": ("livenessProbe: {successThreshold: 2}", "successThreshold"),
    "one pull secret twice": ("imagePullSecrets: [{name: registry}, {name: registry}]", "imagePullSecrets"),
    "a resource Kubernetes does not know": ("resources: {limits: {gpu: 1}}", "gpu"),
    "two mounts at one path": (
        "extraVolumes: [{name: a, emptyDir: {}}, {name: b, emptyDir: {}}]\n"
        "extraVolumeMounts: [{name: a, mountPath: /srv/x}, {name: b, mountPath: /srv/x}]",
        'extraVolumeMounts: "/srv/x" is the mount path of another mount of the container',
    ),
    "a label key of a name longer than 63": ("nodeSelector: {%s: x}" % ("a" * 64), "a" * 64),
    "a fraction of a byte": ("resources: {requests: {memory: 0.1Gi}}", "memory"),
    "a petabyte, beyond the server's count of thousandths": ("persistence: {enabled: true, size: 10Pi}", "size"),
    "a volume of no size": ("persistence: {enabled: true, size: 0Gi}", "size"),
    "a toleration's seconds without NoExecute": (
        "tolerations: [{key: dedicated, effect: NoSchedule, tolerationSeconds: 60}]",
        "tolerations",
    ),
    "a peer of an ipBlock and a selector": (
        "networkPolicy: {enabled: true, from: [{ipBlock: {cidr: 10.0.0.0/8}, podSelector: {}}]}",
        "networkPolicy",
    ),
    "a scrape interval of units out of order": (
        "metrics: {serviceMonitor: {enabled: true, interval: 30s1m}}",
        "interval",
    ),
    "two spread constraints of one key and one policy": (
        "topologySpreadConstraints: [{maxSkew: 1, topologyKey: zone, whenUnsatisfiable: DoNotSchedule},"
        " {maxSkew: 2, topologyKey: zone, whenUnsatisfiable: DoNotSchedule}]",
        'topologySpreadConstraints: two constraints of topologyKey "zone" and whenUnsatisfiable DoNotSchedule',
    ),
}


@HELM_VERSIONS
@pytest.mark.parametrize("case", REFUSED)
def test_the_chart_refuses_first_what_the_server_would_refuse(default_chart, version, case, tmp_path):
    values, says = REFUSED[case]
    extra = tmp_path / "values.yaml"
    extra.write_text(values + "\n")
    rendered = default_chart.template(default_chart.labels[-1], extra_values=[extra], helm=default_chart.helms[version])
    assert rendered.returncode != 0, rendered.stdout
    assert says in rendered.stderr, rendered.stderr


# ---- make dry-run: the team's own cluster --------------------------------------------------------


@pytest.fixture
def cluster_project(default_project, api_server, tmp_path):
    """A copy of the default project, and an environment whose kubectl's current context is the
    suite's API server, in a restricted namespace of its own; helm 3.17 and kubectl on PATH."""
    project = tmp_path / default_project.name
    shutil.copytree(default_project, project)
    namespace = "demo-dev"
    api_server.restricted_namespaces({namespace: [default_project.name]})
    kubeconfig = json.loads(api_server.kubeconfig.read_text())
    kubeconfig["contexts"][0]["context"]["namespace"] = namespace
    (tmp_path / "kubeconfig").write_text(json.dumps(kubeconfig))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "helm").symlink_to(helm_binaries()["3.17"])
    (bin_dir / "kubectl").symlink_to(api_server.binaries["kubectl"])
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(bin_dir), os.environ["PATH"]]),
        "KUBECONFIG": str(tmp_path / "kubeconfig"),
    }
    return project, env


def test_make_dry_run_has_the_clusters_api_server_accept_a_hostspace_as_generated(cluster_project):
    project, env = cluster_project
    checked = run(["make", "dry-run", "HOSTSPACE=dev"], cwd=project, env=env, check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "deployment.apps/flask-app created (server dry run)" in checked.stdout
    assert "host.getambassador.io/flask-app-platform created (server dry run)" in checked.stdout


def test_make_dry_run_refuses_a_privileged_container(cluster_project):
    project, env = cluster_project
    template = project / "chart" / "templates" / "deployment.yaml"
    text = template.read_text()
    line = "            {{- toYaml .Values.securityContext | nindent 12 }}\n"
    assert line in text
    template.write_text(text.replace(line, line + "            privileged: true\n"))
    checked = run(["make", "dry-run", "HOSTSPACE=dev"], cwd=project, env=env, check=False)
    assert checked.returncode != 0
    assert "privileged" in checked.stderr, checked.stdout + checked.stderr


def test_make_dry_run_without_a_context_or_a_hostspace_says_so_in_one_line(cluster_project, tmp_path):
    project, env = cluster_project
    (tmp_path / "empty-kubeconfig").write_text("apiVersion: v1\nkind: Config\n")
    no_context = run(
        ["make", "dry-run", "HOSTSPACE=dev"],
        cwd=project,
        env={**env, "KUBECONFIG": str(tmp_path / "empty-kubeconfig")},
        check=False,
    )
    assert no_context.returncode != 0
    assert no_context.stderr.startswith("make dry-run: kubectl has no current context:"), no_context.stderr
    no_hostspace = run(["make", "dry-run"], cwd=project, env=env, check=False)
    assert "make dry-run: name a hostspace: HOSTSPACE=<one of dev prod stage>" in no_hostspace.stderr
    bin_dir = Path(env["PATH"].split(os.pathsep)[0])
    (bin_dir / "kubectl").unlink()  # and nothing but helm on PATH (this machine may have another kubectl)
    no_kubectl = run(
        [shutil.which("make"), "dry-run", "HOSTSPACE=dev"], cwd=project, env={**env, "PATH": str(bin_dir)}, check=False
    )
    assert no_kubectl.returncode != 0
    assert no_kubectl.stderr.startswith("make dry-run: kubectl is not installed: install kubectl"), no_kubectl.stderr
