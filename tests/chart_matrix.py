"""What the chart test modules share besides fixtures: the Chart that renders one of the
combinations of answers (tests/answers.py) with each values file on each helm, and small
readers of rendered objects. The fixtures (`helms`, `charts`, `chart`, `default_chart`)
are in conftest.py."""

import copy
import shutil
import sys
from functools import cached_property
from pathlib import Path

import pytest
import yaml
from answers import COMBINATIONS, answered

from hooks import pre_gen_project as pre
from tools.cache import run as tools_run

# The helm release lines the chart is checked against, as test ids.
HELM_VERSIONS = pytest.mark.parametrize("version", ["3.17", "4"], ids=["helm3.17", "helm4"])

KUBE_VERSION = "1.29.0"  # the oldest Kubernetes the chart supports
AMBASSADOR = "getambassador.io/v3alpha1"
VENV_BIN = Path(sys.executable).parent


def tool(name):
    """A tool of the test venv (.venv/bin), found even when PATH does not list it."""
    path = VENV_BIN / name
    return str(path) if path.exists() else name


def run(args, env=None, cwd=None):
    """A tool (helm), its output captured as text, with a time limit."""
    return tools_run(args, check=False, env=env, cwd=cwd, timeout=300)


def helm_values(chart_values, *files):
    """What helm hands the templates as .Values: the -f files merged in order (maps deeply; a
    later file's null replaces what an earlier one set), then coalesced with the chart's own
    values.yaml (`chart_values`): a null deletes a key that values.yaml has, and stays for any
    other key (where the schema sees it)."""
    user = {}
    for values in files:
        user = _merge_files(user, values or {})
    return _coalesce(user, chart_values or {})


