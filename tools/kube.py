"""A real Kubernetes API server for the suite: kube-apiserver and etcd on 127.0.0.1, and kubectl.

The binaries, pinned (``KUBERNETES_VERSION``, ``ETCD_VERSION``), each taken in this order:

1. the folder ``KUBEBUILDER_ASSETS`` names (what controller-runtime's ``setup-envtest``
   downloads on hosted runners: kube-apiserver, etcd, kubectl), when the binary there reports
   the pinned version;
2. the program on PATH, at the pinned version;
3. the suite's own build from the Go modules, made once per machine into
   ``${XDG_CACHE_HOME:-~/.cache}/flask-appstack/tools/kube-<versions>/`` (``built_once``).
   ``k8s.io/kubernetes`` cannot be built as a dependency as it is (its go.mod replaces each of
   its staging modules, ``k8s.io/api`` and the others, with a folder of its own repository), so
   it is built through a module of ours that requires it and replaces each staging module with
   its release (``v0.X.Y`` for Kubernetes ``v1.X.Y``); etcd's server module likewise. About 11
   CPU-minutes cold, then nothing.

``ApiServer`` starts etcd and kube-apiserver on free loopback ports with throwaway
certificates (openssl, EC P-256: a CA, the server's certificate for 127.0.0.1, an admin client
in ``system:masters``, a service-account key), waits for ``/readyz``, and stops the API server
before etcd (the other way round, its shutdown waits minutes on etcd). No controller runs:
whatever a test needs that a controller would make (a namespace's default ServiceAccount) it
makes itself.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from .cache import built_once, cache_dir, run
from .helm import MissingTool
from .net import free_port

KUBERNETES_VERSION = "v1.37.2"
ETCD_VERSION = "v3.7.3"
KUBERNETES_MODULE = "k8s.io/kubernetes"
ETCD_MODULE = "go.etcd.io/etcd/server/v3"
PROGRAMS = ("kube-apiserver", "kubectl", "etcd")
CRDS = Path(__file__).resolve().parents[1] / "tests" / "kubernetes"


def staging_version(version=KUBERNETES_VERSION):
    """Kubernetes v1.X.Y's staging modules (k8s.io/api and the others) are released as v0.X.Y."""
    return "v0." + version.removeprefix("v1.")


