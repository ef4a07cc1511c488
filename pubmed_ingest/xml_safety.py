"""Safe lxml parsing for untrusted NCBI XML, and the text and id helpers both NCBI parsers share.

Every parser here is built with entity resolution, DTD loading and network access off and
``huge_tree`` off, so a billion-laughs document cannot expand (libxml2's amplification limit
rejects it with an XMLSyntaxError, or the entity is left as an unexpanded reference node) and
an XXE ``SYSTEM`` entity is never fetched. NCBI files declare an external DTD that we do not
load: named entities from it (``&nbsp;``) stay reference nodes too, and the text helpers map
the standard HTML ones to their characters (any other entity reads as nothing).
"""

from __future__ import annotations

import html.entities
import re
from collections.abc import Callable, Iterable, Iterator
from typing import IO, Any

from lxml import etree

MATHML_NS = "http://www.w3.org/1998/Math/MathML"
XLINK_HREF = "{http://www.w3.org/1999/xlink}href"

_SAFE_OPTIONS: dict[str, Any] = {
    "resolve_entities": False,
    "no_network": True,
    "load_dtd": False,
    "dtd_validation": False,
    "attribute_defaults": False,
    "huge_tree": False,
    "recover": False,
    "remove_comments": True,
    "remove_pis": True,
}


def safe_parser() -> etree.XMLParser:
    """A new XMLParser with the safe options (parsers are not thread-safe, so one per caller)."""
    return etree.XMLParser(**_SAFE_OPTIONS)


def parse_bytes(data: bytes) -> etree._Element:
    """Parse a whole document held in memory; raises ``etree.XMLSyntaxError`` when malformed."""
    return etree.fromstring(data, safe_parser())


def iterparse(
    source: IO[bytes], tags: Iterable[str], events: tuple[str, ...] = ("end",)
) -> Iterator[tuple[str, etree._Element]]:
    """Stream ``(event, element)`` pairs for the given tags with the safe options."""
    return etree.iterparse(source, events=events, tag=tuple(tags), **_SAFE_OPTIONS)


def pull_parser(events: tuple[str, ...] = ("start",), tag: Iterable[str] | None = None) -> etree.XMLPullParser:
    """A feed parser with the safe options (events only for the `tag` elements when given)."""
    return etree.XMLPullParser(events=events, tag=tuple(tag) if tag is not None else None, **_SAFE_OPTIONS)


def release(element: etree._Element) -> None:
    """Free a streamed element and the siblings parsed before it, so memory stays flat."""
    element.clear(keep_tail=True)
    parent = element.getparent()
    if parent is not None:
        while element.getprevious() is not None:
            del parent[0]


# ---------------------------------------------------------------------------------------------
# Text helpers

_MATHML_PREFIX = "{" + MATHML_NS + "}"
# MathML elements whose character content is the formula; whitespace elsewhere is indentation.
_MATHML_TOKENS = frozenset(_MATHML_PREFIX + name for name in ("mi", "mn", "mo", "mtext", "ms"))
# Alternative encodings of the same formula: reading them would duplicate it.
_MATHML_SKIPPED = frozenset(_MATHML_PREFIX + name for name in ("annotation", "annotation-xml"))

# A URL with the spaces before it; bracketed URLs go with their brackets, and trailing
# punctuation stays (it usually ends the sentence).
_URL = re.compile(
    r"""[ \t]*(?:"""
    r"""[(\[<]\s*(?:https?://|ftp://|www\.)[^\s<>"]+\s*[)\]>]"""
    r"""|(?:https?://|ftp://|www\.)[^\s<>"]*[^\s<>".,;:!?)\]}'\u201d]"""
    r"""|(?:https?|ftp)://"""
    r""")"""
)


def local_name(tag: Any) -> str:
    """The tag without its ``{namespace}``; empty for comments, PIs and entity nodes."""
    if not isinstance(tag, str):
        return ""
    return tag[tag.index("}") + 1 :] if tag[:1] == "{" else tag


def entity_text(entity: etree._Entity) -> str:
    """The character of a standard (HTML) named entity; other entities stay unexpanded: ''."""
    return html.entities.html5.get(entity.name + ";", "")


def math_text(math: etree._Element) -> str:
    """Flatten a MathML subtree: the token characters in document order, indentation ignored."""
    parts: list[str] = []
    _collect_math(math, parts)
    return "".join(parts)


