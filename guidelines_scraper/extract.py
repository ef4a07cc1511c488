"""Raw fetch record -> guideline document (or a :class:`~gap_replay.outcome.Drop`). Pure: no network.

HTML: the page is decoded (HTTP charset, then ``<meta>``, then detection), the source's
``exclude_selector`` elements are removed, and when the source has a ``content_selector`` only the
matching elements are kept (wrapped in an ``<article>``, which is what makes trafilatura keep their
headings and lists; trafilatura alone can miss the article or drop its structure). trafilatura
turns that into Markdown (``#`` headers, ``- `` lists, no links, no tables); its escapes and
emphasis marks are undone here, then :func:`guidelines_scraper.clean.clean_text` cleans it.

PDF (``format = "pdf"``): text from ``pypdf`` when it is installed, else
``Drop(reason="pdf_unsupported")``. Minimal for now: no header/footer or column handling.

Outcomes: ``fetch_error`` (the record has an error or HTTP status >= 400), ``extract_error``
(wrong content type, undecodable page, selector matching nothing, unreadable PDF),
``pdf_unsupported`` and ``too_short`` (fewer than ``source.min_words`` words after cleaning).
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from bs4 import BeautifulSoup
from bs4.dammit import UnicodeDammit

from gap_replay.outcome import Drop
from gap_replay.schema import make_document
from guidelines_scraper.clean import clean_text, count_words, marker_key
from guidelines_scraper.fetch import normalize_url
from guidelines_scraper.raw_store import record_headers
from guidelines_scraper.sources import GuidelineSource

DOCUMENT_SOURCE = "guidelines"
_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_MD_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|>~<])")
_ORDERED_ITEM = re.compile(r"^(\s*)\d{1,3}[.)]\s+", re.MULTILINE)
_NESTED_ITEM = re.compile(r"^\s+([-*+])\s+", re.MULTILINE)
_CODE_SPAN = re.compile(r"`([^`\n]*)`")
_META_CHARSET = re.compile(rb"<meta[^>]+charset=[\"']?([A-Za-z0-9_.:-]+)", re.IGNORECASE)

_trafilatura_config = None


def document_id(tag: str, url: str) -> str:
    """``guideline:<tag>:<16 hex of SHA-1 of the canonical URL without its scheme>``."""
    key = re.sub(r"^[A-Za-z][A-Za-z0-9+.-]*://", "", url)
    return f"guideline:{tag}:{hashlib.sha1(key.encode('utf-8')).hexdigest()[:16]}"


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


def _decode(body: bytes, headers: Mapping[str, str]) -> str:
    encodings = [e for e in (_charset(headers),) if e]
    meta = _META_CHARSET.search(body[:4096])
    if meta:
        encodings.append(meta.group(1).decode("ascii", "replace"))
    dammit = UnicodeDammit(body, known_definite_encodings=encodings, is_html=True)
    if dammit.unicode_markup is None:
        raise ValueError("undecodable page")
    return dammit.unicode_markup


def _clean_title(title: str | None, source: GuidelineSource) -> str | None:
    if not title:
        return None
    title = re.sub(r"\s+", " ", title).strip()
    if source.title_remove:
        title = re.sub(source.title_remove, "", title).strip()
    return title or None


def _page_title(soup: BeautifulSoup, source: GuidelineSource) -> str | None:
    if source.title_selector:
        element = soup.select_one(source.title_selector)
        if element is not None:
            found = _clean_title(element.get_text(" ", strip=True), source)
            if found:
                return found
    meta = soup.find("meta", attrs={"property": "og:title"})
    candidates = [meta.get("content") if meta else None]
    if soup.title is not None:
        candidates.append(soup.title.get_text(" ", strip=True))
    h1 = soup.find("h1")
    heading = re.sub(r"\s+", " ", h1.get_text(" ", strip=True)) if h1 is not None else ""
    if heading:
        # "<title>Topic | Site name</title>" + "<h1>Topic</h1>": the heading is the clean title.
        for candidate in candidates:
            if candidate and heading != candidate and heading in re.sub(r"\s+", " ", candidate):
                candidates.insert(0, heading)
                break
        candidates.append(heading)
    for candidate in candidates:
        found = _clean_title(candidate, source)
        if found:
            return found
    return None


def normalise_markdown(markdown: str) -> str:
    """Undo trafilatura's Markdown escapes and code spans; ordered and nested items -> ``- ``."""
    text = _MD_ESCAPE.sub(r"\1", markdown)
    text = _CODE_SPAN.sub(r"\1", text)
    text = _ORDERED_ITEM.sub(r"\1- ", text)
    return _NESTED_ITEM.sub(r"\1 ", text)


