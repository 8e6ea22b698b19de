"""The fenced blocks of a page under docs/, for the tests that run what the page shows.

Layer: tests (support).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path


def fenced(page: Path, language: str) -> list[str]:
    """The page's fenced blocks of one language ("" for plain ones), in order."""
    found: list[str] = []
    within: str | None = None
    lines: list[str] = []
    for line in page.read_text().splitlines(keepends=True):
        if within is None:
            if line.startswith("```"):
                within, lines = line[3:].strip(), []
        elif line.strip() == "```":
            if within == language:
                found.append("".join(lines))
            within = None
        else:
            lines.append(line)
    return found
