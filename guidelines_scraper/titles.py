"""Whether a candidate title (a PDF's ``/Title``, an HTML page's ``<title>`` or ``og:title``) reads as a title.

Producers fill the metadata title with whatever they hold: a DOI (``doi:10.1186/...``), a typesetter's job
number (``6489122611071476 1..10``), a file name (``Outpatient-Guide-508.indd``, ``Microsoft Word -
draft3.docx``), a placeholder (``Untitled``, ``Slide 1``, ``Layout 1``). :func:`looks_like_title` turns
those down, so that the caller falls back to the document's own heading (the largest text on a PDF's first
page, an HTML page's ``<h1>``).
"""

from __future__ import annotations

import re

MAX_TITLE_CHARS = 300

_DOI = re.compile(r"^\s*(?:doi\s*:?\s*|https?://(?:dx\.)?doi\.org/)|\b10\.\d{4,9}/\S+", re.IGNORECASE)
_FILE_NAME = re.compile(
    r"\.(?:pdf|docx?|dotx?|indd|idml|qxd|qxp|pm\d|p65|tex|dvi|ps|eps|rtf|txt|html?|pptx?|xlsx?|odt|pages|wpd|"
    r"jpe?g|png|tiff?|ai|xml|fm)\s*$|^(?:microsoft (?:word|powerpoint|excel)\s*-|adobe\b)",
    re.IGNORECASE)
_PLACEHOLDER = re.compile(
    r"^(?:untitled(?: document)?|no title|title|\(anonymous\)|anonymous|document\s*\d*|layout\s*\d*|slide\s*\d*|"
    r"page\s*\d*|powerpoint presentation|presentation\d*|draft\s*\d*|new page\s*\d*|home(?: page)?|index|default|"
    r"welcome|pii\s*:.*|job\s*\d+.*|print|printer friendly(?: version)?|error|404.*|not found|access denied)$",
    re.IGNORECASE)
_PATH = re.compile(r"^[^\s]*[\\/][^\s]*$")
_WORD = re.compile(r"[^\W\d_]{2,}")


def looks_like_title(text: str | None) -> bool:
    """A title of words: not a DOI, file name, path, job number, placeholder or code.

    >>> looks_like_title("Guide to Infection Prevention for Outpatient Settings")
    True
    >>> looks_like_title("6489122611071476 1..10"), looks_like_title("doi:10.1186/1472-6963-14-1")
    (False, False)
    """
    if not text:
        return False
    text = " ".join(text.split())
    if not 2 <= len(text) <= MAX_TITLE_CHARS:
        return False
    if _DOI.search(text) or _FILE_NAME.search(text) or _PLACEHOLDER.match(text) or _PATH.match(text):
        return False
    tokens = text.split()
    if len(tokens) == 1 and (any(ch.isdigit() for ch in text) or "_" in text or re.search(r"[a-z][A-Z]", text)):
        return False  # a code or a file stem: "s12913-014-0001", "WHO_HTM_2019", "outpatientGuide"
    words = _WORD.findall(text)
    if not words or max(len(word) for word in words) < 3:
        return False
    letters = sum(ch.isalpha() for ch in text)
    visible = sum(not ch.isspace() for ch in text)
    if letters * 2 < visible:
        return False  # mostly digits and punctuation
    # Letter-spaced type ("R E S E A R C H  A R T I C L E") is a label, not a title.
    return sum(len(token) == 1 for token in tokens) * 2 <= len(tokens)


__all__ = ["looks_like_title", "MAX_TITLE_CHARS"]
