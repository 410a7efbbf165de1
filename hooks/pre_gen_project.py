"""Pre-generation: check every answer before cookiecutter writes a single file.

The rules are data: RULES checks one variable each and reads like the README's variable
table (variable, check, accepted form); COMBINATIONS checks answers that are fine alone
but cannot work together; DERIVED checks that the private names cookiecutter.json derives
from the answers still agree with them. `problems(answers)` runs all three and returns every
failure, so one run reports all of them; `report()` ends with the command that generates
again with every answer given, so fixing one answer costs one answer.

Then the directory: cookiecutter generates into a directory it creates, which is empty when
this hook runs; one that already holds files (after `cookiecutter -f`) is a project the team
works on, and generating over it is refused (`refusal`), pointing to `make update`, which
takes a template's changes into a project with a three-way merge.

Cookiecutter renders this file with Jinja before running it. Three places hold a Jinja
expression: `main()`, which brings the answers in as JSON data (`tojson`), never as Python
source, so no answer can execute code or break this file; PINNED_PIPENV, the names of the
template's own files; and CHART_RULES, the chart's schema definitions some answers follow. The
rest sits in Jinja raw blocks, so the tests import the file unrendered and call the same
functions. Standard library only: the hook runs in cookiecutter's own interpreter.
"""

# {% raw %}  (Jinja leaves everything down to the closing tag alone)
from __future__ import annotations

import os
import sys

# cookiecutter runs the rendered hook from a file in the temporary folder, which Python puts first on
# sys.path: every import would search that folder (thousands of files on a busy machine), and take a
# json.py or yaml.py anyone left there for the real one.
# (Not under python -P / PYTHONSAFEPATH, where sys.path[0] is no folder of ours.)
if __name__ == "__main__" and os.path.realpath(sys.path[0]) == os.path.dirname(os.path.realpath(__file__)):
    sys.path.pop(0)

import contextlib
import json
import re
import signal
import unicodedata

# A stop from here on ends cookiecutter but not this check, which takes milliseconds: the directory
# ends refused, or marked incomplete (INCOMPLETE), never unmarked.
if __name__ == "__main__":
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)
from collections import namedtuple

# The tables' rows. A check returns True when the value is fine; False, or a short reason,
# when it is not. (namedtuple rather than typing.NamedTuple: importing typing costs every
# bake ~15 ms, and this hook runs on every bake. For the same reason no pathlib, which brings
# urllib.parse and ipaddress, and ipaddress and shlex only where a value needs them.)
Rule = namedtuple("Rule", "variable check accepted")
# variables: the answers a failure names; needs: other answers it reads (it runs only when
# all of them passed RULES)
Combination = namedtuple("Combination", "variables check accepted needs", defaults=((),))


class Problem(namedtuple("Problem", "variables values accepted reason", defaults=("",))):
    __slots__ = ()

    def __str__(self):
        given = ", ".join(f"{name} = {shown(value)}" for name, value in zip(self.variables, self.values))
        reason = f"{self.reason}; " if self.reason else ""
        return f"{given}: {reason}expected {self.accepted}"


def shown(value):
    """The value as JSON, with every HIDDEN character escaped: a message never hides itself; and
    a URL's credentials as ***: a message never shows a token."""
    return "".join(
        f"\\u{ord(char):04x}" if ord(char) in HIDDEN or unseen(char) else char
        for char in json.dumps(without_credentials(value, "***@"), ensure_ascii=False)
    )


# user:password@ (or a token@) after an http(s) scheme, before the host
CREDENTIALS = re.compile(r"(?i)(https?://)[^/?#\s]*@")


def without_credentials(value, instead=""):
    """A text answer with every http(s) URL's credentials left out (or replaced by `instead`);
    any other value as it is."""
    return CREDENTIALS.sub(lambda match: match.group(1) + instead, value) if text(value) else value


# ---- single values -------------------------------------------------------------------

LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
NAME = re.compile(r"[a-z]([-a-z0-9]*[a-z0-9])?")  # also a DNS-1035 label: Service names
NUMBER = re.compile(r"0|[1-9][0-9]*")


def is_bool(value):
    return isinstance(value, bool)


def text(value):
    return isinstance(value, str)


def matches(pattern):
    compiled = re.compile(pattern)
    return lambda value: text(value) and compiled.fullmatch(value) is not None


def one_of(*choices):
    return lambda value: value in choices


def empty_or(check):
    return lambda value: value == "" or check(value)


def dns_label(max_length=63, pattern=LABEL):
    return lambda value: text(value) and len(value) <= max_length and pattern.fullmatch(value) is not None


def dns_name(value, min_labels=2):
    """A lowercase DNS name such as api.example.com: no scheme, port, path or wildcard."""
    if not text(value) or len(value) > 253:
        return False
    labels = value.split(".")
    return (
        len(labels) >= min_labels
        and all(len(label) <= 63 and LABEL.fullmatch(label) for label in labels)
        and not labels[-1].isdigit()  # an IPv4 address is not a DNS name
    )


def dns_subdomain(value):
    return dns_name(value, min_labels=1)


