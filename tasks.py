#!/usr/bin/env python3
"""flask-appstack's single entry point: `python3 tasks.py generate|test|bench [args]`.

Standard library only, so it runs on a fresh machine with nothing but Python >= 3.9.
Each command first makes `.venv` with the pinned tools it needs (once; again only when
their requirements change): `generate` only cookiecutter and cruft (requirements/generate.txt),
`test` and `bench` the whole test toolset (requirements/dev.txt, which includes them). Then:

  generate [cookiecutter args]  `cruft create` from this clone's origin at its newest release
                                tag, so the project records the template's URL and release
                                (.cruft.json, .flask-appstack.json) for `make update`;
                                takes cookiecutter's arguments (e.g. --no-input -o ~/src key=value)
  test [pytest args]            the template's whole test suite, in parallel
  test --fast [pytest args]     its unit tier only (tests/unit: no real tool, under 30 s)
  bench [args]                  the benchmarks (benchmarks/run.py)
  docs [--check]                writes README.md's variable table from the pre-generation rules
                                and cookiecutter.json (no tools needed); --check fails when stale
"""

import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

# The template's reading of git and of release tags, as generated projects record them (standard library).
from flask_appstack_identity import git, newest_release_tag, without_credentials

HERE = Path(__file__).resolve().parent
VENV = HERE / ".venv"
GENERATE = HERE / "requirements" / "generate.txt"
REQUIREMENTS = HERE / "requirements" / "dev.txt"


def _venv_python():
    return VENV / "bin" / "python"


def _make_venv(with_pip=True):
    """Create .venv (without pip inside when another pip installs into it); where Python lacks
    its venv module, or its ensurepip (Debian's python3 without python3-venv), the bare-machine
    provisioning installs it first (as root), or the user is told to."""
    make = [sys.executable, "-m", "venv", "--clear", *([] if with_pip else ["--without-pip"]), str(VENV)]
    try:
        subprocess.run(make, check=True)
    except subprocess.CalledProcessError:
        shutil.rmtree(VENV, ignore_errors=True)
        from tools import bare_machine  # standard library only, like this file

        if not bare_machine.provide_venv_module():
            sys.exit("tasks.py: Python's venv module is missing: install python3-venv and try again.")
        subprocess.run(make, check=True)


def _outer_pip():
    """This Python's own pip, as the command that installs into .venv, when it can (pip 22.3 and
    newer take --python); else None. It saves .venv a pip of its own: ensurepip installs and
    compiles pip (and, before Python 3.12, setuptools, which every Python start then imports)."""
    import importlib.metadata
    import importlib.util

    try:
        version = importlib.metadata.version("pip") if importlib.util.find_spec("pip") else ""
    except importlib.metadata.PackageNotFoundError:
        version = ""
    if tuple(int(part) for part in re.findall(r"[0-9]+", version)[:2]) < (22, 3):
        return None
    return [sys.executable, "-m", "pip", "--python", str(_venv_python())]


def _digest(requirements):
    """Of a requirements file, the files it includes (-r) and this Python."""
    data = requirements.read_bytes()
    for line in requirements.read_text().splitlines():
        if line.startswith("-r "):
            data += _digest(requirements.parent / line[3:].strip()).encode()
    return hashlib.sha256(data + sys.version.encode()).hexdigest()


def ensure_venv(requirements=REQUIREMENTS):
    """Install the pinned tools into .venv unless they, or the whole toolset, are there."""
    stamp = VENV / ".requirements.sha256"
    enough = {_digest(requirements), _digest(REQUIREMENTS)}
    if stamp.exists() and stamp.read_text() in enough and _venv_python().exists():
        return
    what = "cookiecutter and cruft" if requirements == GENERATE else "the test tools"
    print(
        f"tasks.py: installing {what} ({requirements.relative_to(HERE)}) into .venv, once ...",
        file=sys.stderr,
        flush=True,
    )
    # The test tools keep a pip in .venv (the suite runs `python -m pip`); generating needs none.
    outer = _outer_pip() if requirements == GENERATE else None
    _make_venv(with_pip=outer is None)
    pip = outer or [str(_venv_python()), "-m", "pip"]
    # --no-compile: Python compiles what it imports when it first does, not the whole toolset now.
    options = ["install", "--quiet", "--disable-pip-version-check", "--no-compile"]
    subprocess.run([*pip, *options, "-r", str(requirements)], check=True)
    if requirements == REQUIREMENTS and os.environ.get("PYTHONDONTWRITEBYTECODE"):
        # Python writes no bytecode here, so each of the suite's processes would compile what it
        # imports again: the test tools' is compiled once, now, on every core. (Not for generating:
        # that would cost a first generate more than compiling what cruft imports.)
        subprocess.run([str(_venv_python()), "-m", "compileall", "-qq", "-j", "0", str(VENV / "lib")], check=False)
    stamp.write_text(_digest(requirements))