def reported_version(program: Path) -> str | None:
    """The version a binary says it is, or None when it does not run."""
    args = {
        "kube-apiserver": ["--version"],
        "kubectl": ["version", "--client", "-o", "json"],
        "etcd": ["--version"],
    }[program.name]
    try:
        done = subprocess.run([program, *args], capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if program.name == "kubectl":
        try:
            return json.loads(done.stdout)["clientVersion"]["gitVersion"]
        except (ValueError, KeyError):
            return None
    found = re.search(r"v?(\d+\.\d+\.\d+)", done.stdout)
    return f"v{found.group(1)}" if found else None


def pinned(name):
    return ETCD_VERSION if name == "etcd" else KUBERNETES_VERSION


def kube_binaries(environ=os.environ) -> dict[str, Path]:
    """{"kube-apiserver": path, "kubectl": path, "etcd": path}, at the pinned versions."""
    found, missing = {}, []
    assets = environ.get("KUBEBUILDER_ASSETS")
    for name in PROGRAMS:
        candidates = [Path(assets) / name] if assets else []
        on_path = shutil.which(name, path=environ.get("PATH"))
        candidates += [Path(on_path)] if on_path else []
        chosen = [path for path in candidates if path.is_file() and reported_version(path) == pinned(name)]
        if chosen:
            found[name] = chosen[0]
        else:
            missing.append(name)
    if missing:
        built = built_once(cache_dir("tools") / f"kube-{KUBERNETES_VERSION}-etcd-{ETCD_VERSION}", _build)
        found.update({name: built / name for name in missing})
    return found


def _build(target: Path, environ=os.environ) -> None:
    """Build kube-apiserver, kubectl and etcd from their Go modules into the folder ``target``."""
    go = shutil.which("go", path=environ.get("PATH"))
    if go is None:
        raise MissingTool(
            "a Kubernetes API server is needed, and there is none at the pinned versions "
            f"(kube-apiserver and kubectl {KUBERNETES_VERSION}, etcd {ETCD_VERSION}) in KUBEBUILDER_ASSETS or on "
            "PATH, and no Go to build them: install Go (https://go.dev/doc/install), or point KUBEBUILDER_ASSETS at "
            f"setup-envtest's binaries of {KUBERNETES_VERSION}"
        )
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        work = Path(tmp)
        env = {**environ, "CGO_ENABLED": "0", "GOFLAGS": "-mod=mod"}
        stamp = " ".join(
            f"-X {package}.{name}={value}"
            for package in ("k8s.io/client-go/pkg/version", "k8s.io/component-base/version")
            for name, value in (
                ("gitVersion", KUBERNETES_VERSION),
                ("gitMajor", "1"),
                ("gitMinor", KUBERNETES_VERSION.split(".")[1]),
                ("gitTreeState", "clean"),
            )
        )
        builds = [
            (KUBERNETES_MODULE, KUBERNETES_VERSION, staging_version(), stamp, ["cmd/kube-apiserver", "cmd/kubectl"]),
            (ETCD_MODULE, ETCD_VERSION, ETCD_VERSION, "", [""]),
        ]
        staged = work / "bin"
        for module, version, replaced_with, ldflags, commands in builds:
            folder = work / module.replace("/", "_")
            folder.mkdir()
            release = json.loads(
                run([go, "mod", "download", "-json", f"{module}@{version}"], cwd=folder, env=env).stdout
            )
            go_mod = json.loads(run([go, "mod", "edit", "-json", release["GoMod"]], cwd=folder, env=env).stdout)
            godebug = re.findall(r"^godebug\s+(\S.*)$", Path(release["GoMod"]).read_text(), re.MULTILINE)
            (folder / "go.mod").write_text(_builder_go_mod(module, version, go_mod, godebug, replaced_with))
            packages = [f"{module}/{command}".rstrip("/") for command in commands]
            out = staged / ("" if len(packages) > 1 else "etcd")
            run([go, "build", "-trimpath", "-ldflags", ldflags, "-o", f"{out}{os.sep}" if len(packages) > 1 else out,
                 *packages], cwd=folder, env=env, timeout=3600)  # fmt: skip
        os.replace(staged, target)


def _builder_go_mod(module, version, release, godebug, replaced_with):
    """The go.mod of our module that builds a release whose go.mod replaces modules with folders
    of its own repository: each replaced by its release instead."""
    lines = ["module flask-appstack/kube-build", "", f"go {release['Go']}", ""]
    lines += [f"godebug {line}" for line in godebug] + ([""] if godebug else [])
    lines += [f"require {module} {version}", ""]
    for replace in release.get("Replace") or []:
        old, new = replace["Old"]["Path"], replace["New"]
        if new.get("Version"):
            lines.append(f"replace {old} => {new['Path']} {new['Version']}")
        else:  # a folder of its own repository: the module's release
            lines.append(f"replace {old} => {old} {replaced_with}")
    return "\n".join(lines) + "\n"


# ---- the server ----------------------------------------------------------------------------


def openssl(*args, cwd):
    run(["openssl", *args], cwd=cwd)


def make_certificates(folder: Path) -> None:
    """A throwaway CA; the server's certificate (127.0.0.1, localhost); an admin client in
    system:masters; a service-account key. EC P-256 throughout."""
    for name in ("ca", "server", "admin", "service-account"):
        openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", f"{name}.key", cwd=folder)
    openssl("req", "-x509", "-new", "-key", "ca.key", "-subj", "/CN=flask-appstack-test-ca", "-days", "2",
            "-out", "ca.crt", cwd=folder)  # fmt: skip
    (folder / "server.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n"
    )
    (folder / "admin.ext").write_text("extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n")
    for name, subject in (("server", "/CN=kube-apiserver"), ("admin", "/O=system:masters/CN=admin")):
        openssl("req", "-new", "-key", f"{name}.key", "-subj", subject, "-out", f"{name}.csr", cwd=folder)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
                "-days", "2", "-extfile", f"{name}.ext", "-out", f"{name}.crt", cwd=folder)  # fmt: skip
    openssl("ec", "-in", "service-account.key", "-pubout", "-out", "service-account.pub", cwd=folder)


