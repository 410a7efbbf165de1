"""A runner for helm-unittest suites (chart/tests/*_test.yaml) on real `helm template` output.

The generated chart's suites are written for the helm-unittest plugin (`helm unittest chart/`).
No package registry ships that plugin, so where it cannot be installed this runner stands in
for it: for each test of a suite it merges the suite's and the test's `values` files and `set`
values, renders the chart with a real helm (`helm template`, the release's name and namespace
from `release`), and evaluates the test's assertions on the documents of each template.
Where the plugin is installed, use the plugin (`helm_unittest_plugin()` finds it).

Supported assertions, each with `not: true`, `template`, `documentIndex` and
`documentSelector` (path and value) as the plugin reads them:

    isKind, isAPIVersion, equal, notEqual, exists, notExists, contains, notContains,
    isSubset, lengthEqual, matchRegex, isNullOrEmpty, isNotNullOrEmpty,
    hasDocuments, matchRegexRaw (NOTES.txt), failedTemplate (errorPattern or errorMessage)

Paths are the plugin's: `a.b[0].c`, `a["x/y"]`. Any other assertion is reported as a failure
naming it ("unsupported assertion"), never skipped: a suite this runner cannot check fails.
NOTES.txt is not in `helm template`'s output; it is taken from `helm install --dry-run=client`,
which only helm 4 renders without a cluster, so a suite asserting on it needs `notes_helm`.
"""

from __future__ import annotations

import copy
import json
import os
import re
import subprocess
from pathlib import Path

import yaml

SUPPORTED = (
    "isKind",
    "isAPIVersion",
    "equal",
    "notEqual",
    "exists",
    "notExists",
    "contains",
    "notContains",
    "isSubset",
    "lengthEqual",
    "matchRegex",
    "isNullOrEmpty",
    "isNotNullOrEmpty",
    "hasDocuments",
    "matchRegexRaw",
    "failedTemplate",
)
# Keys of an assertion that qualify it rather than name it.
QUALIFIERS = ("not", "template", "documentIndex", "documentSelector")
NOTES = "templates/NOTES.txt"


def helm_unittest_plugin(environ=os.environ, home=None):
    """(plugins directory, version) of an installed helm-unittest plugin, or None.

    `helm plugin install` puts it into $HELM_PLUGINS, by default ${XDG_DATA_HOME:-~/.local/
    share}/helm/plugins; a helm run with its own data home must be pointed there.
    """
    home = Path.home() if home is None else Path(home)
    data_home = Path(environ.get("XDG_DATA_HOME") or home / ".local" / "share")
    for root in filter(None, [environ.get("HELM_PLUGINS"), data_home / "helm" / "plugins"]):
        for manifest in sorted(Path(root).glob("*/plugin.yaml")):
            plugin = yaml.safe_load(manifest.read_text()) or {}
            if plugin.get("name") == "unittest":
                return Path(root), str(plugin.get("version", "?"))
    return None


def merge(base, extra):
    """Merge `extra` into `base` as helm merges values files (maps deeply, the rest replaced)."""
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def set_path(values, dotted, value):
    """Apply one of a suite's `set` entries (a dotted key) to `values`."""
    *parents, last = dotted.split(".")
    for key in parents:
        values = values.setdefault(key, {})
    if isinstance(value, dict) and isinstance(values.get(last), dict):
        merge(values[last], value)
    else:
        values[last] = copy.deepcopy(value)


def run(args, env=None, cwd=None):
    """A tool (helm), its output captured as text, with a time limit."""
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def run_suite(path, chart_dir, helm, workdir, env=None, kube_version=None, notes_helm=None):
    """Run one suite file against the chart in `chart_dir`; return a list of failure messages
    (empty when every assertion holds). `workdir` receives the values file of each test."""
    path, workdir = Path(path), Path(workdir)
    suite = yaml.safe_load(path.read_text())
    failures = []
    for number, test in enumerate(suite["tests"]):
        values = {}
        for source in (suite, test):
            for file in source.get("values", []):
                merge(values, yaml.safe_load((path.parent / file).read_text()) or {})
            for key, value in source.get("set", {}).items():
                set_path(values, key, value)
        values_file = workdir / f"{path.stem}-{number}.yaml"
        values_file.write_text(yaml.safe_dump(values))
        release = {
            "name": "RELEASE-NAME",
            "namespace": "NAMESPACE",
            **suite.get("release", {}),
            **test.get("release", {}),
        }
        kube = ["--kube-version", kube_version] if kube_version else []
        result = run(
            [
                helm,
                "template",
                release["name"],
                chart_dir,
                "--namespace",
                release["namespace"],
                "-f",
                values_file,
                *kube,
            ],
            env,
        )
        rendered = None if result.returncode else render_by_template(result.stdout)
        default_templates = [test["template"]] if "template" in test else suite.get("templates", [])
        wanted = {a.get("template") for a in test["asserts"]} | set(default_templates)
        if rendered is not None and NOTES in wanted:
            if notes_helm is None:
                failures.append(f"{path.name} / {test.get('it')}: {NOTES} needs notes_helm (helm 4)")
                continue
            rendered[NOTES] = notes(notes_helm, chart_dir, release, values_file, env)
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
            documents = [d for d in yaml.safe_load_all(chunk) if d]
            rendered.setdefault(source.group(1), []).extend(documents)
    return rendered


def notes(helm, chart_dir, release, values_file, env=None):
    """NOTES.txt as `helm install` prints it (a client-side dry run: helm 4 needs no cluster)."""
    result = run(
        [
            helm,
            "install",
            release["name"],
            chart_dir,
            "--dry-run=client",
            "--output",
            "json",
            "--namespace",
            release["namespace"],
            "-f",
            values_file,
        ],
        env,
    )
    if result.returncode:
        raise RuntimeError(f"{helm} install --dry-run=client: {result.stderr.strip()}")
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
    """Evaluate one assertion on the rendered templates ({template: [documents]}, or None when
    rendering failed with `stderr`); return an error message, or None when it holds."""
    names = [key for key in assertion if key not in QUALIFIERS]
    if len(names) != 1 or names[0] not in SUPPORTED:
        return (
            f"unsupported assertion {', '.join(names) or '(none)'}: this runner supports "
            f"one of {', '.join(SUPPORTED)} per item"
        )
    negate = assertion.get("not", False)
    name, spec = names[0], assertion[names[0]]
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
        documents = documents[assertion["documentIndex"] : assertion["documentIndex"] + 1]
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


# The document-level assertions: document, spec -> whether it holds.
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