# cookiecutter's options and what cruft create calls them; key=value answers become
# --extra-context. Options that take a value are listed with it.
CRUFT_OPTIONS = {
    "--no-input": "--no-input",
    "-f": "--overwrite-if-exists",
    "--overwrite-if-exists": "--overwrite-if-exists",
    "--default-config": "--default-config",
}
CRUFT_VALUE_OPTIONS = {
    "-o": "--output-dir",
    "--output-dir": "--output-dir",
    "--config-file": "--config-file",
    "-c": "--checkout",
    "--checkout": "--checkout",
}


def cruft_create_args(argv):
    """cookiecutter's command line (options, key=value answers) as cruft create's, or None
    when it holds something cruft does not take."""
    args, answers, words = [], {}, list(argv)
    while words:
        word = words.pop(0)
        option, equals, value = word.partition("=")
        if word in CRUFT_OPTIONS:
            args.append(CRUFT_OPTIONS[word])
        elif option in CRUFT_VALUE_OPTIONS and (equals or words):
            args += [CRUFT_VALUE_OPTIONS[option], value if equals else words.pop(0)]
        elif equals and not word.startswith("-"):
            answers[option] = value
        else:
            return None
    if answers:
        args += ["--extra-context", json.dumps(answers)]
    return args


def template_source(template=HERE):
    """(where to generate from, the release tag to check out or None, a note for the user).

    The template's canonical home is this clone's `origin`, at its newest release tag: the
    project records that URL, so it finds later releases from any machine (make outdated,
    make update), and never unreleased work of this folder or of main."""
    origin = git(template, "remote", "get-url", "origin")
    if origin:
        # A token in the URL would land in .cruft.json: git's credential helper supplies it instead.
        origin = without_credentials(origin)
        listed = git(template, "ls-remote", "--tags", "--refs", "origin")
        if listed is None:
            sys.exit(f"tasks.py: cannot list the release tags of origin ({origin}): is it reachable?")
        tag = newest_release_tag(line.rpartition("refs/tags/")[2] for line in listed.splitlines())
        if tag is None:
            return origin, None, f"tasks.py: {origin} has no release tag yet: generating from its default branch."
        return origin, tag, f"tasks.py: generating from {origin} at {tag}, its newest release (not from this folder)."
    tag = newest_release_tag((git(template, "tag", "--list", "v*") or "").split())
    fix = "python3 scripts/update.py template <the template's URL>"
    return (
        str(template),
        tag,
        f"tasks.py: this clone has no `origin` remote, so the project records this folder ({template}) as "
        f"its template{f', at {tag}' if tag else ''}; once the template has a home, run in the project: {fix}",
    )


def _venv_program(name):
    """A console script of .venv (cruft, cookiecutter). Run so, not as `python -m name`, which
    puts the current folder first on sys.path: from the clone's root, its own `tools` package
    would hide the one of the release being generated, whose cookiecutter.json may name its
    extension there (2.0.0's is tools.release.TemplateIdentity)."""
    return str(VENV / "bin" / name)


def generate_command(argv, template=HERE, notes=None):
    """The command (.venv's cruft create) with these (cookiecutter's) arguments, from the
    template's home at its newest release; plain cookiecutter where cruft cannot work. Notes
    for the user go to `notes`, else to standard error."""
    say = notes.append if notes is not None else (lambda note: print(note, file=sys.stderr))
    is_repository = git(template, "rev-parse", "--is-inside-work-tree") == "true"
    cruft_args = cruft_create_args(argv)
    if is_repository and cruft_args is not None:
        source, tag, note = template_source(template)
        say(note)
        checkout = ["--checkout", tag] if tag and "--checkout" not in cruft_args else []
        return [_venv_program("cruft"), "create", *checkout, *cruft_args, source]
    why = "this template is not a git repository" if not is_repository else f"cruft takes no {' '.join(argv)}"
    say(
        f"tasks.py: generating with cookiecutter from this folder ({why}): the project gets no .cruft.json; "
        "its docs/updates.md shows the `cruft link` that adds one."
    )
    return [_venv_program("cookiecutter"), str(template), *argv]


