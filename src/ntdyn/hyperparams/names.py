"""Unknown names and the known name they were probably meant to be (difflib)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

UNKNOWN = "unknown parameter"


def closest(name: str, known: Iterable[str]) -> str | None:
    """The known name most like `name` (difflib's ratio, cutoff 0.6), or None."""
    found = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_name(name: str, known: Iterable[str], what: str = UNKNOWN) -> str:
    """`<name>: unknown parameter; did you mean <closest>?` (or the known names, when none
    is close)."""
    known = sorted(known)
    match = closest(name, known)
    if match is not None:
        return f"{name}: {what}; did you mean {match}?"
    listed = ", ".join(known) if len(known) <= 12 else ", ".join(known[:12]) + ", ..."
    return f"{name}: {what}; known here: {listed or 'none'}"
