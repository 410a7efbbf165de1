"""What the chart test modules share besides fixtures: the Chart that renders one of the
combinations of answers (tests/answers.py) with each values file on each helm, and small
readers of rendered objects. The fixtures (`helms`, `charts`, `chart`, `default_chart`)
are in conftest.py."""

import copy
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


def helm_merge(base, extra):
    """`extra` over `base` as helm merges values files: maps deeply, null deletes what `base`
    has (a null that deletes nothing stays), the rest replaced."""
    for key, value in extra.items():
        if value is None and key in base:
            del base[key]
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            helm_merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value)
    return base


class _Loader(yaml.SafeLoader):
    """PyYAML reads YAML 1.1, where a plain `=` is the "value" type it cannot build; Kubernetes
    reads YAML 1.2, where it is the string "=" (helm writes a drawn value so)."""


_Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: loader.construct_scalar(node))


def split_documents(text):
    return [doc for doc in yaml.load_all(text, Loader=_Loader) if doc]  # nosec B506: _Loader is a SafeLoader


def of_kind(objects, kind):
    return [o for o in objects if o["kind"] == kind]


def one(objects, kind):
    (found,) = of_kind(objects, kind)
    return found


def container(objects):
    return one(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]


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
        # helm 4 lints here, for the platform's Kubernetes version; helm 3.17 lints each hostspace's
        # values in the project's own `make lint` (test_quality_gates.py), as a team runs it.
        self.lints = {}
        self.renders = {}
        for label in self.labels:
            self.lints[label] = run(
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
            for version, helm in self.helms.items():
                self.renders[label, version] = self.template(label, helm=helm)

    @property
    def number(self):
        """Which of the COMBINATIONS this is, counted from 1, for measurements."""
        return f"{COMBINATIONS.index(self.answers_given) + 1} of {len(COMBINATIONS)}"

    def namespace(self, label):
        space = label[len("values-") : -len(".yaml")] if label != "values.yaml" else ""
        return f"{self.answers['appcode']}-{space}" if space else self.answers["appcode"]

    def values_args(self, label, extra=()):
        files = ["values.yaml"] if label == "values.yaml" else ["values.yaml", label]
        args = [a for f in files for a in ("-f", self.dir / f)]
        return args + [a for f in extra for a in ("-f", f)]

    def template(self, label, extra_values=(), sets=(), helm=None, flags=()):
        """`helm template` as the pipeline runs it (plus `flags`); returns the CompletedProcess."""
        return run(
            [
                helm or self.helms["4"],
                "template",
                self.app,
                self.dir,
                *self.values_args(label, extra_values),
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
        """The stage of a values file's hostspace (the hook's own rule); None for values.yaml."""
        if label == "values.yaml":
            return None
        return pre.stage(self.answers, self.hostspaces[self.labels.index(label) - 1])

    @cached_property
    def values(self):
        return yaml.safe_load((self.dir / "values.yaml").read_text())
