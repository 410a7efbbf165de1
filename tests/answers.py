"""Answers the test modules share: the one list of combinations they bake, how the fast
tier bakes, and how a combination is named."""

import copy
import functools
import json

from cookiecutter.prompt import prompt_for_config

from tools.project import DEFAULTS

# The fast tier never locks: the real lock has its own tests (test_lock.py).
NO_LOCK = {"lock_dependencies": False}
# The Pythons the lock tests lock for (the default answer, and 3.11 for the pipenv the
# platform's documentation shows), which the template's own CI (.github/workflows/ci.yml, azure-pipelines.yml) provides.
LOCK_PYTHONS = (DEFAULTS["python_version"], "3.11")


@functools.lru_cache(maxsize=None)
def _rendered(changes):
    return prompt_for_config({"cookiecutter": {**copy.deepcopy(DEFAULTS), **json.loads(changes)}}, no_input=True)


def rendered(**changes):
    """cookiecutter.json's answers with these changes, as cookiecutter hands them to the hooks
    (a choice's first option, Jinja defaults such as pipeline_ref rendered, the derived names),
    by cookiecutter itself."""
    return dict(_rendered(json.dumps(changes, sort_keys=True)))


# The answers a bake without input takes, the derived and private names left out.
DEFAULT_ANSWERS = {key: value for key, value in rendered().items() if not key.startswith("_")}

# The one list of combinations every test module bakes (each is baked once per worker, and
# shared). Pairwise over the options that shape the chart and the pipeline: hpa on/off, pvc
# off/ReadWriteOnce/ReadWriteMany, anti-affinity none/preferred/required, dr on/off, custom
# URL on/off, one or several hostspaces; every (pvc, anti-affinity) pair except
# ReadWriteOnce with required, which the template rejects. Every other answer takes a value
# that is not its default in at least one of them: a private index, the identity answers
# (name, code, Python, a description with quotes and '#', workers), the pipenv the platform
# documents, a GitHub pipeline repository on a branch, another pipeline release, registry,
# domain and regions, sizes, storage class and mount path.
COMBINATIONS = [
    {},
    {"pod_anti_affinity": "none", "dr": False, "custom_url": "api.example.org", "hostspaces": "dev"},
    {
        "hpa": False,
        "pod_anti_affinity": "required",
        "hostspaces": "sandbox",
        "python_version": "3.11",
        "pipenv_version": "2022.7.24",
        "pipeline_repository_type": "github",
        "pipeline_repository": "scale-platform/devops-pipelines",
        "pipeline_service_connection": "SCALE GitHub",
        "pipeline_ref": "refs/heads/release/4.7",
    },
    {
        "hpa": False,
        "pvc": True,
        "pvc_access_mode": "ReadWriteOnce",
        "pod_anti_affinity": "none",
        "dr": False,
        "hostspaces": "test, prod",
    },
    {
        "pvc": True,
        "pvc_access_mode": "ReadWriteOnce",
        "custom_url": "orders.example.org",
        "hostspaces": "dev",
        "dr_active_region": "eastus2",
        "dr_passive_region": "centralus",
        "platform_domain": "apps.example.net",
        "package_index": "https://artifactory.example.com/api/pypi/pypi/simple",
    },
    {
        "pvc": True,
        "pvc_access_mode": "ReadWriteMany",
        "pvc_storage_class": "nfs-shared",
        "pvc_mount_path": "/srv/shared",
        "pod_anti_affinity": "none",
        "hostspaces": "dev",
    },
    {
        "hpa": False,
        "pvc": True,
        "pvc_access_mode": "ReadWriteMany",
        "dr": False,
        "custom_url": "api.example.org",
        "hostspaces": "dev, qa, uat, prod",
        "skip_hostspaces": "uat",
    },
    {
        "app_name": "orders-api",
        "appcode": "ord7",
        "python_version": "3.12.1",
        "description": "Orders: the \"single\" source of truth # for 'orders'",
        "gunicorn_workers": "3",
        "app_version": "4.7.2",
        "docker_registry": "registry.example.com:5000",
        "pvc": True,
        "pvc_access_mode": "ReadWriteMany",
        "pvc_size": "5Gi",
        "pod_anti_affinity": "required",
        "dr": False,
        "custom_url": "www.orders.example.org",
        "hostspaces": "dev, stage, prod",
        "hpa_min_replicas": "3",
        "hpa_max_replicas": "9",
        "hpa_cpu_target": "60",
    },
]


def answered(answers):
    """The answers a bake of this combination used: the defaults (rendered with the
    combination's answers), no lock, the combination's."""
    return {key: value for key, value in rendered(**{**NO_LOCK, **answers}).items() if not key.startswith("_")}


def combinations_where(condition):
    """The combinations whose answers (with the defaults) meet a condition."""
    return [answers for answers in COMBINATIONS if condition(answered(answers))]


# The combination that changes the project's identity (name, code, Python, description, workers).
(NON_DEFAULT,) = combinations_where(lambda answers: answers["app_name"] != DEFAULT_ANSWERS["app_name"])
# The combination that locks against a private index.
(PRIVATE_INDEX,) = combinations_where(lambda answers: answers["package_index"])


def combination_id(answers):
    """Readable test id for a combination of answers: key:value joined by '-'."""
    return "-".join(f"{key}:{value}" for key, value in answers.items()) or "defaults"