def whole_number(minimum, maximum=None):
    def check(value):
        if not text(value) or not NUMBER.fullmatch(value):
            return False
        return int(value) >= minimum and (maximum is None or int(value) <= maximum)

    return check


# Characters that break a line or hide what a text says: C0 and C1 controls (U+0085 is a
# line break to YAML and Python), the Unicode line and paragraph separators, and the
# bidirectional controls that make a README or values file read differently from what it is.
HIDDEN = {
    *range(0x00, 0x20),
    *range(0x7F, 0xA0),
    0x2028,
    0x2029,
    0x061C,
    0x200E,
    0x200F,
    *range(0x202A, 0x202F),
    *range(0x2066, 0x206A),
}


# Zero-width (non-)joiners are formatting characters that words need: Persian and Indic
# scripts, emoji sequences such as 👩‍💻.
JOINERS = {0x200C, 0x200D}

# Invisible, yet not formatting characters to Unicode (category Cf), so named one by one: the
# Hangul fillers (letters, Lo, that show as blank space: a name of nothing but fillers looks
# empty) and the combining grapheme joiner (a mark, Mn, with no shape of its own).
BLANKS = {
    0x115F: "a Hangul filler",
    0x1160: "a Hangul filler",
    0x3164: "a Hangul filler",
    0xFFA0: "a Hangul filler",
    0x034F: "the combining grapheme joiner",
}


def unseen(char):
    """Why `char` cannot stand in an answer, or None: a lone surrogate (Python's stand-in for a
    byte that is not UTF-8, from a terminal set to another encoding), a Unicode noncharacter, an
    invisible formatting character (zero-width space, BOM, soft hyphen, ...) or another invisible
    character (BLANKS)."""
    code = ord(char)
    if 0xDC80 <= code <= 0xDCFF:
        return f"byte 0x{code - 0xDC00:02X} is not UTF-8 (is the terminal set to UTF-8?)"
    if 0xD800 <= code <= 0xDFFF:
        return f"U+{code:04X} is a lone surrogate, not a character"
    if 0xFDD0 <= code <= 0xFDEF or code & 0xFFFE == 0xFFFE:
        return f"U+{code:04X} is a Unicode noncharacter"
    if code not in HIDDEN | JOINERS and unicodedata.category(char) == "Cf":
        return f"U+{code:04X} is an invisible formatting character"
    if code in BLANKS:
        return f"U+{code:04X} is {BLANKS[code]}, an invisible character"
    return None


def unreadable(value):
    """Why a text answer is not plain, visible UTF-8 text, with the character's position; or None."""
    if not text(value):
        return None
    return next((f"at character {n}, {why}" for n, why in enumerate(map(unseen, value), 1) if why), None)


def one_line(value):
    """Any text on one line. Jinja's openers are out: cookiecutter renders every answer as
    a Jinja template again when it runs without prompts, and so does `cruft update`, which
    would then fail on this project (TemplateSyntaxError) or change the text."""
    if not text(value):
        return False
    hidden = next((char for char in value if ord(char) in HIDDEN), None)
    if hidden is not None:
        return f"it contains U+{ord(hidden):04X}, a line break, control or bidirectional formatting character"
    opener = next((token for token in ("{{", "{%", "{#") if token in value), None)
    if opener:
        return f"it contains {opener!r}, which cookiecutter and `cruft update` render as Jinja"
    return True


PYTHON_VERSION = re.compile(r"3\.(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))?")


def python_version_form(value):
    return text(value) and PYTHON_VERSION.fullmatch(value) is not None


def python_version_supported(value):
    # Checked after python_version_form, so the value is 3.Y or 3.Y.Z.
    return int(value.split(".")[1]) >= 10


def of_the_template(rendered, reader, here=__file__):
    """A fact of the template's own files, as JSON: cookiecutter renders it into `rendered`
    through the template's Jinja extension (`template_identity(...)`, by the rendered checkout's
    own copy of flask_appstack_identity); imported as the template holds it (`from hooks import
    ...` in tasks.py and the tests, with the template's folder on sys.path), `rendered` is still
    Jinja, and that module's function `reader` reads the fact beside this file."""
    if not rendered.startswith("{{"):
        return json.loads(rendered)
    import flask_appstack_identity

    return getattr(flask_appstack_identity, reader)(os.path.join(os.path.dirname(os.path.abspath(here)), os.pardir))


# The pipenv releases the template pins with hashes, oldest first: one file each in its
# templates/pipenv/ (made by tools/pipenv_pins.py), the only ones scripts/lock.py and the image
# build install, and the only place that names them.
# {% endraw %}
PINNED_PIPENV = tuple(
    of_the_template(
        r"""{{ cookiecutter._template | default('') | template_identity('pipenvs') | tojson }}""", "pinned_pipenvs"
    )
)
# {% raw %}


def pipenv_version(value):
    return text(value) and value in PINNED_PIPENV