QUICKSTART = ["python3", str(HERE / "tasks.py"), "generate"]


def generate(args, env, notes=()):
    """Run the generation (`args`: generate_command's). Its standard error is held back: when
    it fails, one message is printed, without cookiecutter's or cruft's traceback: the
    pre-generation hook's refusal (the command that runs again with the answer corrected last),
    the mark of a project whose generation was stopped (the command that completes it), or the
    refusal of a directory that exists. A stop signal reaches the generation, which ends as
    the hooks make it end; then the exit status is 128 + the signal's number."""
    import signal
    import tempfile

    from hooks import pre_gen_project as pre

    with tempfile.TemporaryDirectory(prefix="flask-appstack-") as folder:
        message, project = Path(folder) / "refusal.txt", Path(folder) / "project.txt"
        env = dict(
            env,
            **{
                pre.GENERATE_VARIABLE: json.dumps(QUICKSTART),
                pre.MESSAGE_VARIABLE: str(message),
                pre.PROJECT_VARIABLE: str(project),
                # cruft's clone of the template and cookiecutter's copies of the hooks go here, and
                # go with it, however the generation ends (a SIGTERM or SIGHUP ends cruft at once).
                "TMPDIR": folder,
            },
        )
        for note in notes:  # first: where the project comes from, before what comes of it
            print(note, file=sys.stderr, flush=True)
        process = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True, errors="backslashreplace")
        stopped = []

        def pass_on(signum, frame):  # Ctrl-C reaches the whole job from the terminal: the others, pass them on
            stopped[:] = stopped or [signum]
            if signum != signal.SIGINT:
                process.send_signal(signum)

        stops = [getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name)]
        before = {each: signal.signal(each, pass_on) for each in stops}
        try:
            errors = process.communicate()[1]
        finally:
            for each, handler in before.items():
                signal.signal(each, handler)
        refused = message.read_text() if message.exists() else ""
        mark = Path(project.read_text()) / pre.INCOMPLETE if project.exists() else None
    status = process.returncode
    incomplete = mark.read_text(errors="replace") if mark and mark.is_file() else ""
    existing = re.search(r'OutputDirExistsException: Error: "(.*)" directory already exists', errors)
    if status and (refused or incomplete):
        sys.stderr.write(refused or incomplete)
    elif status and existing:
        sys.stderr.write(directory_refusal(Path(existing.group(1))) + "\n")
    else:
        sys.stderr.write(errors)
    if stopped or status < 0:
        return 128 + (stopped[0] if stopped else -status)
    return status


# ---- generate: what is refused before cookiecutter runs --------------------------------------

# cookiecutter's words for a yes/no question's answers (YesNoPrompt), and the options of its
# command line that take a value.
YES, NO = ("1", "true", "t", "yes", "y", "on"), ("0", "false", "f", "no", "n", "off")
VALUE_OPTIONS = {**CRUFT_VALUE_OPTIONS, "--replay-file": "--replay-file", "--directory": "--directory"}


def given_answers(argv):
    """({key: value} of the key=value answers, {option: value or True}) of generate's arguments."""
    answers, options, words = {}, {}, list(argv)
    while words:
        word = words.pop(0)
        option, equals, value = word.partition("=")
        if word.startswith("-") and option in VALUE_OPTIONS:
            options[VALUE_OPTIONS[option]] = value if equals else words.pop(0) if words else ""
        elif word.startswith("-"):
            options[CRUFT_OPTIONS.get(word, word)] = True
        elif equals:
            answers[option] = value
    return answers, options


def user_default_context(options, environ):
    """The default_context of the cookiecutter user config these options have cookiecutter read
    (as cookiecutter reads it: .venv's cookiecutter, for YAML), or {}."""
    if options.get("--default-config"):
        return {}
    read = "import json, sys; from cookiecutter.config import get_user_config as c; "
    read += "print(json.dumps(c(config_file=sys.argv[1] or None)['default_context'], default=str))"
    done = subprocess.run(
        [str(_venv_python()), "-I", "-c", read, options.get("--config-file", "")],
        capture_output=True,
        text=True,
        env=environ,
    )
    return json.loads(done.stdout) if done.returncode == 0 else {}


