"""Raw fetch record -> guideline document (or a :class:`~gap_replay.core.outcome.Drop`). Pure: no network.

HTML: the page is decoded (HTTP charset, then ``<meta>``, then detection), the source's
``exclude_selector`` elements are removed, and when the source has a ``content_selector`` only the
matching elements are kept (wrapped in an ``<article>``, which is what makes trafilatura keep their
headings and lists; trafilatura alone can miss the article or drop its structure). trafilatura
turns that into Markdown (``#`` headers, ``- `` lists, no links, no tables); its escapes and
emphasis marks are undone here, then :func:`guidelines_scraper.clean.clean_text` cleans it.

PDF (a body starting with ``%PDF-``, whatever the source's ``format``; a ``format = "pdf"`` source
accepts nothing else): text and headings from pdfminer.six (:mod:`guidelines_scraper.pdf`), or
``Drop(reason="pdf_unsupported")`` when it is not installed.

Title: the source's ``title_selector`` (else ``og:title``, ``<title>`` or the ``<h1>``), with
``title_remove`` applied; ``subtitle_selector`` appends the text of its first match (a leading
section number removed) as ``Title - Subtitle``, for sources whose pages share the title of the
whole guideline (NICE chapters); a candidate that reads as no title
(:func:`guidelines_scraper.titles.looks_like_title`: a file name, "Untitled Document", a DOI) gives way to
the next, the ``<h1>`` last. PDF: the document's ``/Title`` when it reads as a title, else the largest
text on its first page. Titles and texts decoded with the wrong charset are repaired (ftfy).

Layout tables: a page laid out in ``<table>`` cells (the 2005-era CDC pages: navigation and content
side by side in one table) would reach trafilatura as one data table, which the text keeps as rows or
not at all. A table that holds most of the page's text, holds another table, or has a cell of
paragraphs (block elements, or 40 words and more) is a layout table: its rows and cells become plain
blocks before extraction, and the page is read as flowing text. Data tables (short cells, header
cells) are left as they are. Superscript note marks (``<sup>1,2</sup>``, affiliations and citations)
are removed, as in PDFs.

A ``content_selector`` that matches nothing on a page (the site changed) does not lose the article:
trafilatura reads the whole page instead, and the document's ``extra`` says so (``"extraction":
"fallback_whole_page"``, else ``"selector"`` or ``"whole_page"``); :class:`ExtractionReport` counts
them per source.

Outcomes: ``fetch_error`` (the record has an error or HTTP status >= 400), ``extract_error``
(wrong content type, undecodable page, unreadable PDF),
``pdf_unsupported`` and ``too_short`` (fewer than ``source.min_words`` words after cleaning).
A ``304 Not Modified`` record carries the body stored before it and is extracted like a 200.
Title deduplication (the paper's rule) happens across documents: :func:`deduplicate_titles`.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from bs4.dammit import UnicodeDammit
from lxml import etree
from lxml import html as lxml_html

from gap_replay.core.outcome import Drop
from gap_replay.core.schema import make_document
from gap_replay.guidelines_scraper.clean import clean_text, count_words, marker_key, repair_mojibake
from gap_replay.guidelines_scraper.fetch import normalize_url
from gap_replay.guidelines_scraper.pdf import PDF_LAYOUT, PDF_PLAIN_TEXT
from gap_replay.guidelines_scraper.raw_store import record_headers
from gap_replay.guidelines_scraper.sources import GuidelineSource, css_selector
from gap_replay.guidelines_scraper.titles import looks_like_title

DOCUMENT_SOURCE = "guidelines"
DUPLICATE_TITLE = "duplicate_title"
# How an HTML document's text was found (its ``extra["extraction"]``): the source's content_selector;
# the whole page because the source has no selector; the whole page because the selector matched
# nothing (the site's markup changed: worth a look, the text may carry more page furniture).
EXTRACTED_BY_SELECTOR = "selector"
WHOLE_PAGE = "whole_page"
SELECTOR_MISSED = "fallback_whole_page"
EXTRACTION_KINDS = (EXTRACTED_BY_SELECTOR, WHOLE_PAGE, SELECTOR_MISSED, PDF_LAYOUT, PDF_PLAIN_TEXT)
# The extractions that are a fallback, with what failed: a sign that the site or the file changed.
FALLBACKS = {SELECTOR_MISSED: "content_selector missed", PDF_PLAIN_TEXT: "PDF layout pass failed"}
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")
_ORDERED_ITEM = re.compile(r"^(\s*)\d{1,3}[.)]\s+", re.MULTILINE)
_NESTED_ITEM = re.compile(r"^\s+([-*+])\s+", re.MULTILINE)
_CODE_SPAN = re.compile(r"`([^`\n]*)`")
_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)
_XML_DECLARATION = re.compile(r"^\s*<\?xml[^>]*\?>", re.IGNORECASE)
_SECTION_NUMBER = re.compile(r"^\s*(?:\d+(?:\.\d+)*\.?|[A-Z]\.|[IVX]+\.)\s+")
# Labels as browsers read them (WHATWG): a page labelled latin-1 is decoded as windows-1252, one
# labelled Shift_JIS as its Microsoft superset, and so on.
_ENCODING_ALIASES = {"iso-8859-1": "cp1252", "iso8859-1": "cp1252", "latin-1": "cp1252", "latin1": "cp1252",
                     "l1": "cp1252", "us-ascii": "cp1252", "ascii": "cp1252", "windows-1252": "cp1252",
                     "shift_jis": "cp932", "shift-jis": "cp932", "sjis": "cp932", "x-sjis": "cp932",
                     "windows-31j": "cp932", "gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030",
                     "euc-kr": "cp949", "ks_c_5601-1987": "cp949", "iso-8859-9": "cp1254", "tis-620": "cp874",
                     "utf8": "utf-8", "unicode-1-1-utf-8": "utf-8"}

_trafilatura_config = None
_PARSER = lxml_html.HTMLParser(remove_comments=True, remove_pis=True, collect_ids=False, default_doctype=False)


def document_id(tag: str, url: str) -> str:
    """``guideline:<tag>:<16 hex of SHA-1 of the canonical URL without its scheme>``."""
    key = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url)
    return f"guideline:{tag}:{hashlib.sha1(key.encode('utf-8')).hexdigest()[:16]}"


def title_key(title: str | None) -> str | None:
    """What two titles must share to be duplicates: case, accents' composition, punctuation and
    spacing ignored. None for no title (documents without a title are never title duplicates)."""
    if not title:
        return None
    text = unicodedata.normalize("NFKC", title).casefold()
    key = " ".join(re.sub(r"[\W_]+", " ", text).split())
    return key or None


def _config():
    global _trafilatura_config
    if _trafilatura_config is None:
        from trafilatura.settings import use_config

        config = use_config()
        # The selected fragment is the article: no minimum sizes (below them trafilatura falls
        # back to a baseline extraction that flattens headings and lists into plain lines).
        config.set("DEFAULT", "MIN_EXTRACTED_SIZE", "1")
        config.set("DEFAULT", "MIN_OUTPUT_SIZE", "1")
        _trafilatura_config = config
    return _trafilatura_config


def _charset(headers: Mapping[str, str]) -> str | None:
    match = re.search(r"charset=[\"']?([A-Za-z0-9_.:-]+)", headers.get("content-type", ""), re.IGNORECASE)
    return match.group(1) if match else None


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html", b"<?xml")) or b"<html" in head or b"<body" in head


def _codec(label: str) -> str | None:
    import codecs

    label = label.strip().lower()
    name = _ENCODING_ALIASES.get(label, label)
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def _decode(body: bytes, headers: Mapping[str, str]) -> str:
    """The page as text: the HTTP charset, then the ``<meta>`` one, then UTF-8, then windows-1252 (what
    browsers assume for unlabelled or mislabelled Western pages; statistical detection guesses wrong
    on pages with few non-ASCII letters), then detection."""
    labels = [e for e in (_charset(headers),) if e]
    meta = _META_CHARSET.search(body[:4096])
    if meta:
        labels.append(meta.group(1).decode("ascii", "replace"))
    if body.startswith((b"\xef\xbb\xbf", b"\xff\xfe", b"\xfe\xff")):
        labels.insert(0, "utf-8-sig" if body.startswith(b"\xef\xbb\xbf") else "utf-16")
    labels += ["utf-8", "cp1252"]
    for label in dict.fromkeys(labels):
        codec = _codec(label)
        if codec is None:
            continue
        try:
            return body.decode("utf-8-sig" if codec == "utf-8" else codec)
        except UnicodeDecodeError:
            continue
    dammit = UnicodeDammit(body, is_html=True)
    if dammit.unicode_markup is None:
        raise ValueError("undecodable page")
    return dammit.unicode_markup


def _text_of(element) -> str:
    """Element text with its pieces joined by single spaces (what a reader sees)."""
    return " ".join(" ".join(piece.split()) for piece in element.itertext() if piece.strip())


def _clean_title(title: str | None, source: GuidelineSource) -> str | None:
    if not title:
        return None
    title = re.sub(r"\s+", " ", repair_mojibake(title)).strip()
    if source.title_remove:
        title = re.sub(source.title_remove, "", title).strip()
    return title or None


def _page_title(doc, source: GuidelineSource) -> str | None:
    title = None
    if source.title_selector:
        for element in css_selector(source.title_selector)(doc):
            title = _clean_title(_text_of(element), source)
            if title:
                break
    if title is None:
        candidates = [m.get("content") for m in doc.iterfind(".//meta[@property='og:title']")][:1]
        head_title = next(doc.iter("title"), None)
        if head_title is not None:
            candidates.append(_text_of(head_title))
        h1 = next(doc.iter("h1"), None)
        heading = _text_of(h1) if h1 is not None else ""
        if heading:
            # "<title>Topic | Site name</title>" + "<h1>Topic</h1>": the heading is the clean title.
            for candidate in candidates:
                if candidate and heading != candidate and heading in re.sub(r"\s+", " ", candidate):
                    candidates.insert(0, heading)
                    break
            candidates.append(heading)
        # A <title> (or og:title) that is no title (a file name, "Untitled Document", a DOI) gives way
        # to the <h1>; an <h1> reading as no title either leaves the first one that is not empty.
        cleaned = [title for title in (_clean_title(candidate, source) for candidate in candidates) if title]
        title = next((title for title in cleaned if looks_like_title(title)), cleaned[0] if cleaned else None)
    if title and source.subtitle_selector:
        for element in css_selector(source.subtitle_selector)(doc):
            subtitle = _SECTION_NUMBER.sub("", _text_of(element)).strip()
            if subtitle and _comparable(subtitle) != _comparable(title):
                title = f"{title} - {subtitle}"
                break
    return title


def normalise_markdown(markdown: str) -> str:
    """Undo trafilatura's Markdown escapes and code spans; ordered and nested items -> ``- ``."""
    text = _MD_ESCAPE.sub(r"\1", markdown)
    text = _CODE_SPAN.sub(r"\1", text)
    text = _ORDERED_ITEM.sub(r"\1- ", text)
    return _NESTED_ITEM.sub(r"\1 ", text)


