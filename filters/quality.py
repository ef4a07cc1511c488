"""Heuristic quality rules. Each rule returns None (pass) or the detail of why the document fails;
the rule's name is the drop reason in the ledger."""

from __future__ import annotations

import re

_WORD = re.compile(r"\w+")


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def too_short(text: str, min_words: int) -> str | None:
    words = word_count(text)
    return f"{words} words < {min_words}" if words < min_words else None