def as_cookiecutter_takes(question, value):
    """An answer as cookiecutter hands it to the hooks: a yes/no question's word as a boolean
    (a word it does not know stays, for the rule to refuse: cookiecutter would end in a traceback),
    text as text."""
    if isinstance(question, bool) and isinstance(value, str):
        word = value.strip().lower()
        return True if word in YES else False if word in NO else value
    return value if isinstance(value, (bool, list, dict)) or value is None else str(value)


def answers_refusal(argv, from_config):
    """The pre-generation hook's refusal (its rules: hooks/pre_gen_project.py) of every answer given
    that is wrong by itself, or None. Given: key=value, and the user config's default_context;
    answers with Jinja are left to the hook, after cookiecutter rendered them. cookiecutter turns
    yes/no words into booleans and checks a choice before any hook runs, and ends in a traceback on
    one it cannot take (hpa=maybe, pod_anti_affinity=always), or drops the config's answers from it on.
    `from_config`: user_default_context()."""
    from hooks import pre_gen_project as pre

    given = given_answers(argv)[0]
    questions = json.loads((HERE / "cookiecutter.json").read_text(encoding="utf-8"))
    asked = [key for key in questions if not key.startswith("_")]
    unknown = [key for key in given if key not in asked]
    if unknown:  # cookiecutter would drop a mistyped answer without a word, and take the default
        return "\n".join(
            [f"flask-appstack: {len(unknown)} answer(s) name no question of the template, so nothing was generated:"]
            + [f"  - {key}={given[key]}: no question is called {key}" for key in unknown]
            + [f"The questions: {', '.join(asked)}."]
        )
    answers = {
        key: as_cookiecutter_takes(questions[key], value)
        for key, value in {**from_config, **given}.items()
        if key in questions and not key.startswith("_") and not re.search(r"\{[{%#]", str(value))
    }
    found = pre.problems(answers, alone=True)
    if not found:
        return None
    # The command: the one given, the config's wrong answers added, so that they are corrected there.
    added = [f"{problem.variables[0]}={pre.answer_text(problem.values[0])}" for problem in found]
    added = [word for word in added if word.partition("=")[0] not in given]
    words = [pre.without_credentials(word) for word in [*QUICKSTART, *argv, *added]]
    return pre.report(found, command=" ".join(shlex.quote(word) for word in words))


def directory_refusal(directory):
    """Why generating into `directory`, which exists, is refused (without -f, cookiecutter refuses
    any, and cruft in a traceback): the pre-generation hook's refusal, or the mark of a generation
    that was stopped (whose command generates over it), or what to add for an empty one."""
    from hooks import pre_gen_project as pre

    files = pre.existing_files(directory)
    if pre.INCOMPLETE in files:
        return (directory / pre.INCOMPLETE).read_text(errors="replace").rstrip("\n")
    return pre.refusal(directory, files) or (
        f"flask-appstack: {directory} exists, so nothing was generated: it holds no files (a .git folder "
        "alone does not count); to generate into it, add -f to the command."
    )


def target_refusal(argv, from_config):
    """directory_refusal() of the project's directory, before anything runs, when it is known
    (--no-input: the answer given, the config's, or the template's default) and exists, without -f
    (with -f, the hook looks into it); else None."""
    given, options = given_answers(argv)
    if "--overwrite-if-exists" in options or "--no-input" not in options:
        return None
    questions = json.loads((HERE / "cookiecutter.json").read_text(encoding="utf-8"))
    name = str(given.get("app_name") or from_config.get("app_name") or questions["app_name"])
    directory = Path(options.get("--output-dir") or ".") / name
    return directory_refusal(directory) if "{" not in name and (directory.exists() or directory.is_symlink()) else None


# ---- docs: README.md's variable table --------------------------------------------------------

README = HERE / "README.md"
# The table is written between these markers; the text around it is kept as it is.
TABLE_START = "<!-- variables: written by `python3 tasks.py docs`, do not edit -->"
TABLE_END = "<!-- end of variables -->"


def _default_cell(value):
    """cookiecutter.json's default as the table shows it: a choice's first, yes/no, `<name>` for
    another answer it is made from."""
    if isinstance(value, list):
        value = value[0]
    if isinstance(value, bool):
        value = "yes" if value else "no"
    value = re.sub(r"\{\{\s*cookiecutter\.(\w+)\s*\}\}", r"<\1>", value)
    return f"`{value}`" if value else "empty"