def _comparable(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text).strip().casefold()


def _drop_title_header(markdown: str, title: str | None) -> str:
    """Remove the header repeating the title (the title is prepended) when it is among the headers the
    text starts with (a PDF's first page may set a label such as "Research article" above it)."""
    if not title:
        return markdown
    lines = markdown.split("\n")
    wanted = (_comparable(title), _comparable(title.split(" - ")[0]))
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        if not line.lstrip().startswith("#"):
            break
        if _comparable(marker_key(line)) in wanted:
            del lines[index]
            break
    return "\n".join(lines)


def _parse_html(markup: str):
    markup = _XML_DECLARATION.sub("", markup, count=1)
    try:
        doc = lxml_html.document_fromstring(markup, parser=_PARSER)
    except (etree.ParserError, ValueError) as exc:
        raise ValueError(f"unparseable HTML ({exc})") from None
    if doc is None or len(doc) == 0:
        raise ValueError("unparseable HTML")
    return doc


def _html_markdown(body: bytes, headers: Mapping[str, str],
                   source: GuidelineSource) -> tuple[str | None, str, str]:
    """(title, markdown, how it was extracted: one of EXTRACTION_KINDS) of an HTML page; raises
    ValueError when the page cannot be used.

    The page is parsed once with lxml; selectors are compiled to XPath once per source (cssselect),
    and trafilatura gets the selected tree itself, so it does not parse the page again. A
    ``content_selector`` that matches nothing (the site changed its markup) falls back to trafilatura
    on the whole page, so no article is lost to a selector miss."""
    import trafilatura

    # A page saved with the wrong charset (once or twice) is repaired before parsing: trafilatura drops
    # the C1 controls that ftfy needs to undo it.
    doc = _parse_html(repair_mojibake(_decode(body, headers)))
    title = _page_title(doc, source)
    _drop_note_marks(doc)
    unwrap_layout_tables(doc)
    if source.exclude_selector:
        for element in css_selector(source.exclude_selector)(doc):
            if element.getparent() is not None:
                element.drop_tree()
    if source.content_selector:
        selected = css_selector(source.content_selector)(doc)
        members = set(selected)
        # Keep the outermost matches only (a match nested in another one would repeat text).
        chosen = [e for e in selected if not any(p in members for p in e.iterancestors())]
    else:
        chosen = []
    if chosen:
        root = lxml_html.Element("html")
        article = etree.SubElement(etree.SubElement(root, "body"), "article")
        for element in chosen:
            article.append(element)   # moved out of the page, with its subtree
            element.tail = None       # the text after it belongs to the page, not to the article
        extracted = trafilatura.extract(root, output_format="markdown", include_links=False,
                                        include_tables=False, include_images=False, include_comments=False,
                                        fast=True, favor_recall=True, config=_config())
        extraction = EXTRACTED_BY_SELECTOR
    else:
        extracted = trafilatura.extract(doc, output_format="markdown", include_links=False,
                                        include_tables=False, include_images=False, include_comments=False,
                                        favor_precision=True, config=_config())
        extraction = SELECTOR_MISSED if source.content_selector else WHOLE_PAGE
    return title, normalise_markdown(extracted or ""), extraction


