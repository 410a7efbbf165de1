"""Readers of Markdown documents, for the tests of the generated project's documents
(test_docs.py) and of the template's own (test_template_docs.py)."""

import re

# [text](target): a relative target is a file beside the document, with an optional #heading.
LINK = re.compile(r"\[[^\]]+\]\(([^)\s]+)\)")


def prose_lines(text):
    """The lines of a Markdown text outside its fenced code blocks (where `#` starts a comment)."""
    fenced = False
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
        elif not fenced:
            yield line


def level(line):
    """A heading's level (1 for "# ..."), 0 for any other line."""
    match = re.match(r"(#+) ", line)
    return len(match[1]) if match else 0


def section(text, heading):
    """The prose under `heading` (a whole line, such as "## Who owns what"), up to the next
    heading of the same or a higher level."""
    lines = list(prose_lines(text))
    start = lines.index(heading) + 1
    end = next((i for i in range(start, len(lines)) if 0 < level(lines[i]) <= level(heading)), len(lines))
    return "\n".join(lines[start:end])


def slug(heading):
    """The anchor GitHub and Azure DevOps give a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def anchors(text):
    return {slug(line.lstrip("#").strip()) for line in prose_lines(text) if level(line)}


def broken_links(root, names):
    """[(document, target)] of the relative links of these documents (paths relative to `root`)
    whose file, or heading in it, does not exist."""
    broken = []
    for name in names:
        for target in LINK.findall((root / name).read_text(encoding="utf-8")):
            if re.match(r"[a-z]+://", target):
                continue
            file, _, anchor = target.partition("#")
            path = (root / name).parent / file if file else root / name
            if not path.exists():
                broken.append((name, target))
            elif anchor and (path.is_dir() or anchor not in anchors(path.read_text(encoding="utf-8"))):
                broken.append((name, target))
    return broken