def variable_table():
    """The Markdown table of every question: cookiecutter.json's order, default and question
    (`__prompts__`, the one text of what a variable means), and the accepted form that the
    pre-generation hook's RULES print."""
    from hooks import pre_gen_project

    defaults = json.loads((HERE / "cookiecutter.json").read_text())
    accepted = {}
    for rule in pre_gen_project.RULES:
        accepted.setdefault(rule.variable, []).append(rule.accepted)
    prompts = defaults["__prompts__"]
    rows = ["| variable | question | default | accepted |", "|---|---|---|---|"]
    for name, value in defaults.items():
        if name.startswith("_"):
            continue
        if name not in prompts:
            sys.exit(f"tasks.py docs: {name} of cookiecutter.json has no question in its __prompts__")
        question = prompts[name]["__prompt__"] if isinstance(prompts[name], dict) else prompts[name]
        # Plain text, so that no Markdown reader takes `<appcode>` for an HTML tag.
        plain = [text.replace("<", "&lt;") for text in (question, "; ".join(accepted[name]))]
        cells = [f"`{name}`", plain[0], _default_cell(value), plain[1]]
        rows.append("| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |")
    return "\n".join(rows) + "\n"


def readme_with_table(readme):
    """README.md's text with the table between its markers written anew."""
    before, start, rest = readme.partition(TABLE_START + "\n")
    _, end, after = rest.partition(TABLE_END)
    if not (start and end):
        sys.exit(f"tasks.py docs: README.md lacks the markers {TABLE_START} ... {TABLE_END}")
    # Blank lines around the table, so that no Markdown reader takes a marker for one of its rows.
    return before + start + "\n" + variable_table() + "\n" + end + after


def docs(args):
    """Write README.md's variable table; with --check, only say whether it is current."""
    current = README.read_text(encoding="utf-8")
    fresh = readme_with_table(current)
    if args == ["--check"]:
        if fresh != current:
            print("tasks.py docs: README.md's variable table is stale: run `python3 tasks.py docs`", file=sys.stderr)
            return 1
        return 0
    if args:
        sys.exit(__doc__)
    README.write_text(fresh, encoding="utf-8")
    return 0


def suite_workers(fast=False):
    """pytest's workers: one per core this process may use and, for the whole suite, one more.
    The integration tests also wait on what runs outside their worker (docker builds in the
    engine, the package index, servers starting, time limits); with a worker per core, a core
    idled through those waits. The unit tier waits on nothing."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        cores = os.cpu_count() or 1
    return cores + (0 if fast else 1)


def pytest_arguments(args, environ=os.environ):
    """pytest's arguments for `tasks.py test ARGS`: the whole suite in parallel (suite_workers(),
    or APPSTACK_TEST_WORKERS); with `--fast` (anywhere among them), the unit tier (tests/unit) alone."""
    fast = "--fast" in args
    if fast:
        args = [str(HERE / "tests" / "unit"), *(arg for arg in args if arg != "--fast")]
    workers = environ.get("APPSTACK_TEST_WORKERS") or str(suite_workers(fast))
    return ["-m", "pytest", "-n", workers, "--dist", "loadgroup", *args]


def main(argv):
    commands = {
        "test": pytest_arguments(argv[1:]),
        "bench": [str(HERE / "benchmarks" / "run.py"), *argv[1:]],
    }
    if not argv or argv[0] not in (*commands, "generate", "docs"):
        sys.exit(__doc__)
    if argv[0] == "docs":
        return docs(argv[1:])
    if argv[0] == "generate":
        ensure_venv(GENERATE)
        from_config = user_default_context(given_answers(argv[1:])[1], os.environ)
        refused = answers_refusal(argv[1:], from_config) or target_refusal(argv[1:], from_config)
        if refused:
            print(refused, file=sys.stderr)
            return 1
        notes = []
        args = generate_command(argv[1:], notes=notes)
    else:
        ensure_venv()
        args = [str(_venv_python()), *commands[argv[0]]]
    env = dict(os.environ, PATH=f"{VENV / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    if argv[0] == "generate":
        return generate(args, env, notes)
    return subprocess.run(args, cwd=HERE, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