_BLOCK_TAGS = frozenset({"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol", "dl", "blockquote", "pre",
                         "section", "article", "form"})
_LAYOUT_CELL_WORDS = 40      # a cell of this many words is prose, not a datum
_LAYOUT_SHARE = 0.5          # a table holding this share of the page's words is the page's layout
_SUPERSCRIPT_MARK = re.compile(r"[\d\s,;*\u2020\u2021\u00a7\u2013-]+")
_TABLE_PARTS = frozenset({"table", "tbody", "thead", "tfoot", "tr", "td", "th", "caption", "colgroup", "col"})


def _words(element) -> int:
    return sum(len(piece.split()) for piece in element.itertext())


def _is_layout_table(table, page_words: int) -> bool:
    """A table used to lay out the page: it holds another table, a cell of paragraphs or headings, a
    cell of prose, or most of the page's text (see the module docstring)."""
    if table.get("role") in ("presentation", "none"):
        return True
    if next(table.iterdescendants("table"), None) is not None:
        return True
    for cell in table.iter("td", "th"):
        if any(isinstance(child.tag, str) and child.tag in _BLOCK_TAGS for child in cell.iterdescendants()):
            if _words(cell) >= 8:
                return True
        elif _words(cell) >= _LAYOUT_CELL_WORDS:
            return True
    return page_words > 0 and _words(table) >= page_words * _LAYOUT_SHARE and _words(table) >= _LAYOUT_CELL_WORDS


