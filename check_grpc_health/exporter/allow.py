"""Which targets ``/probe`` may dial: shell-style patterns, checked before anything else.

Layer: adapter (the exporter). ``/probe`` makes this process open a connection to
whatever a scraper names, so the exporter dials only targets that match one of the
``--allow-target`` patterns (``fnmatch``: ``*`` matches any text, ``/`` included; ``?``
one character; ``[...]`` a set). A pattern matches the target as the request gives it,
or as the plugin writes it (``https://api-1`` as ``https://api-1:443``). The patterns see names,
not addresses: a name that matches and resolves to an address inside your network is
dialed; list the names you monitor rather than ``*``.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence


class AllowedTargets:
    """The ``--allow-target`` patterns."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = tuple(patterns)

    def allows(self, *forms: str) -> bool:
        """Whether any of a target's forms matches any pattern."""
        return any(fnmatchcase(form, pattern) for form in forms for pattern in self.patterns)
