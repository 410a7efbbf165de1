"""Offline validators for the chart tests: checkov, and the JSON schemas of tests/schemas.

checkov pulls in a few hundred packages; pip takes about a minute to install them, uv a
few seconds. So uv itself comes from a small cached venv (``tools.venvs.cached_venv``),
and uv builds checkov's venv once under ``${XDG_CACHE_HOME:-~/.cache}/flask-appstack/venvs``.
Resolution is pinned twice: checkov by version, its dependencies by ``--exclude-newer``,
so the same set of packages is installed on every machine until the pins move. Where uv
cannot reach an index (it ignores pip's configuration), pip installs the same checkov.

CLI: ``python -m tools.validators`` installs checkov if needed and prints its version.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from .cache import ToolFailed, built_once, cache_dir, run
from .project import REPO
from .venvs import cached_venv

UV = "uv==0.13.8"
CHECKOV = "checkov==3.3.30"
# Dependencies released after this moment are ignored: checkov's tree resolves the same
# way on every machine until CHECKOV (and this date with it) is moved on.
EXCLUDE_NEWER = "2026-11-01T00:00:00Z"

# checkov otherwise asks the package index for a newer checkov on every run, and fetches
# its guideline mapping from its cloud service.
CHECKOV_ENV = {"CKV_SKIP_PACKAGE_UPDATE_CHECK": "true", "BC_SKIP_MAPPING": "TRUE"}


def uv() -> Path:
    """Return the path of a pinned uv, installed once into a cached venv."""
    return cached_venv([UV]) / "bin" / "uv"


# uv writes no bytecode unless asked, and the suite runs with PYTHONDONTWRITEBYTECODE=1: without
# it, each checkov run compiled every module it imports, half of its 5 CPU-seconds. In the key,
# so that a venv installed without it is installed again.
COMPILED = "--compile-bytecode"


def checkov() -> Path:
    """Return the path of the pinned checkov executable, installing it on first use."""
    key = hashlib.sha256(f"{sys.executable}\n{CHECKOV}\n{EXCLUDE_NEWER}\n{COMPILED}".encode()).hexdigest()[:16]
    return built_once(cache_dir("venvs") / f"checkov-{key}", _install_checkov) / "bin" / "checkov"


def _install_checkov(venv: Path) -> None:
    try:
        _install_with_uv(venv)
    except (OSError, ToolFailed):
        # uv reads neither pip's configuration nor its index settings: where it cannot
        # reach an index, pip (as configured on this machine) still can, only slower.
        shutil.rmtree(venv, ignore_errors=True)
        run([sys.executable, "-m", "venv", venv])
        run([venv / "bin" / "python", "-m", "pip", "install", "--quiet", CHECKOV])


def _install_with_uv(venv: Path) -> None:
    uv_bin = uv()
    # --native-tls: trust the system's CA store, as pip does, so a TLS-inspecting proxy works.
    env = dict(os.environ, UV_CACHE_DIR=str(cache_dir("uv")), UV_NATIVE_TLS="1")
    if os.environ.get("PIP_INDEX_URL") and not os.environ.get("UV_INDEX_URL"):
        env["UV_INDEX_URL"] = os.environ["PIP_INDEX_URL"]
    run([uv_bin, "venv", "--quiet", "--python", sys.executable, venv], env=env)
    python = venv / "bin" / "python"
    run(
        [uv_bin, "pip", "install", "--quiet", COMPILED, "--python", python, "--exclude-newer", EXCLUDE_NEWER, CHECKOV],
        env=env,
    )


def run_checkov(
    target: Path, config: Path | None = None, framework: str | tuple[str, ...] = "kubernetes", output: str = "cli"
):
    """Scan a directory or file with checkov offline, with one framework or several in one
    run (its start-up dominates a scan); return the CompletedProcess.

    ``--skip-download`` keeps checkov from fetching policies from its cloud service; the
    quiet compact cli output lists only failed checks (``output="json"``: every result, a
    list of reports when there are several frameworks).
    """
    target = Path(target)
    frameworks = [framework] if isinstance(framework, str) else list(framework)
    args = [str(checkov()), "--framework", *frameworks, "--skip-download", "--compact", "--output", output]
    if "secrets" in frameworks:
        # Otherwise the secrets scan reads only the file types of infrastructure code, and a
        # project's Python, Pipfile and Dockerfile would go unread.
        args.append("--enable-secret-scan-all-files")
    if output == "cli":
        args.append("--quiet")
    args += ["--directory", str(target)] if target.is_dir() else ["--file", str(target)]
    if config is not None:
        args += ["--config-file", str(config)]
    return run(args, check=False, timeout=600, env=dict(os.environ, **CHECKOV_ENV))


def _check_jsonschema(args, cwd=None):
    """check-jsonschema with `args`, offline: every proxy points at a closed local port, so a
    download attempt would fail the check. Returns the CompletedProcess."""
    offline = {**os.environ, "NO_PROXY": "", "no_proxy": ""}
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        offline[name] = "http://127.0.0.1:9"
    return run([sys.executable, "-m", "check_jsonschema", *args], check=False, cwd=cwd, env=offline)


def check_builtin_schema(schema: str, path: Path, cwd: Path | None = None):
    """check-jsonschema against a schema it ships (``vendor.github-workflows``,
    ``vendor.azure-pipelines``), offline. Returns the CompletedProcess."""
    return _check_jsonschema(["--builtin-schema", schema, "--regex-variant", "python", path], cwd=cwd)


def check_schema_file(schema: Path, files) -> dict[str, list[str]]:
    """check-jsonschema against a schema file, offline, every file in one run (its start-up
    dominates a check): {file: [its errors]}, every file listed."""
    result = _check_jsonschema(["--output-format", "json", "--schemafile", schema, *files])
    report = json.loads(result.stdout)
    errors = {str(file): [] for file in files}
    for error in report.get("errors", []) + report.get("parse_errors", []):  # neither when all pass
        errors[error["filename"]].append(": ".join(filter(None, (error.get("path"), error["message"]))))
    if result.returncode != (1 if any(errors.values()) else 0):
        raise ToolFailed(f"check-jsonschema: exit {result.returncode}: {result.stdout}{result.stderr}")
    return errors


#: The JSON schemas the chart tests validate against, kept in the repository with their
#: origin, version and licence (tests/schemas/SOURCES.md), so a plain clone checks everything.
SCHEMAS = REPO / "tests" / "schemas"


def main() -> None:
    """Install checkov if needed and print its path and version."""
    path = checkov()
    out = run([path, "--version"], env=dict(os.environ, **CHECKOV_ENV))
    print(f"checkov: {path}\n  {out.stdout.strip()}")


if __name__ == "__main__":
    main()