def unwrap_layout_tables(doc) -> int:
    """Turn the layout tables of `doc` into plain blocks (in place): rows and cells become ``<div>``s, so
    that the text in them reads as flowing text. Returns how many tables were unwrapped."""
    tables = list(doc.iter("table"))
    if not tables:
        return 0
    body = next(doc.iter("body"), doc)
    page_words = _words(body)
    layout = [table for table in tables if _is_layout_table(table, page_words)]
    # Each part belongs to its nearest table; the parts of a data table nested in a layout table stay.
    parts = []
    for table in layout:
        for element in table.iterdescendants(*_TABLE_PARTS):
            if element.tag != "table" and next(element.iterancestors("table"), None) is table:
                parts.append(element)
        parts.append(table)
    for element in parts:
        if element.tag in ("colgroup", "col"):
            element.drop_tree()
            continue
        element.tag = "div"
        for attribute in ("colspan", "rowspan", "width", "valign", "align", "border", "cellpadding",
                          "cellspacing", "summary", "role"):
            element.attrib.pop(attribute, None)
    return len(layout)


def _drop_note_marks(doc) -> None:
    """Remove superscript note marks (``<sup>1,2</sup>``, ``<sup>*</sup>``): affiliations and citations."""
    for sup in list(doc.iter("sup")):
        text = sup.text_content()
        if text.strip() and _SUPERSCRIPT_MARK.fullmatch(text) and len(text) <= 12 and sup.getparent() is not None:
            sup.drop_tree()