def _collect_math(element: etree._Element, parts: list[str]) -> None:
    text = element.text
    if text and (element.tag in _MATHML_TOKENS or not text.isspace()):
        parts.append(text)
    for child in element:
        tag = child.tag
        if tag is etree.Entity:
            parts.append(entity_text(child))
        elif tag not in _MATHML_SKIPPED and isinstance(tag, str):
            _collect_math(child, parts)
        tail = child.tail
        if tail and not tail.isspace():
            parts.append(tail)


def element_text(element: etree._Element | None) -> str:
    """All text inside `element` (inline markup and MathML flattened), whitespace normalised."""
    if element is None:
        return ""
    if len(element) == 0:  # the common case: no markup inside
        return normalize_space(element.text or "")
    parts: list[str] = []
    _collect_text(element, parts)
    return normalize_space("".join(parts))


def _collect_text(element: etree._Element, parts: list[str]) -> None:
    walk_text(element, parts, _collect_child_text)


def _collect_child_text(child: etree._Element, parts: list[str]) -> None:
    if child.tag.startswith(_MATHML_PREFIX):
        parts.append(math_text(child))
    else:
        walk_text(child, parts, _collect_child_text)


def walk_text(element: etree._Element, parts: list[str],
              on_element: Callable[[etree._Element, list[str]], None]) -> None:
    """Append the text of `element` to `parts` in document order: its own text, each child's tail and
    the text of entity references, handing each child element to `on_element(child, parts)`."""
    if element.text:
        parts.append(element.text)
    for child in element:
        tag = child.tag
        if tag is etree.Entity:
            parts.append(entity_text(child))
        elif isinstance(tag, str):
            on_element(child, parts)
        if child.tail:
            parts.append(child.tail)


def normalize_space(text: str) -> str:
    """Collapse every run of whitespace (Unicode spaces included) to one space; strip the ends."""
    # Fast path, taken by ~99% of PubMed texts: a text is already normal when its only whitespace
    # is single ASCII spaces inside it. In a printable string the only whitespace can be the
    # ASCII space (every other character str.split() splits on is a control character or a
    # Unicode separator, neither printable); in an ASCII one the others are the C0 controls
    # tested. Checking that is several times cheaper than splitting and joining.
    if text[:1] == " " or text[-1:] == " ":
        pass
    elif text.isascii():  # isascii is O(1); a few memchr scans beat isprintable's table lookups
        if ("\n" not in text and "  " not in text and "\t" not in text and "\r" not in text and "\x0b" not in text
                and "\x0c" not in text and "\x1c" not in text and "\x1d" not in text and "\x1e" not in text
                and "\x1f" not in text):
            return text
    elif text.isprintable() and "  " not in text:
        return text
    return " ".join(text.split())


def remove_urls(text: str) -> str:
    """Delete URLs (with brackets left empty by that and the spaces before them); keeps newlines."""
    if "://" not in text and "www." not in text:
        return text
    return _URL.sub("", text).strip()


# ---------------------------------------------------------------------------------------------
# Identifier helpers (both parsers normalise ids the same way)

_DOI_PREFIX = re.compile(r"^(?:https?://(?:dx\.)?doi\.org/|doi:\s*)", re.IGNORECASE)
_PMCID = re.compile(r"^(?:PMC)?(\d+)\b", re.IGNORECASE)
_YEAR = re.compile(r"\b(\d{4})\b")


def normalize_doi(value: str | None) -> str | None:
    """``10.x/y`` lower-cased, without a resolver prefix; None when it is not a DOI."""
    if not value:
        return None
    doi = value.strip()
    if not doi.startswith("10."):  # the usual form needs no prefix removal
        doi = _DOI_PREFIX.sub("", doi).strip()
    doi = doi.lower()
    return doi if doi.startswith("10.") and "/" in doi else None


def normalize_pmcid(value: str | None) -> str | None:
    """``PMC<digits>`` from ``PMC123``, ``123`` or ``PMC123 [Available on ...]``; else None."""
    if not value:
        return None
    match = _PMCID.match(value.strip())
    return f"PMC{match.group(1)}" if match else None


def first_year(value: str | None) -> int | None:
    """The first four-digit number in `value` as a year, e.g. 1998 from ``1998 Dec-1999 Jan``."""
    if not value:
        return None
    if len(value) == 4 and value.isdigit():  # the usual <Year>2017</Year>
        return int(value)
    match = _YEAR.search(value)
    return int(match.group(1)) if match else None