def _merge_files(base, extra):
    merged = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge_files(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def _coalesce(user, chart_values):
    for key, value in chart_values.items():
        if key not in user:
            user[key] = copy.deepcopy(value)
        elif user[key] is None:
            del user[key]
        elif isinstance(user[key], dict) and isinstance(value, dict):
            _coalesce(user[key], value)
    return user


def layered(defaults, values):
    """The chart's app.init (templates/_helpers.tpl): `values` over the platform's `defaults`,
    maps key by key, anything else replaced, a null skipped (it never removes a default)."""
    result = copy.deepcopy(defaults)
    for key, value in values.items():
        if isinstance(value, dict):
            result[key] = layered(result[key] if isinstance(result.get(key), dict) else {}, value)
        elif value is not None:
            result[key] = copy.deepcopy(value)
    return result


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
    """PyYAML reads YAML 1.1, where a plain `=` is the "value" type it cannot build; Kubernetes
    reads YAML 1.2, where it is the string "=" (helm writes a drawn value so). Built on libyaml
    where PyYAML has it (its wheels do): the suite reads some thousand renders, eight times faster."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def split_documents(text):
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]  # nosec B506: _Loader is a safe loader


def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind):
    (found,) = of_kind(objects, kind)
    return found


def container(objects):
    return one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]


# What a team sets for every hostspace in chart/values.yaml (the whole file, as the team writes
# it: the platform's defaults are chart/defaults.yaml). Each value changes what a suite of the
# chart's own tests by default (a NetworkPolicy, a volume, variables, pod annotations), and
# `resources` is also set by every hostspace's file, which wins.
TEAM_VALUES = {
    "networkPolicy": {
        "enabled": True,
        "from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ambassador"}}}],
    },
    "persistence": {"enabled": True},
    "env": {"FEATURE_FLAGS": "search,export", "LOG_LEVEL": "WARNING"},
    "envFrom": [{"configMapRef": {"name": "orders-settings"}}],
    "podAnnotations": {"team": "orders"},
    "resources": {"requests": {"cpu": "300m"}, "limits": {"ephemeral-storage": "512Mi"}},
}


class _Made(dict):
    """A dict whose missing values are made by `make(key)` when first read, then kept."""

    def __init__(self, make):
        super().__init__()
        self.make = make

    def __missing__(self, key):
        self[key] = self.make(key)
        return self[key]


class Chart:
    """A baked project's chart, rendered with each values file by each helm."""

    def __init__(self, project, answers, helms):
        self.project = project
        self.dir = project / "chart"
        self.answers_given = answers
        self.answers = answered(answers)
        self.helms, self.env = helms
        self.app = self.answers["app_name"]
        self.hostspaces = pre.hostspaces(self.answers)
        # "values.yaml" alone, then each hostspace as the pipeline deploys it.
        self.labels = ["values.yaml", *(f"values-{h}.yaml" for h in self.hostspaces)]
        # Each helm's render of each values file, made when a test first reads it (a worker reads
        # only some): renders[label, version].
        self.renders = _Made(lambda key: self.template(key[0], helm=self.helms[key[1]]))

    @cached_property
    def lints(self):
        """helm 4's lint of each values file, for the platform's Kubernetes version: {label: result}.
        helm 3.17 lints each hostspace's values in the project's own `make lint`
        (test_quality_gates.py), as a team runs it."""
        return {
            label: run(
                [
                    self.helms["4"],
                    "lint",
                    "--strict",
                    self.dir,
                    *self.values_args(label),
                    "--kube-version",
                    KUBE_VERSION,
                ],
                env=self.env,
            )
            for label in self.labels
        }

    @property
    def number(self):
        """Which of the COMBINATIONS this is, counted from 1, for measurements."""
        return f"{COMBINATIONS.index(self.answers_given) + 1} of {len(COMBINATIONS)}"

    def namespace(self, label):
        space = label[len("values-") : -len(".yaml")] if label != "values.yaml" else ""
        return f"{self.answers['appcode']}-{space}" if space else self.answers["appcode"]

    def values_args(self, label, extra=(), directory=None):
        files = ["values.yaml"] if label == "values.yaml" else ["values.yaml", label]
        args = [a for f in files for a in ("-f", (directory or self.dir) / f)]
        return args + [a for f in extra for a in ("-f", f)]

    def template(self, label, extra_values=(), sets=(), helm=None, flags=(), directory=None):
        """`helm template` as the pipeline runs it (plus `flags`), of this chart or of a copy of it
        in `directory` (copy_with); returns the CompletedProcess."""
        return run(
            [
                helm or self.helms["4"],
                "template",
                self.app,
                directory or self.dir,
                *self.values_args(label, extra_values, directory),
                *(a for s in sets for a in ("--set", s)),
                "--namespace",
                self.namespace(label),
                "--kube-version",
                KUBE_VERSION,
                *flags,
            ],
            env=self.env,
        )

    def objects(self, label):
        """The objects helm 4 rendered with one values file."""
        result = self.renders[label, "4"]
        assert result.returncode == 0, result.stderr
        return split_documents(result.stdout)

    def stage(self, label):
        """The stage of a values file's hostspace, as the manual states it: the last hostspace is
        production (a single one too), the first development, those between preproduction; None
        for values.yaml."""
        if label == "values.yaml":
            return None
        position = self.labels.index(label) - 1
        if position == len(self.hostspaces) - 1:
            return "production"
        return "development" if position == 0 else "preproduction"

    @cached_property
    def values(self):
        """The team's values.yaml, which holds no value at generation ({})."""
        return yaml.safe_load((self.dir / "values.yaml").read_text()) or {}

    @cached_property
    def defaults(self):
        """The platform's defaults (defaults.yaml), under every values file."""
        return yaml.safe_load((self.dir / "defaults.yaml").read_text())

    def copy_with(self, directory, values=None, hostspaces=None):
        """A copy of the chart in `directory` (which must not exist), as a team changes it:
        values.yaml holding `values` (the whole file, when given), and `hostspaces[label]` (YAML
        text) added at the end of a hostspace's values file. Returns `directory`."""
        shutil.copytree(self.dir, directory)
        if values is not None:
            (directory / "values.yaml").write_text(yaml.safe_dump(values))
        for label, text in (hostspaces or {}).items():
            with (directory / label).open("a") as file:
                file.write("\n" + text)
        return directory

    def deployed(self, label, *extra):
        """The values the templates read for a label (and extra values, parsed), as helm and the
        chart's app.init make them: the files over the chart's values.yaml, then over defaults.yaml."""
        files = (
            [self.values] if label == "values.yaml" else [self.values, yaml.safe_load((self.dir / label).read_text())]
        )
        return layered(self.defaults, helm_values(self.values, *files, *extra))