def _pdf_available() -> bool:
    try:
        import pdfminer  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


def is_pdf(body: bytes) -> bool:
    return b"%PDF-" in body[:1024]


def extract_document(record: Mapping[str, Any], source: GuidelineSource) -> dict | Drop:
    """One raw store record (``RAW_SCHEMA`` row as a dict) of `source` -> document dict or Drop."""
    raw_url = record.get("url") or ""
    try:
        url = normalize_url(raw_url)
    except ValueError:
        url = raw_url
    doc_id = document_id(source.tag, url)

    def drop(reason: str, detail: str | None) -> Drop:
        return Drop(id=doc_id, reason=reason, detail=detail, source=DOCUMENT_SOURCE)

    status, error = record.get("status"), record.get("error")
    if status is not None and status >= 400:
        return drop("fetch_error", str(status))
    if error or status is None:
        return drop("fetch_error", str(error or "no response"))
    if status >= 300 and status != 304:
        return drop("fetch_error", f"{status} (unfollowed redirect)")
    body = record.get("body")
    if not body:
        return drop("extract_error", "empty body" if status != 304 else "304 without a stored body")
    if isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    headers = record_headers(record)
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()

    if is_pdf(body):
        if not _pdf_available():
            return drop("pdf_unsupported", "install pdfminer.six")
        from gap_replay.guidelines_scraper.pdf import PdfError, convert_pdf

        try:
            converted = convert_pdf(body)
        except PdfError as exc:
            return drop("extract_error", f"unreadable PDF: {exc}")
        except Exception as exc:  # noqa: BLE001 - any PDF failure is this document's problem
            return drop("extract_error", f"unreadable PDF: {type(exc).__name__}: {exc}")
        title, text, extraction = converted.title, converted.text, converted.extraction
        if not text.strip():
            return drop("extract_error", "PDF without extractable text (scanned images?)")
        title = _clean_title(title, source)
    elif source.format == "pdf":
        return drop("extract_error", f"not a PDF ({content_type or 'unknown type'})")
    else:
        if content_type and content_type not in _HTML_TYPES:
            return drop("extract_error", f"not HTML ({content_type})")
        if not content_type and not _looks_like_html(body):
            return drop("extract_error", "not HTML (no content type, no HTML markup)")
        try:
            title, text, extraction = _html_markdown(body, headers, source)
        except ValueError as exc:  # our own checks: unparseable page, selector matched nothing
            return drop("extract_error", str(exc))
        except Exception as exc:  # noqa: BLE001 - a parser failure on one page must not stop the job
            return drop("extract_error", f"{type(exc).__name__}: {exc}")
    text = _drop_title_header(text, title)

    cleaned = clean_text(text, source)
    words = count_words(cleaned)
    if words < source.min_words:
        return drop("too_short", f"{words} words after cleaning (minimum {source.min_words})")
    full_text = f"{title}\n\n{cleaned}" if title else cleaned
    # The source's name and address travel with each document: the dataset card reads them from the data.
    extra: dict[str, Any] = {"audience": source.audience, "country": source.country, "source_name": source.name,
                             "source_url": source.base_url}
    final_url = record.get("final_url")
    if final_url and final_url != url:
        extra["final_url"] = final_url
    extra["extraction"] = extraction
    if is_pdf(body):
        extra["format"] = "pdf"
        if converted.layout_error:  # the layout pass failed: plain text instead (extraction says so)
            extra["extraction_error"] = converted.layout_error
    return make_document(
        id=doc_id,
        source=DOCUMENT_SOURCE,
        subset=source.tag,
        title=title,
        text=full_text,
        url=url,
        license="open" if source.open else "closed",
        extra=extra,
    )