def _comparable(text: str) -> str:
    return re.sub(r"[\W_]+", " ", text).strip().casefold()


def _drop_title_header(markdown: str, title: str | None) -> str:
    """Remove the first line when it is a header repeating the title (the title is prepended)."""
    if not title:
        return markdown
    lines = markdown.split("\n")
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        if line.lstrip().startswith("#") and _comparable(marker_key(line)) == _comparable(title):
            del lines[index]
        break
    return "\n".join(lines)


def _html_markdown(body: bytes, headers: Mapping[str, str], source: GuidelineSource) -> tuple[str | None, str]:
    """(title, markdown) of an HTML page; raises ValueError when the page cannot be used."""
    import trafilatura

    markup = _decode(body, headers)
    soup = BeautifulSoup(markup, "lxml")
    if soup.find() is None:
        raise ValueError("unparseable HTML")
    title = _page_title(soup, source)
    if source.exclude_selector:
        for element in soup.select(source.exclude_selector):
            element.decompose()
    if source.content_selector:
        selected = soup.select(source.content_selector)
        # Keep the outermost matches only (a match nested in another one would repeat text).
        chosen = [e for e in selected if not any(p in selected for p in e.parents)]
        if not chosen:
            raise ValueError(f"content_selector {source.content_selector!r} matched nothing")
        fragment = "<html><body><article>" + "".join(str(e) for e in chosen) + "</article></body></html>"
        extracted = trafilatura.extract(fragment, output_format="markdown", include_links=False,
                                        include_tables=False, include_images=False, include_comments=False,
                                        fast=True, favor_recall=True, config=_config())
    else:
        page = str(soup) if source.exclude_selector else markup
        extracted = trafilatura.extract(page, output_format="markdown", include_links=False,
                                        include_tables=False, include_images=False, include_comments=False,
                                        favor_precision=True, config=_config())
    return title, normalise_markdown(extracted or "")


def _pdf_text(body: bytes) -> tuple[str | None, str]:
    import pypdf  # noqa: PLC0415 - optional dependency, checked by the caller

    reader = pypdf.PdfReader(io.BytesIO(body))
    pages = [(page.extract_text() or "") for page in reader.pages]
    title = None
    try:
        metadata = reader.metadata
        title = metadata.title if metadata is not None else None
    except Exception:  # noqa: BLE001 - broken metadata must not lose the text
        title = None
    return (str(title).strip() or None) if title else None, "\n\n".join(pages)


def _pypdf_available() -> bool:
    try:
        import pypdf  # noqa: F401, PLC0415
    except ImportError:
        return False
    return True


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
    if status >= 300:
        return drop("fetch_error", f"{status} (unfollowed redirect)")
    body = record.get("body")
    if not body:
        return drop("extract_error", "empty body")
    if isinstance(body, (bytearray, memoryview)):
        body = bytes(body)
    headers = record_headers(record)
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()

    if source.format == "pdf":
        if b"%PDF-" not in body[:1024]:
            return drop("extract_error", f"not a PDF ({content_type or 'unknown type'})")
        if not _pypdf_available():
            return drop("pdf_unsupported", "install pypdf")
        try:
            title, text = _pdf_text(body)
        except Exception as exc:  # noqa: BLE001 - any PDF library failure is this document's problem
            return drop("extract_error", f"unreadable PDF: {type(exc).__name__}: {exc}")
        title = _clean_title(title, source)
    else:
        if content_type and content_type not in _HTML_TYPES:
            return drop("extract_error", f"not HTML ({content_type})")
        if not content_type and not _looks_like_html(body):
            return drop("extract_error", "not HTML (no content type, no HTML markup)")
        try:
            title, text = _html_markdown(body, headers, source)
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
    extra: dict[str, Any] = {"audience": source.audience, "country": source.country, "source_name": source.name}
    final_url = record.get("final_url")
    if final_url and final_url != url:
        extra["final_url"] = final_url
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