# pvc_size becomes persistence.size and pvc_mount_path persistence.mountPath: the chart's
# values.schema.json says which values it takes (its definitions byteQuantity and mountPath), and
# this hook checks the answers by those definitions, so that what it accepts the chart takes.
# {% endraw %}
CHART_RULES = of_the_template(
    r"""{{ cookiecutter._template | default('') | template_identity('chart_rules') | tojson }}""", "chart_rules"
)
# {% raw %}
if not CHART_RULES:  # a template bug, never an answer's
    sys.exit("flask-appstack: the template's chart/values.schema.json was not found: nothing was generated")

SCHEMA_TYPES = {"string": str, "integer": int}


def meets(schema, value):
    """Whether `value` is valid by `schema`, a definition of CHART_RULES, read with the keywords
    they use; any other keyword or type is refused, so that a schema this reading would get wrong
    fails the template's tests, never lets a value through. A pattern matches anywhere, as in JSON
    Schema, whose `$` is the end of the text; Python's `$` also matches before a final line break,
    so text with a line break is refused (no value these definitions describe holds one)."""
    if isinstance(value, str) and ("\n" in value or "\r" in value):
        return False
    if "$ref" in schema:
        schema = {**CHART_RULES[schema["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in schema.items() if k != "$ref"}}
    unknown = set(schema) - {"description", "type", "pattern", "maxLength", "minimum", "maximum", "not", "allOf"}
    if unknown:
        raise ValueError(f"the pre-generation hook reads no {', '.join(sorted(unknown))} of values.schema.json")
    types = schema.get("type", list(SCHEMA_TYPES))
    types = [types] if isinstance(types, str) else types
    if set(types) - set(SCHEMA_TYPES):
        raise ValueError(f"the pre-generation hook reads no type {', '.join(sorted(set(types) - set(SCHEMA_TYPES)))}")
    if not any(type(value) is SCHEMA_TYPES[name] for name in types):
        return False
    if isinstance(value, str) and (
        len(value) > schema.get("maxLength", len(value)) or not re.search(schema.get("pattern", ""), value)
    ):
        return False
    if isinstance(value, int) and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        return False
    return ("not" not in schema or not meets(schema["not"], value)) and all(
        meets(s, value) for s in schema.get("allOf", ())
    )


def by_the_chart(definition):
    def check(value):
        return text(value) and meets(CHART_RULES[definition], value)

    return check


def form_by_the_chart(definition):
    """The accepted form a definition of CHART_RULES describes, as the table words forms."""
    description = CHART_RULES[definition]["description"].rstrip(".")
    return description[:1].lower() + description[1:]


IPV4_CHARACTERS = set("0123456789.")


def host_and_port(value):
    """host or host:port, where host is a DNS name (one label allowed) or an IPv4 address."""
    if not text(value):
        return False
    host, colon, port = value.partition(":")
    if colon and not (NUMBER.fullmatch(port) and 1 <= int(port) <= 65535):
        return False
    if host and set(host) <= IPV4_CHARACTERS:  # anything else is no IPv4 address to ipaddress either
        import ipaddress

        try:
            ipaddress.IPv4Address(host)
            return True
        except ValueError:
            pass
    return dns_subdomain(host)


URL = re.compile(r"(?P<scheme>https?)://(?P<netloc>[^/?#@\s]+)(?P<path>/[A-Za-z0-9._~%+/-]*)?")


def index_url(value):
    """An http(s) URL with a host and a path; credentials come from PYPI_USER/PYPI_TOKEN."""
    if not text(value):
        return False
    if re.match(r"https?://[^/]*@", value):
        return "it contains credentials: they come from PYPI_USER and PYPI_TOKEN at build time"
    match = URL.fullmatch(value)
    return bool(match) and host_and_port(match.group("netloc"))


# The post-generation hook writes each hostspace's values to chart/values-<hostspace>.yaml, split
# from the template's chart/values-hostspaces.yaml, which it then removes: a hostspace named after
# that file would overwrite it and be removed with it. (tests/unit/test_rules.py: these are the
# template's chart/values-*.yaml.)
TEMPLATE_VALUES_FILES = ("hostspaces",)


def hostspace_list(value):
    if not text(value):
        return False
    names = [name.strip() for name in value.split(",")]
    if "" in names:
        return "an entry is empty"
    for name in names:
        if not dns_label()(name):
            return f"{name!r} is not a DNS-1123 label"
        if name in TEMPLATE_VALUES_FILES:
            return f"{name!r} is taken: chart/values-{name}.yaml is the template's file of every hostspace's values"
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        return f"{', '.join(duplicates)} appears more than once"
    return True


# The hostspaces and their platform hostnames, as the checks need them; the generated files take
# them from templates/appstack.jinja, and tests/unit/test_rules.py checks that both agree.


def hostspaces(answers):
    """The hostspaces in promotion order."""
    return [name.strip() for name in answers["hostspaces"].split(",")]


def platform_hostname(answers, hostspace, region=""):
    """The platform's hostname of a hostspace, or of one DR site's region in it."""
    return f"{answers['app_name']}-{hostspace}.{region + '.' if region else ''}{answers['platform_domain']}"


# The table: one line per variable of cookiecutter.json, in its order.
RULES = [
    Rule(
        "app_name",
        dns_label(40, NAME),
        "a DNS-1123 label of at most 40 characters: lowercase letters, digits and '-', "
        "starting with a letter and not ending with '-'",
    ),
    Rule(
        "appcode",
        matches(r"[a-z][a-z0-9]{0,9}"),
        "lowercase letters and digits, at most 10 characters, starting with a letter",
    ),
    Rule(
        "description",
        one_line,
        "one line of text, kept verbatim, without Jinja's {{, {% or {#, control characters (C0, C1), "
        "U+2028/U+2029 or bidirectional controls (U+202A-U+202E, U+2066-U+2069, U+200E, U+200F, U+061C); "
        "no answer may hold bytes that are not UTF-8, noncharacters, invisible formatting characters, "
        "Hangul fillers (U+115F, U+1160, U+3164, U+FFA0) or the combining grapheme joiner (U+034F)",
    ),
    Rule("python_version", python_version_form, "X.Y or X.Y.Z, such as 3.10 or 3.12.1"),
    Rule(
        "python_version",
        python_version_supported,
        "3.10 or newer: the pipeline accepts ≥ 3.5, the generated service needs ≥ 3.10 (gunicorn 27, whose threaded workers it builds on)",
    ),
    Rule(
        "pipenv_version",
        pipenv_version,
        f"a pipenv release the template pins with hashes: {' or '.join(PINNED_PIPENV)}",
    ),
    Rule("app_version", matches(r"4\.7\.(0|[1-9][0-9]*)"), "4.7.N, a SCALE pipeline v4.7 release such as 4.7.0"),
    Rule(
        "hostspaces",
        hostspace_list,
        "one or more DNS-1123 labels separated by commas, each once, in promotion order, such as 'dev, stage, prod' "
        "(not 'hostspaces', the name of the template's own chart/values-hostspaces.yaml)",
    ),
    Rule(
        "skip_hostspaces",
        empty_or(hostspace_list),
        "empty, or some of the hostspaces, separated by commas, such as 'stage'",
    ),
    Rule("platform_domain", dns_name, "a DNS name such as scale.example.com (no scheme, port or path)"),
    Rule("custom_url", empty_or(dns_name), "empty, or a DNS name such as orders.example.com (no scheme, port or path)"),
    Rule("hpa", is_bool, "true or false"),
    Rule("hpa_min_replicas", whole_number(1), "a whole number ≥ 1"),
    Rule("hpa_max_replicas", whole_number(1), "a whole number ≥ 1"),
    Rule("hpa_cpu_target", whole_number(1, 100), "a whole number from 1 to 100 (percent)"),
    Rule("pvc", is_bool, "true or false"),
    Rule(
        "pvc_size",
        by_the_chart("byteQuantity"),
        form_by_the_chart("byteQuantity"),
    ),
    Rule(
        "pvc_storage_class",
        empty_or(dns_subdomain),
        "empty for the cluster's default, or a storage class name (a DNS-1123 subdomain)",
    ),
    Rule("pvc_access_mode", one_of("ReadWriteOnce", "ReadWriteMany"), "ReadWriteOnce or ReadWriteMany"),
    Rule("pvc_mount_path", by_the_chart("mountPath"), form_by_the_chart("mountPath")),
    Rule("pod_anti_affinity", one_of("preferred", "required", "none"), "preferred, required or none"),
    Rule("dr", is_bool, "true or false"),
    Rule("dr_active_region", dns_label(), "a DNS-1123 label such as east"),
    Rule("dr_passive_region", dns_label(), "a DNS-1123 label such as west"),
    Rule(
        "docker_registry",
        host_and_port,
        "a host name, optionally with :port, such as registry.example.com or localhost:5000 (no scheme or path)",
    ),
    Rule(
        "package_index",
        empty_or(index_url),
        "empty for this machine's configured index, or an http(s) URL without credentials, "
        "such as https://artifactory.example.com/api/pypi/pypi/simple",
    ),
    Rule("pipeline_repository_type", one_of("git", "github"), "git (Azure Repos) or github"),
    Rule(
        "pipeline_repository",
        matches(r"[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*"),
        "<Azure DevOps project>/<repository>, such as SCALE/devops-pipelines",
    ),
    Rule(
        "pipeline_ref",
        matches(r"refs/(heads|tags)/(?!.*\.\.)(?!.*//)[A-Za-z0-9_][A-Za-z0-9._/-]*(?<![/.])"),
        "a branch or tag ref, such as refs/tags/v4.7.0 or refs/heads/release/4.7",
    ),
    Rule(
        "pipeline_service_connection",
        empty_or(matches(r"[A-Za-z0-9][A-Za-z0-9 ._-]{0,99}")),
        "empty, or the name of an Azure DevOps service connection (letters, digits, ' ', '.', '_', '-')",
    ),
    Rule("gunicorn_workers", whole_number(1), "a whole number ≥ 1"),
    Rule("lock_dependencies", is_bool, "true or false"),
]


# ---- combinations --------------------------------------------------------------------

# The chart rolls out with maxUnavailable 0 and maxSurge ≥ 1: a rollout runs one pod more.
ROLLOUT_SURGE = 1


def most_pods(answers):
    """The most pods that run at once: the HPA's maximum or, with the HPA off, the fixed
    count of pre-production and production (hpa_min_replicas, as values-<hostspace>.yaml sets
    it; there is always a production hostspace, the last), plus the rollout's extra pod."""
    replicas = answers["hpa_max_replicas"] if answers["hpa"] else answers["hpa_min_replicas"]
    return int(replicas) + ROLLOUT_SURGE


RELEASE_TAG = re.compile(r"refs/tags/v?(?P<version>[0-9]+\.[0-9]+\.[0-9]+)")


def pipeline_ref_is_the_pipelines_release(answers):
    """A release tag of the pipeline's templates names the release the pipeline runs: the
    templates of 4.7.2 under appVersion 4.7.3 is a pipeline nobody tested. A branch follows
    whatever it holds, on purpose."""
    tag = RELEASE_TAG.fullmatch(answers["pipeline_ref"])
    if tag and tag["version"] != answers["app_version"]:
        return f"the tag names release {tag['version']}, the pipeline runs {answers['app_version']}"
    return True


def service_connection_when_needed(answers):
    """Azure Pipelines reaches a GitHub repository only through a service connection."""
    if answers["pipeline_repository_type"] == "github" and not answers["pipeline_service_connection"]:
        return "a github repository is reached through a service connection"
    return True


def min_not_above_max(answers):
    return int(answers["hpa_min_replicas"]) <= int(answers["hpa_max_replicas"])


def volume_can_schedule(answers):
    if not (
        answers["pvc"] and answers["pvc_access_mode"] == "ReadWriteOnce" and answers["pod_anti_affinity"] == "required"
    ):
        return True
    return (
        f"up to {most_pods(answers)} pods run at once (replicas plus the rollout's extra pod), "
        "but a ReadWriteOnce volume attaches to one node and required anti-affinity never "
        "puts two pods on one node, so every pod after the first stays Pending"
    )


def platform_hostnames(answers):
    """Every hostname the chart serves besides custom_url: platform, then DR sites."""
    names = [platform_hostname(answers, space) for space in hostspaces(answers)]
    if answers["dr"]:
        names += [
            platform_hostname(answers, space, answers[region])
            for space in hostspaces(answers)
            for region in ("dr_active_region", "dr_passive_region")
        ]
    return names


def custom_url_is_its_own(answers):
    if answers["custom_url"] in platform_hostnames(answers):
        return "it is already a platform or DR site hostname of this service"
    return True


def hostnames_fit_dns(answers):
    app = answers["app_name"]
    for space in hostspaces(answers):
        if len(f"{app}-{space}") > 63:
            return f"{app}-{space} is longer than a DNS label's 63 characters"
    too_long = [name for name in platform_hostnames(answers) if len(name) > 253]
    return f"{too_long[0]} is longer than 253 characters" if too_long else True


# The image's build stage installs pipenv on the chosen Python, and the lock resolves on it
# too, so the two must fit: pipenv's Requires-Python is >= 3.10 from 2025.1 on, and before
# 2023.4.20 pipenv imports `imp` / pkgutil.ImpImporter, which Python 3.12 removed.
PIPENV_RUNS_ON_PYTHON_3_12 = (2023, 4, 20)


def pipenv_supports_python(answers):
    pipenv = tuple(int(part) for part in re.findall(r"[0-9]+", answers["pipenv_version"])[:3])
    python = tuple(int(part) for part in answers["python_version"].split(".")[:2])
    if pipenv < PIPENV_RUNS_ON_PYTHON_3_12 and python >= (3, 12):
        return f"pipenv {answers['pipenv_version']} does not run on Python 3.12 or newer"
    return True


def skipped_hostspaces_exist(answers):
    unknown = [
        name.strip() for name in answers["skip_hostspaces"].split(",") if name.strip() not in hostspaces(answers)
    ]
    if answers["skip_hostspaces"].strip() and unknown:
        return f"{', '.join(unknown)} is not one of the hostspaces ({', '.join(hostspaces(answers))})"
    return True


def regions_differ(answers):
    return not answers["dr"] or answers["dr_active_region"] != answers["dr_passive_region"]


COMBINATIONS = [
    Combination(("hpa_min_replicas", "hpa_max_replicas"), min_not_above_max, "hpa_min_replicas ≤ hpa_max_replicas"),
    Combination(
        ("pvc", "pvc_access_mode", "pod_anti_affinity"),
        volume_can_schedule,
        "a volume the pods can share: ReadWriteMany, or preferred (or no) anti-affinity",
        needs=("hpa", "hpa_min_replicas", "hpa_max_replicas"),
    ),
    Combination(
        ("custom_url",),
        custom_url_is_its_own,
        "a hostname other than <app_name>-<hostspace>.[<region>.]<platform_domain>",
        needs=("app_name", "hostspaces", "platform_domain", "dr", "dr_active_region", "dr_passive_region"),
    ),
    Combination(
        ("app_name", "hostspaces"),
        hostnames_fit_dns,
        "<app_name>-<hostspace> of at most 63 characters and hostnames of at most 253",
        needs=("platform_domain", "dr", "dr_active_region", "dr_passive_region"),
    ),
    Combination(
        ("python_version", "pipenv_version"),
        pipenv_supports_python,
        "a pipenv release that runs on this Python: 2023.4.20 or newer for Python 3.12 and newer",
    ),
    Combination(("dr", "dr_active_region", "dr_passive_region"), regions_differ, "two different regions when dr is on"),
    Combination(("hostspaces", "skip_hostspaces"), skipped_hostspaces_exist, "skip_hostspaces names hostspaces only"),
    Combination(
        ("app_version", "pipeline_ref"),
        pipeline_ref_is_the_pipelines_release,
        "refs/tags/v<app_version>, the templates' release of the pipeline's version (the default), "
        "or a branch ref such as refs/heads/release/4.7 to follow a branch on purpose",
    ),
    Combination(
        ("pipeline_repository_type", "pipeline_service_connection"),
        service_connection_when_needed,
        "a service connection name with pipeline_repository_type github",
    ),
]


# ---- derived names -------------------------------------------------------------------

# cookiecutter.json derives these private names from the answers with Jinja. A replay file,
# or answers passed with them, holds them already filled in: an edited app_name would keep
# the old chart and image names. So each must still be what its answers give (the same
# formulas as cookiecutter.json's; tests/unit/test_rules.py renders both and compares).
DERIVED = {
    "__python_minor": (("python_version",), lambda a: ".".join(a["python_version"].split(".")[:2])),
    "__python_full": (
        ("python_version",),
        lambda a: a["python_version"] if a["python_version"].count(".") == 2 else a["python_version"] + ".0",
    ),
    "__chart_name": (("app_name",), lambda a: a["app_name"]),
    "__image_name": (("appcode", "app_name"), lambda a: f"{a['appcode']}/{a['app_name']}"),
}


def stale_derived_names(answers, failed):
    """A Problem for each derived name that its answers no longer give."""
    found = []
    for name, (sources, derive) in DERIVED.items():
        if name not in answers or failed.intersection(sources):
            continue
        expected = derive(answers)
        if answers[name] != expected:
            found.append(
                Problem(
                    (name,),
                    (answers[name],),
                    f"{json.dumps(expected)} (derived from {' and '.join(sources)}): leave {name} out of the "
                    "replay file or the answers, cookiecutter derives it",
                    f"it no longer agrees with {' and '.join(sources)}",
                )
            )
    return found


# ---- running the tables --------------------------------------------------------------


def problems(answers, alone=False):
    """Every problem with these answers (a dict of the cookiecutter context), in table order.
    With `alone`, only the RULES of the variables `answers` holds: what some answers say of
    themselves, without the others (`tasks.py generate` checks those given before it starts)."""
    found, failed = [], set()
    for rule in RULES:
        if rule.variable in failed or (alone and rule.variable not in answers):
            continue  # one line per variable: its first failing rule
        value = answers.get(rule.variable)
        result = (unreadable(value) or rule.check(value)) if rule.variable in answers else "it is missing"
        if result is not True:
            failed.add(rule.variable)
            reason = result if isinstance(result, str) else ""
            found.append(Problem((rule.variable,), (value,), rule.accepted, reason))
    if alone:
        return found
    for combination in COMBINATIONS:
        if failed.intersection(combination.variables + combination.needs):
            continue
        result = combination.check(answers)
        if result is not True:
            values = tuple(answers[name] for name in combination.variables)
            reason = result if isinstance(result, str) else ""
            found.append(Problem(combination.variables, values, combination.accepted, reason))
    return found + stale_derived_names(answers, failed)


def answer_text(value):
    """An answer as cookiecutter's command line takes it: key=yes/no for the booleans."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def rerun_command(answers, cwd, generate=None, overwrite=False):
    """A shell command that generates again with every answer given and asks nothing; with
    `overwrite`, over the directory that is there (-f). No URL in it holds credentials: a token
    would stay in the shell's history and the terminal's log.

    Started by `tasks.py generate`, whose command is `generate` (a list of words: cruft is
    then in the template's .venv, not on PATH), that command; else cruft (it puts _commit
    into the context) gets `cruft create`, so that .cruft.json is written, and cookiecutter
    gets `cookiecutter`. They run the template as the user named it:
    cruft stores an absolute path or the URL, cookiecutter a path relative to where it ran,
    where the command is printed. The hook runs in the project folder, which cookiecutter
    removes after a failure: its parent is the output folder."""
    order = list(dict.fromkeys(rule.variable for rule in RULES))  # cookiecutter.json's; tojson sorts
    given = {
        key: without_credentials(answers[key])
        for key in sorted(answers, key=lambda k: order.index(k) if k in order else len(order))
        if not key.startswith("_")
    }
    if given.get("pipeline_ref") == f"refs/tags/v{given.get('app_version')}":
        del given["pipeline_ref"]  # it follows app_version, also when that is the answer corrected
    template = without_credentials(str(answers.get("_template") or answers.get("_repo_dir") or "<template>"))
    output_dir = answers.get("_output_dir") or os.path.dirname(os.path.abspath(cwd))
    force = ["-f" if generate else "--overwrite-if-exists"] if overwrite else []
    if generate:
        words = [*generate, "--no-input", *force, "--output-dir", output_dir]
        if answers.get("_checkout"):
            words += ["--checkout", str(answers["_checkout"])]
        words += [f"{key}={answer_text(value)}" for key, value in given.items()]
    elif "_commit" in answers:
        words = [
            "cruft",
            "create",
            "--no-input",
            *force,
            "--output-dir",
            output_dir,
            "--extra-context",
            json.dumps(given, ensure_ascii=False),
            template,
        ]
    else:
        words = ["cookiecutter", "--no-input", *force, "--output-dir", output_dir]
        if answers.get("_checkout"):
            words += ["--checkout", str(answers["_checkout"])]
        words += [template, *(f"{key}={answer_text(value)}" for key, value in given.items())]
    import shlex

    return " ".join(shlex.quote(word) for word in words)


def report(found, answers=None, cwd=".", generate=None, command=None):
    """The refusal: every problem, then the command that generates again (`command`, else
    rerun_command's), which holds every answer given."""
    lines = [f"flask-appstack: {len(found)} answer(s) cannot be used, so nothing was generated:"]
    lines += [f"  - {problem}" for problem in found]
    command = command or (rerun_command(answers, cwd, generate) if answers is not None else None)
    if command is None:
        lines.append("Run cookiecutter (or cruft create) again with these answers corrected.")
    else:
        asks = ": it asks nothing." if " --no-input " in f" {command} " else "."
        lines.append(f"Correct the value(s) above in this command, which holds every answer given, and run it{asks}")
        lines.append(command)
    return "\n".join(lines)


# ---- the directory the project goes to ------------------------------------------------

# Set by `tasks.py generate`: its own command (JSON words), which the rerun command starts
# with, and a file for the refusal, which it prints last, instead of cookiecutter's traceback.
GENERATE_VARIABLE = "APPSTACK_GENERATE_COMMAND"
MESSAGE_VARIABLE = "APPSTACK_MESSAGE_FILE"


def existing_files(directory):
    """The files already in the directory cookiecutter generates into (a fresh one is
    empty), relative to it; a .git folder alone is not a project. Linked folders are followed,
    each once (cookiecutter -f writes through a link, into the folder it names, such as another
    repository's `source`), and one that holds no file counts as one, `name/`."""
    found, seen = [], {os.path.realpath(directory)}

    def relative(path):
        return os.path.relpath(path, directory).replace(os.sep, "/")

    for root, folders, files in os.walk(directory, followlinks=True):
        followed = [os.path.realpath(os.path.join(root, name)) for name in folders]
        folders[:] = [
            name
            for name, real in zip(folders, followed)
            if real not in seen and not seen.add(real) and not (root == str(directory) and name == ".git")
        ]
        found += [relative(os.path.join(root, name)) for name in files]
        if os.path.islink(root) and not files and not folders:
            found.append(relative(root) + "/")
    return sorted(found)


# The mark of a project being generated: the pre-generation hook writes it before cookiecutter
# writes any file, the post-generation hook removes it once it holds its stop signals (from then on
# it finishes the project, stopped or not). A project that holds it was interrupted before it was
# complete: it says so, with the command that generates it again over what is there (-f), which
# refusal() lets through.
INCOMPLETE = "GENERATION-INCOMPLETE.txt"
# Set by `tasks.py generate`: a file for the project's directory, where it looks for INCOMPLETE
# when the generation ends without success.
PROJECT_VARIABLE = "APPSTACK_PROJECT_FILE"


def incomplete_notice(directory, answers, generate=None):
    """What INCOMPLETE says."""
    return "\n".join(
        [
            f"flask-appstack: {directory} is NOT a complete project: generating it was interrupted,",
            "so files are missing and nothing in it is ready to use. Generate it again, over what is there,",
            "with this command, which holds every answer given and asks nothing (the generation removes",
            "this file once the project is complete):",
            rerun_command(answers, directory, generate, overwrite=True),
        ]
    )


def mark_incomplete(directory, answers, generate=None):
    with open(os.path.join(directory, INCOMPLETE), "w", encoding="utf-8", errors="backslashreplace") as mark:
        mark.write(incomplete_notice(directory, answers, generate) + "\n")
    if os.environ.get(PROJECT_VARIABLE):
        with open(os.environ[PROJECT_VARIABLE], "w", encoding="utf-8", errors="surrogateescape") as project:
            project.write(directory)


def refusal(directory, files):
    """None when the project may be generated into `directory`, which holds `files`
    (existing_files): none, or a generation that was interrupted (INCOMPLETE); else why not
    and what to do instead."""
    if not files or INCOMPLETE in files:
        return None
    shown = ", ".join(files[:5]) + (f" and {len(files) - 5} more" if len(files) > 5 else "")
    return "\n".join(
        [
            f"flask-appstack: {directory} already holds files ({shown}), so nothing was generated:",
            "  generating over them would overwrite your code, values files and Pipfile.",
            "  To take the template's changes into a project made from it, run `make update` there",
            "  (cruft update: a three-way merge that keeps your edits). To start afresh, generate",
            "  into another directory (--output-dir).",
        ]
    )


# ---- cookiecutter's replay file --------------------------------------------------------

# cookiecutter (not cruft) writes every answer into its replay file before the hooks run:
# <replay_dir>/<the template folder's name>.json, replay_dir being the user config's (the file
# of --config-file, else COOKIECUTTER_CONFIG's, else ~/.cookiecutterrc's; ~/.cookiecutter_replay
# by default). A URL's credentials in an answer (refused) are taken out of it again.


def cookiecutters_command_line():
    """The words of the program that runs this hook (cookiecutter) and the folders a relative path
    among them may be relative to, where the system shows them (/proc); else ([], []). cookiecutter
    runs the hook from the template's folder: where it was started is the shell's PWD."""
    parent = f"/proc/{os.getppid()}"
    try:
        with open(f"{parent}/cmdline", "rb") as words, open(f"{parent}/environ", "rb") as environ:
            pwd = [os.fsdecode(each[4:]) for each in environ.read().split(b"\0") if each.startswith(b"PWD=")]
            return [os.fsdecode(word) for word in words.read().split(b"\0")], [*pwd, os.readlink(f"{parent}/cwd")]
    except OSError:
        return [], []


def replay_files(answers):
    """Where cookiecutter may have written this bake's replay file, one path per user config it may have read."""
    try:
        from cookiecutter.config import get_user_config
    except ImportError:  # not run by cookiecutter
        return []
    words, folders = cookiecutters_command_line()
    configs = [{}, {"default_config": True}]
    for word, following in zip(words, words[1:] + [""]):
        option, equals, value = word.partition("=")
        given = following if word == "--config-file" else value if option == "--config-file" and equals else ""
        configs += [{"config_file": os.path.join(folder, given)} for folder in folders if given]
    folders = set()
    for config in configs:
        with contextlib.suppress(Exception):  # a config cookiecutter could not read either: no replay there
            folders.add(get_user_config(**config)["replay_dir"])
    name = os.path.basename(os.path.abspath(str(answers.get("_repo_dir") or ".")))
    return sorted(os.path.join(folder, f"{name}.json") for folder in folders)


def scrubbed(data):
    """JSON data with every URL's credentials left out."""
    if isinstance(data, dict):
        return {key: scrubbed(value) for key, value in data.items()}
    if isinstance(data, list):
        return [scrubbed(value) for value in data]
    return without_credentials(data)


def forget_credentials(answers):
    """Write this bake's replay file again without the credentials its answers hold, if any."""
    if not any(CREDENTIALS.search(value) for value in answers.values() if text(value)):
        return
    for path in replay_files(answers):
        try:
            with open(path, encoding="utf-8") as file:
                replay = json.load(file)
            if replay["cookiecutter"].get("_output_dir") != answers.get("_output_dir"):
                continue  # another bake's
            with open(path + ".new", "w", encoding="utf-8") as file:
                json.dump(scrubbed(replay), file, indent=2)
            os.replace(path + ".new", path)
        except (OSError, ValueError, KeyError, AttributeError, TypeError):
            continue


# ---- what the hook leaves behind --------------------------------------------------------

# cookiecutter runs each hook from a copy rendered with the answers, a file it writes into the
# temporary folder and never removes: two a bake, which pile up there, answers and all. Python has
# read the copy when the hook starts: it removes itself.
COOKIECUTTERS_COPY = re.compile(r"tmp[a-z0-9_]{8}\.py")


def remove_cookiecutters_copy(path):
    """Remove `path` when it is cookiecutter's copy of a hook (never the template's hooks/ file)."""
    if COOKIECUTTERS_COPY.fullmatch(os.path.basename(path)):
        try:
            os.remove(path)
        except OSError:
            pass


# {% endraw %}
def main():
    # ''' on purpose: Jinja's tojson writes every ' as \u0027, so no answer can close it.
    answers = json.loads(r'''{{ cookiecutter | tojson }}''')  # fmt: skip
    sys.stderr.reconfigure(errors="backslashreplace")
    generate = json.loads(os.environ.get(GENERATE_VARIABLE) or "null")
    forget_credentials(answers)
    found = problems(answers)
    refused = (
        report(found, answers, os.getcwd(), generate) if found else refusal(os.getcwd(), existing_files(os.getcwd()))
    )
    if refused:
        print(refused, file=sys.stderr)
        if os.environ.get(MESSAGE_VARIABLE):  # tasks.py prints it last, without cookiecutter's traceback
            with open(os.environ[MESSAGE_VARIABLE], "w", encoding="utf-8", errors="backslashreplace") as message:
                message.write(refused + "\n")
        return 1
    mark_incomplete(os.getcwd(), answers, generate)
    return 0


if __name__ == "__main__":
    remove_cookiecutters_copy(__file__)
    sys.exit(main())