def extract_records(records: Iterable[Mapping[str, Any]],
                    sources: Mapping[str, GuidelineSource]) -> Iterator[dict | Drop]:
    """Yield one outcome per article record (records of other kinds are skipped).

    Records of a source not in `sources` become ``Drop(reason="unknown_source")``.
    """
    for record in records:
        if record.get("kind", "article") != "article":
            continue
        source = sources.get(record.get("source"))
        if source is None:
            url = record.get("url") or ""
            yield Drop(id=document_id(str(record.get("source")), url), reason="unknown_source",
                       detail=f"no source spec for tag {record.get('source')!r}", source=DOCUMENT_SOURCE)
            continue
        yield extract_document(record, source)


def keeps_over(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """Of two documents with the same title, whether `a` is the one kept: the longer text, then the
    smaller id (a deterministic choice, whatever the order the documents come in)."""
    return (-len(a["text"]), a["id"]) < (-len(b["text"]), b["id"])


def deduplicate_titles(outcomes: Iterable[dict | Drop]) -> list[dict | Drop]:
    """Title deduplication within each source (the paper's rule): of the documents of one subset whose
    :func:`title_key` is equal, one is kept (:func:`keeps_over`) and each other one becomes
    ``Drop(reason="duplicate_title", detail=<kept id>)``. Drops pass through; order is kept.
    (The Spark job does the same with a window over ``(subset, title key)``.)"""
    outcomes = list(outcomes)
    best: dict[tuple[str, str], Mapping[str, Any]] = {}
    for outcome in outcomes:
        if isinstance(outcome, dict) and (key := title_key(outcome.get("title"))) is not None:
            group = (outcome["subset"], key)
            if group not in best or keeps_over(outcome, best[group]):
                best[group] = outcome
    result: list[dict | Drop] = []
    for outcome in outcomes:
        if isinstance(outcome, dict) and (key := title_key(outcome.get("title"))) is not None:
            kept = best[(outcome["subset"], key)]
            if kept is not outcome:
                result.append(Drop(id=outcome["id"], reason=DUPLICATE_TITLE, detail=kept["id"],
                                   source=DOCUMENT_SOURCE))
                continue
        result.append(outcome)
    return result


@dataclass
class ExtractionReport:
    """Per source: documents kept, how many of them the whole-page fallback produced (the source's
    content_selector missed: its markup changed), and drops by reason."""

    kept: Counter = field(default_factory=Counter)        # tag -> documents
    fallbacks: Counter = field(default_factory=Counter)   # (tag, extraction) -> documents extracted by a fallback
    dropped: Counter = field(default_factory=Counter)     # (tag, reason) -> drops

    @classmethod
    def of(cls, outcomes: Iterable[dict | Drop]) -> ExtractionReport:
        report = cls()
        for outcome in outcomes:
            if isinstance(outcome, Drop):
                # Drop ids are document ids: guideline:<tag>:<hash>.
                report.dropped[(outcome.id.split(":")[1], outcome.reason)] += 1
                continue
            tag = outcome["subset"]
            report.kept[tag] += 1
            extraction = json.loads(outcome.get("extra") or "{}").get("extraction")
            if extraction in FALLBACKS:
                report.fallbacks[(tag, extraction)] += 1
        return report

    def summary(self) -> str:
        """One line per source, e.g. ``idsa: kept 3 (whole-page fallback 3: content_selector missed),
        dropped 1 (too_short 1)``."""
        tags = dict.fromkeys([*self.kept, *(tag for tag, _ in self.dropped)])
        lines = []
        for tag in tags:
            line = f"{tag}: kept {self.kept[tag]}"
            fallbacks = sorted((kind, n) for (t, kind), n in self.fallbacks.items() if t == tag)
            if fallbacks:
                line += " (" + ", ".join(f"{kind} {n}: {FALLBACKS[kind]}" for kind, n in fallbacks) + ")"
            drops = sorted((reason, n) for (t, reason), n in self.dropped.items() if t == tag)
            if drops:
                line += f", dropped {sum(n for _, n in drops)} (" + ", ".join(f"{r} {n}" for r, n in drops) + ")"
            lines.append(line)
        return "\n".join(lines)
