"""The docs hold together: every relative link of README.md, BENCHMARKS.md and docs/*.md points
at a file that exists and, with a `#fragment`, at a heading of that file; and the README stays
short enough to read in a few minutes (the detail belongs in docs/)."""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "BENCHMARKS.md", *sorted((ROOT / "docs").glob("*.md"))]
README_MAX_LINES = 220

# [text](target) and [text](target "title"); images too. Autolinks and bare URLs are not relative.
LINK = re.compile(r"!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
HTML_ANCHOR = re.compile(r"<a\s+(?:name|id)=\"([^\"]+)\"")


def outside_code(text: str) -> list[str]:
    """The lines outside fenced code blocks (a link or heading inside a code block is not one)."""
    out, fence = [], None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith(("```", "~~~")):
            mark = stripped[:3]
            fence = mark if fence is None else (None if mark == fence else fence)
        elif fence is None:
            out.append(line)
    return out


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (hyphens and underscores
    kept), each space a hyphen."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)           # inline code keeps its text
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = re.sub(r"<[^>]+>", "", text).strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """The anchors of a page: one per heading (GitHub numbers repeats: x, x-1, x-2) and the
    HTML anchors."""
    text = path.read_text(encoding="utf-8")
    found: set[str] = set(HTML_ANCHOR.findall(text))
    seen: dict[str, int] = {}
    for line in outside_code(text):
        if m := HEADING.match(line):
            base = slug(m.group(2))
            n = seen.get(base, 0)
            seen[base] = n + 1
            found.add(base if n == 0 else f"{base}-{n}")
    return found


def relative_links(path: Path) -> list[str]:
    # Joined, so that a link whose text wraps onto the next line is found; inline code removed.
    prose = re.sub(r"`[^`]*`", "", "\n".join(outside_code(path.read_text(encoding="utf-8"))))
    targets = LINK.findall(prose)
    return [t for t in targets if not re.match(r"^[a-z][a-z0-9+.-]*:", t, re.I)]  # http:, mailto:, ...


def test_slug_follows_github():
    assert slug("Run assets from the command line, as CI does") == "run-assets-from-the-command-line-as-ci-does"
    assert slug("Steady state: a soak under `dagster dev`") == "steady-state-a-soak-under-dagster-dev"
    assert slug("Kubernetes with Dagster's Helm chart") == "kubernetes-with-dagsters-helm-chart"
    assert slug("What `mlops-assets demo` does") == "what-mlops-assets-demo-does"


def test_links_in_code_are_not_links(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("[a](x.md)\n```\n[b](y.md)\n```\n`[c](z.md)`\n## Title\n")
    assert relative_links(page) == ["x.md"]
    assert anchors(page) == {"title"}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page):
    broken = []
    for target in relative_links(page):
        file_part, _, fragment = target.partition("#")
        dest = (page.parent / unquote(file_part)).resolve() if file_part else page
        if not dest.exists():
            broken.append(f"{target}: no file {dest.relative_to(ROOT) if dest.is_relative_to(ROOT) else dest}")
        elif fragment and dest.suffix == ".md" and unquote(fragment) not in anchors(dest):
            broken.append(f"{target}: no heading with the anchor #{fragment} in {dest.relative_to(ROOT)}")
    assert not broken, f"{page.relative_to(ROOT)} has broken links:\n" + "\n".join(broken)


def test_readme_stays_short():
    lines = len((ROOT / "README.md").read_text(encoding="utf-8").splitlines())
    assert lines < README_MAX_LINES, (
        f"README.md has {lines} lines (fewer than {README_MAX_LINES} wanted): move the detail to a page of docs/")
