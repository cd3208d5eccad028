"""Every relative link in README.md and docs/*.md points to a file, and to a heading in it.

The README is a front door into docs/; a page renamed or a heading reworded would otherwise
leave links that lead nowhere. Anchors follow GitHub's rule: the heading lower-cased, spaces
turned into hyphens, punctuation other than hyphens and underscores dropped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """The anchor of every heading of ``page``, outside code blocks."""
    text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {slug(heading) for heading in re.findall(r"^#{1,6} +(.+)$", text, flags=re.M)}


def test_slug_matches_github() -> None:
    # Ids GitHub gives these headings (punctuation and backticks dropped, spaces hyphenated).
    assert slug("Batch size: the global batch") == "batch-size-the-global-batch"
    assert slug("`ProjectorRank` (rank)") == "projectorrank-rank"
    assert slug("Why hand-written") == "why-hand-written"


def relative_links() -> list[tuple[Path, str]]:
    found = []
    for page in PAGES:
        text = re.sub(r"^```.*?^```", "", page.read_text(encoding="utf-8"), flags=re.S | re.M)
        for target in LINK.findall(text):
            if not re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not checked
                found.append((page, target))
    return found


LINKS = relative_links()


def test_the_readme_links_every_docs_page() -> None:
    linked = {
        (page.parent / target.partition("#")[0]).resolve()
        for page, target in LINKS
        if page.name == "README.md"
    }
    unlinked = [page.name for page in PAGES[1:] if page.resolve() not in linked]
    assert not unlinked, f"README.md links no {unlinked}"


@pytest.mark.parametrize(("page", "target"), LINKS, ids=[f"{p.name}->{t}" for p, t in LINKS])
def test_link_resolves(page: Path, target: str) -> None:
    path_part, _, anchor = target.partition("#")
    linked = (page.parent / path_part).resolve() if path_part else page
    relative = linked.relative_to(ROOT).as_posix() if linked.is_relative_to(ROOT) else str(linked)
    assert linked.is_file(), f"{page.name} links to {target!r}: no file {relative}"
    if anchor:
        assert anchor in anchors(linked), f"{page.name} links to {target!r}: no such heading"
