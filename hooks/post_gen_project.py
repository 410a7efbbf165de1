"""Post-generation: finish the project cookiecutter wrote (runs inside it)."""
import re
import sys
from pathlib import Path

HOSTSPACE_VALUES = Path("chart/values-hostspaces.yaml")
HEADER = re.compile(r"^# (values-[a-z0-9-]+\.yaml)\b", re.MULTILINE)


def split_hostspace_values(text):
    """Split the rendered multi-document hostspace values into {file name: content}.

    Each document starts with a comment line naming its file, e.g. `# values-dev.yaml: ...`.
    """
    files = {}
    for document in re.split(r"^---[ \t]*$\n?", text, flags=re.MULTILINE):
        match = HEADER.search(document)
        if match:
            files[match.group(1)] = document.strip("\n") + "\n"
    return files


def write_hostspace_values(project):
    combined = project / HOSTSPACE_VALUES
    if not combined.exists():
        return
    for name, content in split_hostspace_values(combined.read_text()).items():
        (combined.parent / name).write_text(content)
    combined.unlink()


def main():
    write_hostspace_values(Path.cwd())
    return 0


if __name__ == "__main__":
    sys.exit(main())