class ApiServer:
    """etcd and kube-apiserver on 127.0.0.1, with a kubeconfig for an admin; `kubectl(...)` runs
    kubectl against it. Use as a context manager, or call start() and stop()."""

    def __init__(self, folder: Path, binaries=None):
        self.folder = Path(folder)
        self.binaries = binaries or kube_binaries()
        self.processes = []
        self.kubeconfig = self.folder / "kubeconfig"

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    def start(self, timeout=60):
        folder = self.folder
        folder.mkdir(parents=True, exist_ok=True)
        make_certificates(folder)
        client, peer, secure = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{client}"
        self._start(
            "etcd",
            [self.binaries["etcd"], "--data-dir", folder / "etcd", "--listen-client-urls", etcd_url,
             "--advertise-client-urls", etcd_url, "--listen-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
             "--initial-cluster", f"default=http://127.0.0.1:{peer}", "--unsafe-no-fsync", "--log-level", "error"],
        )  # fmt: skip
        self._start(
            "kube-apiserver",
            [self.binaries["kube-apiserver"], "--etcd-servers", etcd_url, "--bind-address", "127.0.0.1",
             "--advertise-address", "127.0.0.1", "--secure-port", str(secure),
             "--tls-cert-file", folder / "server.crt", "--tls-private-key-file", folder / "server.key",
             "--client-ca-file", folder / "ca.crt",
             "--service-account-issuer", "https://kubernetes.default.svc",
             "--service-account-key-file", folder / "service-account.pub",
             "--service-account-signing-key-file", folder / "service-account.key",
             "--service-cluster-ip-range", "10.96.0.0/24", "--authorization-mode", "RBAC",
             "--endpoint-reconciler-type", "none"],
        )  # fmt: skip
        self.kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [
                        {
                            "name": "test",
                            "cluster": {
                                "server": f"https://127.0.0.1:{secure}",
                                "certificate-authority": str(folder / "ca.crt"),
                            },
                        }
                    ],
                    "users": [
                        {
                            "name": "admin",
                            "user": {
                                "client-certificate": str(folder / "admin.crt"),
                                "client-key": str(folder / "admin.key"),
                            },
                        }
                    ],
                    "contexts": [{"name": "test", "context": {"cluster": "test", "user": "admin"}}],
                    "current-context": "test",
                }
            )
        )
        deadline = time.monotonic() + timeout
        while self.kubectl("get", "--raw", "/readyz", check=False).returncode:
            for name, process in self.processes:
                if process.poll() is not None:
                    log = (folder / f"{name}.log").read_text(errors="replace")[-3000:]
                    raise RuntimeError(f"{name} exited with {process.returncode}:\n{log}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"kube-apiserver was not ready within {timeout} s")
            time.sleep(0.2)
        return self

    def _start(self, name, args):
        log = open(self.folder / f"{name}.log", "wb")
        self.processes.append((name, subprocess.Popen([str(a) for a in args], stdout=log, stderr=log)))

    def stop(self):
        """The API server first, then etcd."""
        for _, process in reversed(self.processes):
            process.terminate()
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self.processes = []

    @property
    def env(self):
        """An environment whose kubectl (and helm) talk to this server."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def kubectl(self, *args, input=None, check=True, timeout=120):
        return run([self.binaries["kubectl"], *args], input=input, check=check, env=self.env, timeout=timeout)

    # ---- what no controller makes here ------------------------------------------------------

    def install_crds(self):
        """The Custom Resource Definitions the chart's objects need (tests/kubernetes), established."""
        files = sorted(CRDS.glob("*.yaml"))
        self.kubectl("apply", "--server-side", *[arg for path in files for arg in ("-f", path)])
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")

    def restricted_namespaces(self, accounts):
        """Namespaces whose Pod Security level is restricted (enforced, and warned of, which
        kubectl --warnings-as-errors turns into refusals), each with its ServiceAccounts
        ({namespace: [account names]}; "default" is always there): one kubectl call for all."""
        items = []
        for name, service_accounts in accounts.items():
            labels = {
                f"pod-security.kubernetes.io/{mode}{suffix}": value
                for mode in ("enforce", "warn")
                for suffix, value in (("", "restricted"), ("-version", "latest"))
            }
            items.append({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}})
            items += [
                {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": account, "namespace": name}}
                for account in ("default", *service_accounts)
            ]
        self.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": items}))

    def dry_run(self, renders):
        """The server's verdict on renders ({namespace: parsed manifests}): their objects and each
        Deployment's pod template as the Pod its ReplicaSet would make, each render in a restricted
        namespace of its own, nothing kept. Two kubectl calls, whatever the number of renders: the
        namespaces, then `kubectl apply --dry-run=server` of everything, whose CompletedProcess it
        returns, warnings counted as refusals."""
        self.restricted_namespaces(
            {
                namespace: [o["metadata"]["name"] for o in objects if o["kind"] == "ServiceAccount"]
                for namespace, objects in renders.items()
            }
        )
        items = []
        for namespace, objects in renders.items():
            objects = [{**o, "metadata": {**o["metadata"], "namespace": namespace}} for o in objects]
            items += objects
            for workload in objects:
                if workload["kind"] == "Deployment":
                    template = workload["spec"]["template"]
                    name = f"{workload['metadata']['name']}-pod"
                    metadata = {**template.get("metadata", {}), "name": name, "namespace": namespace}
                    items.append({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": template["spec"]})
        listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": items})
        return self.kubectl("--warnings-as-errors", "apply", "--dry-run=server", "-f", "-", input=listed, check=False)
