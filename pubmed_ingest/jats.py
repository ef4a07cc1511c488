"""PMC full-text JATS XML to documents of the ``pubmed_papers`` source.

:func:`parse_jats` turns one article into a document whose text follows the MEDITRON rules
(see DESIGN.md): the title, the abstract, then the body with ``#``/``##``/``###`` section headers
and one blank line between paragraphs; metadata, authors, acknowledgements, funding, footnotes,
the reference list and table bodies left out; citations, figure/table references, captions and
formulas replaced by the in-text markers::

    [BIB_REF]Title truncated to 12 words..., Surname[/BIB_REF]
    [FIG_REF]Figure 3: caption truncated to 12 words...[/FIG_REF]
    [FIG]Figure 3: caption[/FIG]   [TABLE]Table 2: caption[/TABLE]   [FORMULA]tex or MathML text[/FORMULA]

:func:`iter_jats_articles` does the same for every article of a document: one for a bare
``<article>``, one per article of a ``pmc-articleset`` (NCBI efetch's answer for several ids).

Choices the rules leave open:
- The abstract comes under a ``# Abstract`` header (its own ``<title>`` when it has one); its
  sections are ``##``. Only the main abstract is used (no ``abstract-type``, or ``abstract`` /
  ``structured``), not digests, teasers or translations.
- Sections deeper than two levels all get ``###``; section labels ("2.1") are left out.
- Body sections that are metadata in disguise (acknowledgements, funding, competing interests,
  author contributions, supplementary material) are dropped like their ``back`` counterparts.
- A figure or table inside a paragraph is emitted after that paragraph, not mid-sentence;
  figures and tables in ``floats-group`` (outside the body) are emitted after the body.
- An xref that cannot be resolved (no rid, unknown target, a reference without a title or
  without an author name) emits nothing, and
  xrefs to footnotes, affiliations and correspondence are dropped with their symbols; other
  xrefs (to sections, supplementary files, equations) keep their visible text.
- Lists become ``- item`` lines (nested items indented two spaces) in one block.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from lxml import etree

from gap_replay.core import markers
from gap_replay.core.errors import is_transient
from gap_replay.core.outcome import Drop
from gap_replay.core.schema import make_document
from gap_replay.pubmed_ingest.xml_safety import (
    MATHML_NS,
    XLINK_HREF,
    first_year,
    local_name,
    math_text,
    normalize_doi,
    normalize_pmcid,
    normalize_space,
    walk_text,
    parse_bytes,
    remove_urls,
)

SOURCE = "pubmed_papers"
MARKER_WORDS = 12  # words kept of a title or caption inside [BIB_REF] / [FIG_REF]
GZIP_MAGIC = b"\x1f\x8b"
MAX_GUNZIPPED_BYTES = 64 * 1024 * 1024  # a gzip-compressed article may not inflate beyond this

_MATH = f"{{{MATHML_NS}}}math"
_ALI_LICENSE_REF = "{http://www.niso.org/schemas/ali/1.0/}license_ref"

_CITATION_TAGS = ("element-citation", "mixed-citation", "nlm-citation", "citation")
_FLOAT_TAGS = ("fig", "fig-group", "table-wrap", "table-wrap-group")
_MAIN_ABSTRACT_TYPES = frozenset({"", "abstract", "structured"})
_PREFERRED_PUB_TYPES = frozenset({"epub", "ppub", "epub-ppub"})
_PREFERRED_PUB_FORMATS = frozenset({"electronic", "print"})

# Never part of the text: front/back matter that may also occur in the body, media, and the
# graphic/table halves of figures and tables (their captions are rendered by the markers).
_DROPPED = frozenset({
    "ack", "fn-group", "fn", "ref-list", "funding-group", "funding-statement", "author-notes", "notes",
    "sub-article", "response", "glossary", "sig-block", "permissions", "attrib", "object-id",
    "supplementary-material", "media", "graphic", "inline-graphic", "alt-text", "long-desc",
    "table", "array", "table-wrap-foot", "email", "label", "processing-meta", "counts",
})
# xrefs whose visible text is only a symbol pointing at dropped matter.
_SILENT_XREF_TYPES = frozenset({"fn", "table-fn", "aff", "corresp", "author-notes", "contrib"})
# Elements whose text must be separated by a space from their neighbours in plain text.
_SPACED = frozenset({"p", "title", "subtitle", "break", "list-item", "sec", "caption", "def", "term", "td", "th"})
_NON_CONTENT_SEC_TYPES = frozenset({
    "supplementary-material", "coi-statement", "conflict", "funding", "funding-information",
    "ack", "acknowledgment", "acknowledgments", "acknowledgement", "acknowledgements", "author-contributions",
})
_NON_CONTENT_TITLE = re.compile(
    r"(?:acknowledge?ments?|funding(?: information| sources?)?|sources? of funding|financial (?:support|disclosures?)"
    r"|(?:declaration of )?competing (?:financial )?interests?|conflicts? of interests?(?: statement)?"
    r"|declarations? of (?:competing )?interests?|disclosures?(?: statement)?|authors?['\u2019]? contributions?"
    r"|contributions? of authors|(?:electronic )?supplementary (?:materials?|information|data)|additional files?"
    r"|publisher['\u2019]?s note)",
    re.IGNORECASE,
)
_TEX_DOCUMENT = re.compile(r"\\begin\{document\}(.*?)\\end\{document\}", re.DOTALL)
_TRAILING_PUNCTUATION = " .;,:"


def parse_jats(data: bytes, *, name: str) -> dict | Drop:
    """One JATS article (``.nxml``/``.xml`` bytes, gzip-compressed or not) to a document or a Drop.

    Drop reasons: ``parse_error`` (malformed XML or gzip, an empty input, or an unexpected
    structure; id ``file:<name>``), ``unsupported_input`` (well-formed XML whose root is neither
    ``article`` nor a ``pmc-articleset`` holding one; id ``file:<name>``), ``too_large`` (gzip inflating beyond MAX_GUNZIPPED_BYTES),
    ``no_identifier`` (neither PMCID nor DOI; id ``file:<name>``), ``no_text`` (empty abstract
    and body; id of the article). A failure that is not the content's (``errors.is_transient``: running
    out of memory) raises instead.

    Of a ``pmc-articleset`` holding several articles only the first is read: use
    :func:`iter_jats_articles` for all of them.
    """
    root = _parse_root(data, name)
    if isinstance(root, Drop):
        return root
    articles = _articles(root, name)
    if isinstance(articles, Drop):
        return articles
    return _article_outcome(articles[0], name)


def iter_jats_articles(data: bytes, *, name: str, known_ids: Mapping[str, str] | None = None) -> Iterator[dict | Drop]:
    """One outcome per JATS article of a document (bytes, gzip-compressed or not), in document order.

    A bare ``<article>`` root, or a ``pmc-articleset`` holding one article, gives exactly what
    :func:`parse_jats` gives. A ``pmc-articleset`` holding several (NCBI efetch's answer for several
    ids) gives one outcome per ``<article>`` child, each parsed as :func:`parse_jats` parses a single
    article but named ``<name>#article<k>`` (k counts the set's articles from 1): in the id of its
    ``no_identifier`` or ``parse_error`` Drop (``file:<name>#article<k>``: a failure of that article,
    not of the whole file), in a ``no_text`` detail and in the document's ``extra.input``. What fails
    for the whole document is one Drop with id ``file:<name>``, the only item: ``parse_error`` and
    ``too_large`` as for :func:`parse_jats`, ``unsupported_input`` for a root that is not an article
    and for a ``pmc-articleset`` without any ``<article>``.

    `known_ids` (``pmc``, ``pmid``, ``doi``: what a publisher's metadata says of a one-article document,
    such as the PMC Cloud Service's JSON) fill the ids the article's own ``<article-id>`` lack.
    """
    root = _parse_root(data, name)
    if isinstance(root, Drop):
        yield root
        return
    articles = _articles(root, name)
    if isinstance(articles, Drop):
        yield articles
        return
    if len(articles) == 1:
        yield _article_outcome(articles[0], name, known_ids)
        return
    for number, article in enumerate(articles, start=1):
        yield _article_outcome(article, f"{name}#article{number}")
        article.clear(keep_tail=True)  # its document is built: free the subtree while the rest is read


def _parse_root(data: bytes, name: str) -> etree._Element | Drop:
    """The root element of `data` (gunzipped first when it is gzip), or the Drop of the whole input."""
    try:
        if data[:2] == GZIP_MAGIC:
            inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            data = inflater.decompress(data, MAX_GUNZIPPED_BYTES + 1)
            if len(data) > MAX_GUNZIPPED_BYTES:
                return Drop(id=f"file:{name}", reason="too_large",
                            detail=f"inflates beyond {MAX_GUNZIPPED_BYTES} bytes", source=SOURCE)
            if not inflater.eof:
                raise EOFError("compressed article ended before the end-of-stream marker")
        return parse_bytes(data)
    except Exception as error:  # noqa: BLE001 - XMLSyntaxError, zlib.error, EOFError, ValueError on odd input
        if is_transient(error):  # out of memory: not the document's fault
            raise
        return _parse_error(name, error)


def _articles(root: etree._Element, name: str) -> list[etree._Element] | Drop:
    """The articles of a document: the root itself, or the ``<article>`` children of a wrapper
    (``pmc-articleset``); a Drop (``unsupported_input``) when there is none."""
    if root.tag == "article":
        return [root]
    articles = list(root.iterchildren("article"))
    if articles:
        return articles
    if root.tag == "pmc-articleset":
        detail = "root element <pmc-articleset> holds no JATS <article> (an empty article set)"
    else:
        detail = f"root element <{local_name(root.tag)}> is not a JATS <article>"
    return Drop(id=f"file:{name}", reason="unsupported_input", detail=detail, source=SOURCE)


def _article_outcome(article: etree._Element, name: str, known_ids: Mapping[str, str] | None = None) -> dict | Drop:
    """The document (or Drop) of one article element; `name` names it in Drop ids and details."""
    try:
        return _ArticleReader(article, name, known_ids).outcome()
    except Exception as error:  # noqa: BLE001 - one odd article must not end a partition
        if is_transient(error):
            raise
        return _parse_error(name, error)


def _parse_error(name: str, error: Exception) -> Drop:
    return Drop(id=f"file:{name}", reason="parse_error", detail=f"{type(error).__name__}: {error}", source=SOURCE)


class _ArticleReader:
    """Reads the metadata of one article and renders its text into blocks (paragraphs)."""

    def __init__(self, article: etree._Element, name: str, known_ids: Mapping[str, str] | None = None) -> None:
        self.article = article
        self.name = name
        self.known_ids = {kind: value for kind, value in (known_ids or {}).items() if value}
        self.meta = article.find("front/article-meta")
        if self.meta is None:
            self.meta = etree.Element("article-meta")
        self._bib_refs: dict[str, str] | None = None
        self._float_refs: dict[str, str] | None = None
        # Rendering state: finished blocks, the paragraph being built, floats waiting for it to end.
        self.blocks: list[str] = []
        self.inline: list[str] = []
        self.pending_floats: list[str] = []
        self.paragraph_depth = 0
        self.handlers: dict[Any, Callable[[etree._Element, int], None]] = {
            "sec": self._section,
            "p": self._paragraph,
            "title": self._paragraph,
            "list": self._list,
            "def-list": self._definition_list,
            "fig": self._figure,
            "fig-group": self._float_group,
            "table-wrap": self._table,
            "table-wrap-group": self._float_group,
            "xref": self._xref,
            "inline-formula": self._formula,
            "disp-formula": self._display_formula,
            "tex-math": self._formula,
            _MATH: self._formula,
            "break": self._space,
            "alternatives": self._alternatives,
            **dict.fromkeys(("boxed-text", "disp-quote", "statement", "caption", "verse-group", "speech",
                             "preformat", "code", "def-item", "chem-struct-wrap", "disp-formula-group",
                             "app", "address"), self._block),
            **dict.fromkeys(_DROPPED, self._skip),
        }

    # -- the document ---------------------------------------------------------------------

    def outcome(self) -> dict | Drop:
        ids = self._article_ids()
        pmcid = normalize_pmcid(ids.get("pmcid") or ids.get("pmc"))
        doi = normalize_doi(ids.get("doi"))
        if pmcid:
            doc_id, url = f"pmcid:{pmcid}", f"https://www.ncbi.nlm.nih.gov/pmc/articles/{pmcid}/"
        elif doi:
            doc_id, url = f"doi:{doi}", f"https://doi.org/{doi}"
        else:
            return Drop(id=f"file:{self.name}", reason="no_identifier",
                        detail="article has neither a PMC id nor a DOI", source=SOURCE)

        title = self._title()
        abstract = self._render_abstract()
        body = self._render_body()
        if not abstract and not body:
            return Drop(id=doc_id, reason="no_text", detail=f"empty abstract and body ({self.name})", source=SOURCE)

        article_type = self.article.get("article-type") or None
        extra = {"input": self.name, "article_type": article_type}
        pmid = (ids.get("pmid") or "").strip()
        return make_document(
            id=doc_id,
            source=SOURCE,
            title=title or None,
            text="\n\n".join([title, *abstract, *body] if title else [*abstract, *body]),
            url=url,
            pmid=int(pmid) if pmid.isdigit() else None,
            pmcid=pmcid,
            doi=doi,
            journal=self._plain(self.article.find("front/journal-meta//journal-title")) or None,
            year=self._year(),
            publication_types=[article_type] if article_type else [],
            keywords=self._keywords(),
            license=self._license(),
            extra={key: value for key, value in extra.items() if value},
        )

    def _article_ids(self) -> dict[str, str]:
        ids: dict[str, str] = {}
        for article_id in self.meta.iterfind("article-id"):
            ids.setdefault(article_id.get("pub-id-type", ""), (article_id.text or "").strip())
        for kind, value in self.known_ids.items():
            if not ids.get(kind) and not (kind == "pmc" and ids.get("pmcid")):
                ids[kind] = str(value)
        return ids

    def _title(self) -> str:
        title = self._plain(self.meta.find("title-group/article-title"))
        subtitle = self._plain(self.meta.find("title-group/subtitle"))
        if title and subtitle:
            return f"{title.rstrip(':')}: {subtitle}"
        return title or subtitle

    def _year(self) -> int | None:
        fallback = None
        for pub_date in self.meta.iterfind("pub-date"):
            year = first_year(pub_date.findtext("year"))
            if year is None:
                continue
            preferred = pub_date.get("pub-type") in _PREFERRED_PUB_TYPES or (
                pub_date.get("date-type") == "pub" and pub_date.get("publication-format") in _PREFERRED_PUB_FORMATS
            )
            if preferred:
                return year
            fallback = fallback or year
        return fallback

    def _keywords(self) -> list[str]:
        found = [self._plain(kwd) for kwd in self.meta.iterfind("kwd-group/kwd")]
        found += [self._plain(subject) for subject in self.meta.iterfind("article-categories//subject")]
        return list(dict.fromkeys(keyword for keyword in found if keyword))

    def _license(self) -> str | None:
        for license_ in self.meta.iterfind("permissions/license"):
            value = license_.get("license-type") or license_.get(XLINK_HREF) or license_.findtext(_ALI_LICENSE_REF)
            if value and value.strip():
                return value.strip()
            for link in license_.iter("ext-link", "uri"):
                href = link.get(XLINK_HREF) or link.text or ""
                if "creativecommons.org" in href:
                    return href.strip()
        return None

    # -- text: abstract, body, floats -----------------------------------------------------

    def _render_abstract(self) -> list[str]:
        abstracts = [a for a in self.meta.iterfind("abstract") if a.get("abstract-type", "") in _MAIN_ABSTRACT_TYPES]
        blocks: list[str] = []
        for abstract in abstracts:
            content = self._render(abstract, depth=1, skip_title=True)
            if content:
                heading = self._plain(abstract.find("title")).rstrip(":") or "Abstract"
                blocks += [f"# {heading}", *content]
        return blocks

    def _render_body(self) -> list[str]:
        blocks: list[str] = []
        body = self.article.find("body")
        if body is not None:
            blocks += self._render(body, depth=0)
        floats = self.article.find("floats-group")
        if floats is not None:
            blocks += self._render(floats, depth=0)
        return blocks

    def _render(self, element: etree._Element, depth: int, skip_title: bool = False) -> list[str]:
        """The blocks of `element`'s content, rendered with fresh state."""
        saved = self.blocks, self.inline, self.pending_floats, self.paragraph_depth
        self.blocks, self.inline, self.pending_floats, self.paragraph_depth = [], [], [], 0
        try:
            self._walk(element, depth, skip_title=skip_title)
            self._end_block()
            self.blocks += self.pending_floats
            return self.blocks
        finally:
            self.blocks, self.inline, self.pending_floats, self.paragraph_depth = saved

    def _walk(self, element: etree._Element, depth: int, skip_title: bool = False) -> None:
        """Render the content of `element`: its text, its children by handler, their tails."""
        handlers = self.handlers

        def render(child: etree._Element, inline: list[str]) -> None:
            tag = child.tag
            if skip_title and tag == "title":
                return
            handler = handlers.get(tag)
            if handler is None:  # inline markup (italic, sup, named-content...) and unknown elements
                self._walk(child, depth)
            else:
                handler(child, depth)

        walk_text(element, self.inline, render)

    def _end_block(self) -> None:
        """Close the paragraph being built, if it holds any text."""
        if self.inline:
            text = remove_urls(normalize_space("".join(self.inline)))
            self.inline.clear()
            if text:
                self.blocks.append(text)

    def _add_block(self, text: str) -> None:
        self._end_block()
        if text:
            self.blocks.append(text)

    # -- block handlers -----------------------------------------------------------------

    def _section(self, sec: etree._Element, depth: int) -> None:
        title = self._plain(sec.find("title"))
        if (sec.get("sec-type") or "").lower() in _NON_CONTENT_SEC_TYPES or (
            title and _NON_CONTENT_TITLE.fullmatch(title.rstrip(_TRAILING_PUNCTUATION))
        ):
            return
        self._end_block()
        if title:
            depth += 1
            self._add_block(f"{'#' * min(depth, 3)} {title.rstrip(':')}")
        blocks_before = len(self.blocks)
        self._walk(sec, depth, skip_title=True)
        self._end_block()
        if title and len(self.blocks) == blocks_before:  # nothing under the header: no header either
            self.blocks.pop()

    def _paragraph(self, paragraph: etree._Element, depth: int) -> None:
        self._end_block()
        self.paragraph_depth += 1
        self._walk(paragraph, depth)
        self.paragraph_depth -= 1
        self._end_block()
        if self.paragraph_depth == 0 and self.pending_floats:
            self.blocks += self.pending_floats
            self.pending_floats.clear()

    def _block(self, element: etree._Element, depth: int) -> None:
        self._end_block()
        self._walk(element, depth)
        self._end_block()

    def _list(self, list_: etree._Element, depth: int) -> None:
        self._add_block(self._plain(list_.find("title")))
        self._add_block("\n".join(self._list_lines(list_, depth)))

    def _list_lines(self, list_: etree._Element, depth: int) -> list[str]:
        lines: list[str] = []
        for item in list_.iterchildren("list-item"):
            item_blocks = self._render(item, depth)
            if item_blocks:
                lines.append(f"- {item_blocks[0]}")
                lines += ["  " + line for block in item_blocks[1:] for line in block.split("\n")]
        return lines

    def _definition_list(self, def_list: etree._Element, depth: int) -> None:
        self._end_block()
        title = self._plain(def_list.find("title"))
        if title:
            self._add_block(title)
        lines = []
        for item in def_list.iterchildren("def-item"):
            term = self._plain(item.find("term"))
            definition = " ".join(self._render(item.find("def"), depth)) if item.find("def") is not None else ""
            line = f"{term}: {definition}" if term and definition else term or definition
            if line:
                lines.append(f"- {line}")
        self._add_block(remove_urls("\n".join(lines)))

    def _figure(self, figure: etree._Element, depth: int) -> None:
        self._add_float(self._caption_marker("FIG", figure))

    def _table(self, table: etree._Element, depth: int) -> None:
        self._add_float(self._caption_marker("TABLE", table))

    def _float_group(self, group: etree._Element, depth: int) -> None:
        kind = "FIG" if group.tag == "fig-group" else "TABLE"
        self._add_float(self._caption_marker(kind, group))
        for member in group.iterchildren("fig", "table-wrap"):
            self._add_float(self._caption_marker(kind, member))

    def _add_float(self, marker: str) -> None:
        if not marker:
            return
        if self.paragraph_depth:
            self.pending_floats.append(marker)
        else:
            self._add_block(marker)

    def _caption_marker(self, kind: str, element: etree._Element) -> str:
        caption = self._label_and_caption(element)
        return markers.wrap(kind, caption) if caption else ""

    # -- inline handlers ----------------------------------------------------------------

    def _skip(self, element: etree._Element, depth: int) -> None:
        pass

    def _space(self, element: etree._Element, depth: int) -> None:
        self.inline.append(" ")

    def _alternatives(self, alternatives: etree._Element, depth: int) -> None:
        for child in alternatives:  # the same content several ways: keep the first that is text
            if isinstance(child.tag, str) and child.tag not in _DROPPED:
                handler = self.handlers.get(child.tag)
                if handler is None:
                    self._walk(child, depth)
                else:
                    handler(child, depth)
                return

    def _formula(self, formula: etree._Element, depth: int) -> None:
        text = self._formula_text(formula)
        if text:
            self.inline.append(markers.wrap(markers.FORMULA, text))

    def _display_formula(self, formula: etree._Element, depth: int) -> None:
        text = self._formula_text(formula)
        if text:
            self.inline.append(f" {markers.wrap(markers.FORMULA, text)} ")

    def _xref(self, xref: etree._Element, depth: int) -> None:
        ref_type = xref.get("ref-type")
        if ref_type == "bibr":
            found = [self._bib_marker(rid) for rid in (xref.get("rid") or "").split()]
        elif ref_type in ("fig", "table"):
            found = [self._float_marker(rid) for rid in (xref.get("rid") or "").split()]
        elif ref_type in _SILENT_XREF_TYPES:
            return
        else:
            self._walk(xref, depth)
            return
        self.inline.append(", ".join(marker for marker in found if marker))

    def _bib_marker(self, rid: str) -> str:
        if self._bib_refs is None:
            self._bib_refs = self._index_references()
        return self._bib_refs.get(rid, "")

    def _float_marker(self, rid: str) -> str:
        if self._float_refs is None:
            self._float_refs = {
                element.get("id"): markers.wrap(markers.FIG_REF, caption)
                for element in self.article.iter(*_FLOAT_TAGS)
                if element.get("id") and (caption := self._label_and_caption(element, truncate=True))
            }
        return self._float_refs.get(rid, "")

    def _index_references(self) -> dict[str, str]:
        """``[BIB_REF]`` marker per reference id, for the references that have a title and an author."""
        references = {}
        for ref in self.article.iter("ref"):
            ref_id = ref.get("id")
            citation = next(ref.iter(*_CITATION_TAGS), None)
            if not ref_id or citation is None:
                continue
            title = ""
            for title_tag in ("article-title", "chapter-title", "source"):
                title = remove_urls(self._plain(citation.find(f".//{title_tag}"))).rstrip(_TRAILING_PUNCTUATION)
                if title:
                    break
            author = ""  # the first author: a person's surname or a collaboration's name, whichever comes first
            for name in citation.iter("surname", "collab"):
                author = self._plain(name).strip(_TRAILING_PUNCTUATION)
                if author:
                    break
            if title and author:  # the marker's format needs both
                references[ref_id] = markers.wrap(markers.BIB_REF, f"{_truncate(title)}, {author}")
        return references

    # -- plain text of small elements (titles, captions, labels, references) ------------

    def _label_and_caption(self, element: etree._Element, truncate: bool = False) -> str:
        label = self._plain(element.find("label")).rstrip(_TRAILING_PUNCTUATION)
        caption = remove_urls(self._plain(element.find("caption")))
        if truncate:
            caption = _truncate(caption)
        return f"{label}: {caption}" if label and caption else label or caption

    def _formula_text(self, formula: etree._Element) -> str:
        if formula.tag == "tex-math":
            return _tex_text(formula.text or "")
        if formula.tag == _MATH:
            return normalize_space(math_text(formula))
        for tex in formula.iter("tex-math"):
            text = _tex_text(tex.text or "")
            if text:
                return text
        for math in formula.iter(_MATH):
            text = normalize_space(math_text(math))
            if text:
                return text
        return self._plain(formula, skip_label=True)

    def _plain(self, element: etree._Element | None, skip_label: bool = False) -> str:
        """Text of `element` with inline markup flattened, symbols of dropped matter left out."""
        if element is None:
            return ""
        if len(element) == 0:
            return normalize_space(element.text or "")
        parts: list[str] = []
        _collect_plain(element, parts, skip_label)
        return normalize_space("".join(parts))


def _collect_plain(element: etree._Element, parts: list[str], skip_label: bool) -> None:
    walk_text(element, parts, _plain_child_without_label if skip_label else _plain_child)


def _plain_child(child: etree._Element, parts: list[str], skip_label: bool = False) -> None:
    tag = child.tag
    if tag == _MATH:
        parts.append(math_text(child))
    elif tag == "tex-math":
        parts.append(_tex_text(child.text or ""))
    elif (tag == "xref" and child.get("ref-type") in _SILENT_XREF_TYPES) or (
            tag in _DROPPED and (tag != "label" or skip_label)):
        pass
    elif tag in _SPACED:
        parts.append(" ")
        _collect_plain(child, parts, skip_label)
        parts.append(" ")
    else:
        _collect_plain(child, parts, skip_label)


def _plain_child_without_label(child: etree._Element, parts: list[str]) -> None:
    _plain_child(child, parts, skip_label=True)


def _tex_text(tex: str) -> str:
    """The formula of a tex-math element, without the LaTeX document wrapper PMC puts around it."""
    match = _TEX_DOCUMENT.search(tex)
    formula = match.group(1) if match else tex
    return normalize_space(formula.strip().strip("$").strip())


def _truncate(text: str, words: int = MARKER_WORDS) -> str:
    parts = text.split()
    return " ".join(parts) if len(parts) <= words else " ".join(parts[:words]) + "..."

