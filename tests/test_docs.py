"""The repository stands alone: every file its documents link to is in it, and nothing
cites a design or benchmark outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", ROOT / "SECURITY.md", *sorted((ROOT / "docs").glob("*.md"))]
# [text](target) with a relative target: no scheme, not a bare #anchor.
LINK = re.compile(r"\]\((?!https?://|mailto:|#)([^)\s]+)\)")
OUTSIDE = re.compile(r"\.\./shared|(?<![\w/])DESIGN\.md")


def tracked_files() -> list[Path]:
    listing = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    return [ROOT / line for line in listing.splitlines()]


@pytest.mark.parametrize("document", DOCUMENTS, ids=lambda path: path.name)
def test_every_linked_file_exists(document: Path) -> None:
    targets = LINK.findall(document.read_text())
    assert document.name != "README.md" or targets, "the README links to its docs"
    missing = [
        target for target in targets if not (document.parent / target.split("#", 1)[0]).exists()
    ]
    assert missing == [], f"{document.name} links to files that are not in the repository"


def test_nothing_cites_a_design_outside_the_repository() -> None:
    citing = [
        str(path.relative_to(ROOT))
        for path in tracked_files()
        if path.is_file()
        and path.suffix in {".md", ".py", ".yml", ".sh", ".toml", ".js", ".html"}
        and path.name != "test_docs.py"
        and OUTSIDE.search(path.read_text(errors="replace"))
    ]
    assert citing == [], "cite docs/design.md or bench/peers/ instead"
