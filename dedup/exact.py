"""Exact duplicates: documents whose normalised text is the same.

Normalisation lower-cases, folds Unicode compatibility forms, drops punctuation and collapses
whitespace, so copies that differ only in formatting (a guideline served as two pages with other
markup, an abstract re-published with other line breaks) hash alike.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

# ASCII bytes: letters and digits stay, everything else becomes a space; bytes >= 0x80 (the rest of a
# UTF-8 sequence) stay, their characters were dealt with before encoding.
_ASCII_TABLE = bytes(c if chr(c).isalnum() else 0x20 for c in range(128)) + bytes(range(128, 256))
_ASCII_BYTES = bytes(range(128))
_SPACES = re.compile(b"  +")

# Which copy survives, best first: papers > abstracts > guidelines > replay, then the longer text,
# then the smallest id. A full paper carries its abstract, so it beats the abstract-only record.
SOURCE_PRIORITY = {"pubmed_papers": 0, "pubmed_abstracts": 1, "guidelines": 2, "replay": 3}


def normalise_bytes(text: str) -> bytes:
    """UTF-8 of the normalised text: NFKC, case-folded, every run of characters that are not
    letters or digits (``str.isalnum``, so also ``_``) replaced by one space, no space at either end.

    Same result as ``re.sub(r"[\\W_]+", " ", ...)`` on the folded text, several times faster: the
    non-ASCII characters are looked at once each, the ASCII ones through a byte table.
    """
    text = unicodedata.normalize("NFKC", text).casefold()
    data = text.encode("utf-8")
    if not text.isascii():
        # The distinct non-ASCII characters: what is left once the ASCII bytes are deleted (UTF-8 never
        # matches inside another character's encoding, so their bytes can be replaced in place).
        for char in set(data.translate(None, _ASCII_BYTES).decode("utf-8")):
            if not char.isalnum():
                data = data.replace(char.encode("utf-8"), b" ")
    # Only spaces are left of the ASCII whitespace: runs of them become one, none at either end.
    return _SPACES.sub(b" ", data.translate(_ASCII_TABLE)).strip(b" ")


def normalise_text(text: str) -> str:
    return normalise_bytes(text).decode("utf-8")


def text_hash(text: str) -> str:
    """128-bit hex digest of the normalised text."""
    return digest_normalised(normalise_bytes(text))


def digest_normalised(normalised: bytes) -> str:
    return hashlib.blake2b(normalised, digest_size=16).hexdigest()


HASH_COLUMN = "text_hash"
