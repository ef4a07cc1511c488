"""PubMed / MEDLINE citation XML to documents of the ``pubmed_abstracts`` source.

:func:`iter_medline` streams one NLM file (baseline or update, ``PubmedArticleSet`` or the legacy
``MedlineCitationSet`` format, plain or gzip) and yields per record a document, a :class:`Drop`,
or a :class:`DeleteCitation` (the PMIDs an update file withdraws). Memory stays flat: each record
is freed as soon as it has been turned into its outcome.

Speed (see ``bench/pubmed_parse.py``): building lxml nodes is most of the cost of reading a
citation, so (1) each record is read in one pass over the children of its few containers
(``MedlineCitation``, ``Article``, ``Journal``...), dispatching on the tag, instead of one
``find`` per field; and (2) the decompressed bytes go through :class:`_Pruner` before lxml sees
them, which cuts out whole elements that no field comes from (author and reference lists,
history dates, chemicals, grants: about half of the bytes of a recent record), so that no nodes
are built for them. What is cut is listed in ``PRUNED_ELEMENTS``; pruning is a pure byte-level
removal of complete ``<Name ...>...</Name>`` elements and it switches itself off for the rest of
a file when markup it cannot see through (comments, CDATA, processing instructions) appears.
XML errors inside a pruned element go unnoticed; everywhere else they end the file as before.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from lxml import etree

from gap_replay.core.errors import is_transient
from gap_replay.core.outcome import Drop
from gap_replay.core.schema import make_document
from gap_replay.pubmed_ingest.xml_safety import (
    element_text,
    first_year,
    local_name,
    normalize_doi,
    normalize_pmcid,
    normalize_space,
    pull_parser,
    release,
    remove_urls,
)

SOURCE = "pubmed_abstracts"
GZIP_MAGIC = b"\x1f\x8b"

# Root elements of the files we read: the two set formats, and a lone record (EFetch of one PMID).
ROOT_TAGS = frozenset({"PubmedArticleSet", "MedlineCitationSet", "PubmedArticle", "MedlineCitation"})
_LEGACY_ROOTS = frozenset({"MedlineCitationSet", "MedlineCitation"})
# Record-level elements, per format. In PubmedArticleSet files MedlineCitation is nested in
# PubmedArticle and read with it; in legacy MedlineCitationSet files it is the record itself.
_ARTICLE_SET_TAGS = ("PubmedArticle", "PubmedBookArticle", "DeleteCitation")
_LEGACY_SET_TAGS = ("MedlineCitation", "DeleteCitation")

# Elements no field comes from, cut out of the byte stream before parsing (module docstring).
PRUNED_ELEMENTS = ("AuthorList", "ReferenceList", "History", "ChemicalList", "GrantList", "InvestigatorList",
                   "SupplMeshList", "GeneSymbolList", "PersonalNameSubjectList", "DataBankList")

READ_SIZE = 64 * 1024  # bytes of decompressed XML handed to lxml at a time
_MAX_HELD = 1024 * 1024  # the pruner holds back at most this much of a cut tag

RETRACTED_PUBLICATION = "Retracted Publication"

# json.dumps(extra, sort_keys=True, ensure_ascii=False) as make_document writes it, without
# building an encoder per call.
_EXTRA_ENCODER = json.JSONEncoder(sort_keys=True, ensure_ascii=False)

# Every document of this source sets the same fields, so make_document checks them once, here
# (names, required fields, source), and each record fills a copy of its result: the same dict,
# in the schema's column order, without the per-call checks (a tenth of the extraction time).
_DOCUMENT_TEMPLATE = make_document(
    id="pmid:0", source=SOURCE, title=None, text="-", url=None, pmid=None, pmcid=None, doi=None, journal=None,
    year=None, publication_types=[], mesh_terms=[], keywords=[], retracted=False, extra=None,
)


@dataclass(frozen=True)
class DeleteCitation:
    """PMIDs that an update file withdraws from PubMed (downstream stages delete them)."""

    pmids: tuple[int, ...]


MedlineOutcome = dict | Drop | DeleteCitation


def iter_medline(source: str | os.PathLike | IO[bytes], *, name: str) -> Iterator[MedlineOutcome]:
    """Yield a document, Drop or DeleteCitation per record of one PubMed XML file.

    `source` is a path or a binary file object, gzip-compressed or not (told by its magic bytes).
    `name` names the input in drop ids and details. Drop reasons:

    - ``no_abstract`` (id ``pmid:<n>``): the citation has no abstract text;
    - ``book_article`` (id ``pmid:<n>``): a PubmedBookArticle (NCBI Bookshelf), not a journal abstract;
    - ``parse_error`` with id ``file:<name>#record<k>`` (k counts records from 1): a record without a
      usable PMID; with id ``pmid:<n>``: a record of unexpected structure; with id ``file:<name>``:
      the file turned out malformed (XML error, corrupt or truncated gzip, empty). That last one does
      not raise: the records before the error are yielded first, and it is the last item;
    - a failure to read the file (``gap_replay.core.errors.is_transient``: an ``OSError`` such as a
      missing file or a connection reset half-way through, ``MemoryError``) is no drop: it raises, after
      the records read before it, so that a caller never takes a file cut short for the whole of it
      (an update file's ``DeleteCitation`` comes last);
    - ``unsupported_input`` (id ``file:<name>``, the only item): XML whose root element is not a
      PubMed one (``PubmedArticleSet``, ``MedlineCitationSet``, or a lone record); told from the
      first chunk, without reading the rest of the file.

    Languages are not filtered here (a later stage does it).
    """
    return _iter_medline(source, name=name, prune=True)


def _iter_medline(source: str | os.PathLike | IO[bytes], *, name: str, prune: bool) -> Iterator[MedlineOutcome]:
    """:func:`iter_medline`, with byte-level pruning optional (the tests and the bench compare both)."""
    records = 0
    with _open_xml_stream(source) as stream:
        try:
            for element in _record_elements(stream, prune):
                if element.tag == "DeleteCitation":
                    yield _delete_citation(element)
                else:
                    records += 1
                    yield _record_outcome(element, name=name, index=records)
                release(element)
        except _UnsupportedRoot as error:
            yield Drop(id=f"file:{name}", reason="unsupported_input", detail=f"{error} ({name})", source=SOURCE)
        except Exception as error:  # noqa: BLE001 - bad content of any kind is a parse error of the file
            if is_transient(error):  # a read cut short is no end of the file (an update's deletions come last)
                raise
            yield Drop(
                id=f"file:{name}",
                reason="parse_error",
                detail=f"{type(error).__name__}: {error} (after {records} records)",
                source=SOURCE,
            )


# ---------------------------------------------------------------------------------------------
# Input


@contextmanager
def _open_xml_stream(source: str | os.PathLike | IO[bytes]) -> Iterator[IO[bytes]]:
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as raw:
            yield _decompressed(raw)
    else:
        yield _decompressed(source)


def _decompressed(stream: IO[bytes]) -> IO[bytes]:
    """`stream` itself, or a gzip reader over it when it starts with the gzip magic bytes."""
    if hasattr(stream, "peek"):
        head = stream.peek(2)[:2]
    elif stream.seekable():
        position = stream.tell()
        head = stream.read(2)
        stream.seek(position)
    else:
        head = stream.read(2)
        stream = io.BufferedReader(_Prefixed(head, stream))
    return gzip.GzipFile(fileobj=stream, mode="rb") if head == GZIP_MAGIC else stream


class _Prefixed(io.RawIOBase):
    """A raw stream that replays bytes already read from an unseekable stream, then the rest."""

    def __init__(self, prefix: bytes, rest: IO[bytes]) -> None:
        self._prefix = prefix
        self._rest = rest

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self._prefix:
            size = min(len(view), len(self._prefix))
            view[:size] = self._prefix[:size]
            self._prefix = self._prefix[size:]
            return size
        data = self._rest.read(len(view))
        view[: len(data)] = data
        return len(data)


class _UnsupportedRoot(ValueError):
    """XML, but not a PubMed citation file."""


def _record_elements(stream: IO[bytes], prune: bool) -> Iterator[etree._Element]:
    """The record-level elements of the XML read from `stream`, each at its end tag.

    The root element is sniffed first (a wrong one raises :class:`_UnsupportedRoot` before the
    file is read any further); it also tells which record tags to stop at. Pruning starts once
    the first record has been seen, so the prolog (DOCTYPE) never goes through the pruner.
    """
    head: list[bytes] = []
    root = None
    sniffer = pull_parser(events=("start",))
    while root is None:
        chunk = stream.read(READ_SIZE)
        if not chunk:
            break
        head.append(chunk)
        try:
            sniffer.feed(chunk)
            failed = False
        except etree.XMLSyntaxError:
            failed = True  # the main parser below meets the same error and reports it
        try:
            for _event, element in sniffer.read_events():
                root = element.tag
                break
        except etree.XMLSyntaxError:
            failed = True
        if failed:
            break
    if root is not None and root not in ROOT_TAGS:
        namespace = f" in namespace {root[1:root.index('}')]}" if root.startswith("{") else ""
        raise _UnsupportedRoot(
            f"root element <{local_name(root)}>{namespace} is not PubmedArticleSet or MedlineCitationSet")

    parser = pull_parser(events=("end",), tag=_LEGACY_SET_TAGS if root in _LEGACY_ROOTS else _ARTICLE_SET_TAGS)
    pruner = _Pruner(PRUNED_ELEMENTS) if prune else None
    pruning = False
    read = stream.read
    chunks: Iterator[bytes] = iter(head)
    while True:
        chunk = next(chunks, None)
        if chunk is None:
            chunk = read(READ_SIZE)
            if not chunk:
                break
        try:
            parser.feed(pruner.feed(chunk) if pruning else chunk)
        finally:  # on an XML error, the records completed before it come first
            for _event, element in parser.read_events():
                pruning = pruner is not None
                yield element
    if pruning:
        try:
            parser.feed(pruner.flush())
        finally:
            for _event, element in parser.read_events():
                yield element
    # On a truncated document close() raises, and libxml2 2.14+ first emits end events for the elements
    # still open: those records are cut short, so they are dropped with the error rather than kept.
    parser.close()
    for _event, element in parser.read_events():
        yield element


class _Pruner:
    """Removes complete elements with the given names from XML fed to it in arbitrary chunks.

    A removed element is everything from its start tag ``<Name`` (followed by whitespace, ``>``
    or ``/>``) to its matching ``</Name>``, nested elements of the same name included; a
    self-closing one goes alone. Start tags are only looked for in element content, so the
    pruner must not see the prolog; and it stops looking for new ones for good at the first
    ``<!`` or ``<?`` outside a removed element (a comment, CDATA section or processing
    instruction may hold text that only looks like a tag). A tag cut by a chunk boundary is held
    back until the next chunk (:meth:`flush` gives what is held at the end).

    One regular-expression search finds the next start tag of any of the names (or a ``<!``/``<?``);
    inside a removed element only its own end tag and same-name start tags are looked for.
    """

    def __init__(self, names: tuple[str, ...]) -> None:
        alternatives = b"|".join(re.escape(name.encode()) for name in names)
        first_letters = re.escape(bytes(sorted({name.encode()[0] for name in names} | {ord("!"), ord("?")})))
        # The lookahead rejects most "<" at once (a quarter less time than trying each name).
        self._next = re.compile(rb"<(?=[" + first_letters + rb"])(?:(" + alternatives + rb")[ \t\r\n/>]|[!?])")
        self._longest = max(len(name) for name in names) + 4  # "</" name ">" and one more
        self._held = b""
        self._opening = self._closing = b""  # "<Name" and "</Name" of the element being removed
        self._depth = 0  # nesting depth inside the element being removed; 0: not removing
        self.enabled = True

    def feed(self, data: bytes) -> bytes:
        if self._held:
            data = self._held + data
            self._held = b""
        if not self.enabled and not self._depth:
            return data
        # Hold back a possibly cut tag: from the last "<" when it is too close to the end to
        # tell a whole start or end tag of a pruned element.
        end = len(data)
        last = data.rfind(b"<", max(0, end - self._longest))
        if last != -1:
            end = last
        out, position = self._prune(data, end)
        self._held = data[position:]
        if len(self._held) > _MAX_HELD:  # a start tag that never ends: malformed, not worth holding
            raise ValueError(f"a tag at the end of {len(data)} bytes runs over {_MAX_HELD} bytes")
        return out

    def flush(self) -> bytes:
        data, self._held = self._held, b""
        if not data:
            return b""
        out, position = self._prune(data, len(data))
        return out + data[position:]

    def _prune(self, data: bytes, end: int) -> tuple[bytes, int]:
        """The kept bytes of ``data[:end]``, and the position from which bytes are still undecided."""
        kept: list[bytes] = []
        position = 0
        while position < end:
            if self._depth:  # inside an element being removed
                close_at, close_end = self._find_closing(data, position, end)
                open_at = self._find_opening(data, position, end if close_at == -1 else close_at)
                if open_at != -1:
                    tag_end = data.find(b">", open_at, end)
                    if tag_end == -1:
                        position = open_at
                        break  # decided with the next chunk
                    if data[tag_end - 1] != 0x2F:  # not "/>": one level deeper
                        self._depth += 1
                    position = tag_end + 1
                elif close_at == -1:
                    position = end  # all of it inside the element: nothing kept
                elif close_end == -1:
                    position = close_at
                    break  # an end tag cut short: decided with the next chunk
                else:
                    position = close_end
                    self._depth -= 1
                continue
            match = self._next.search(data, position, end) if self.enabled else None
            if match is None:
                kept.append(data[position:end])
                position = end
                break
            start = match.start()
            name = match.group(1)
            if name is None:  # "<!" or "<?": stop pruning
                self.enabled = False
                kept.append(data[position:end])
                position = end
                break
            tag_end = data.find(b">", start, end)
            if tag_end == -1:
                kept.append(data[position:start])
                position = start
                break
            kept.append(data[position:start])
            position = tag_end + 1
            if data[tag_end - 1] != 0x2F:  # not self-closing: remove up to the matching end tag
                self._opening, self._closing, self._depth = b"<" + name, b"</" + name, 1
        return b"".join(kept), position

    def _find_closing(self, data: bytes, position: int, end: int) -> tuple[int, int]:
        """Start and end of the next end tag of the element being removed before `end`, or -1s
        (the end alone -1: a tag cut short by `end`).

        ``</Name>`` as NCBI writes it; ``</Name >`` (white space before ``>``) is valid XML too.
        """
        closing = self._closing
        while True:
            found = data.find(closing, position, end)
            if found == -1:
                return -1, -1
            after = found + len(closing)  # where ">" is in the usual form
            while after < end and data[after : after + 1] in (b" ", b"\t", b"\r", b"\n"):
                after += 1
            if after == end:
                return found, -1  # cut by the end of the data: decided with more of it
            if data[after : after + 1] == b">":
                return found, after + 1
            position = found + 1

    def _find_opening(self, data: bytes, position: int, end: int) -> int:
        """Where the next start tag of the element being removed begins before `end`, or -1."""
        opening = self._opening
        size = len(opening)
        while True:
            found = data.find(opening, position, end)
            if found == -1 or data[found + size : found + size + 1] in (b" ", b"\t", b"\r", b"\n", b"/", b">"):
                return found
            position = found + 1


# ---------------------------------------------------------------------------------------------
# Records


def _delete_citation(element: etree._Element) -> DeleteCitation:
    pmids = (_as_int(pmid.text) for pmid in element.iterchildren("PMID"))
    return DeleteCitation(pmids=tuple(pmid for pmid in pmids if pmid is not None))


def _as_int(text: str | None) -> int | None:
    text = (text or "").strip()
    return int(text) if text.isdigit() else None


def _record_outcome(record: etree._Element, *, name: str, index: int) -> dict | Drop:
    """The outcome of one PubmedArticle, PubmedBookArticle or legacy MedlineCitation element."""
    record_id = f"file:{name}#record{index}"
    try:
        tag = record.tag
        if tag == "PubmedArticle":
            citation = pubmed_data = None
            for child in record:
                child_tag = child.tag
                if child_tag == "MedlineCitation":
                    citation = child
                elif child_tag == "PubmedData":
                    pubmed_data = child
        elif tag == "MedlineCitation":
            citation, pubmed_data = record, None
        else:  # PubmedBookArticle
            pmid = _as_int(record.findtext("BookDocument/PMID"))
            return Drop(
                id=f"pmid:{pmid}" if pmid is not None else record_id,
                reason="book_article",
                detail=f"PubmedBookArticle (NCBI Bookshelf) record #{index} of {name}: not a journal abstract",
                source=SOURCE,
            )
        outcome = _citation_outcome(citation, pubmed_data, name) if citation is not None else None
        if isinstance(outcome, str):  # no usable PMID: what was found instead
            return Drop(id=record_id, reason="parse_error", detail=f"{outcome} in record #{index} of {name}",
                        source=SOURCE)
        if outcome is None:
            return Drop(id=record_id, reason="parse_error", detail=f"no PMID in record #{index} of {name}",
                        source=SOURCE)
        return outcome
    except Exception as error:  # noqa: BLE001 - one odd record must not end the file
        if is_transient(error):  # out of memory, say: not the record's fault
            raise
        pmid = _record_pmid(record)
        return Drop(id=f"pmid:{pmid}" if pmid is not None else record_id, reason="parse_error",
                    detail=f"{type(error).__name__}: {error} (record #{index} of {name})", source=SOURCE)


def _record_pmid(record: etree._Element) -> int | None:
    try:
        return _as_int(record.findtext("PMID") if record.tag == "MedlineCitation"
                       else record.findtext("MedlineCitation/PMID"))
    except Exception:  # noqa: BLE001
        return None


def _citation_outcome(citation: etree._Element, pubmed_data: etree._Element | None, name: str) -> dict | Drop | str:
    """The document or Drop of a citation; a string saying what was found when it has no usable PMID."""
    pmid_element = article = mesh_list = journal_info = corrections = None
    keyword_lists: list[etree._Element] = []
    other_abstract_elements: list[etree._Element] = []
    other_ids: list[etree._Element] = []
    for child in citation:  # one pass over MedlineCitation's children, by tag
        tag = child.tag
        if tag == "PMID":
            if pmid_element is None:
                pmid_element = child
        elif tag == "Article":
            if article is None:
                article = child
        elif tag == "MeshHeadingList":
            if mesh_list is None:
                mesh_list = child
        elif tag == "KeywordList":
            keyword_lists.append(child)
        elif tag == "MedlineJournalInfo":
            if journal_info is None:
                journal_info = child
        elif tag == "OtherAbstract":
            other_abstract_elements.append(child)
        elif tag == "OtherID":
            other_ids.append(child)
        elif tag == "CommentsCorrectionsList":
            corrections = child if corrections is None else corrections
    if pmid_element is None:
        return "no PMID"
    pmid = _as_int(pmid_element.text)
    if pmid is None:
        return f"PMID {pmid_element.text!r}"
    if article is None:
        return Drop(id=f"pmid:{pmid}", reason="no_abstract", detail=f"citation has no Article element ({name})",
                    source=SOURCE)

    abstract = title_element = vernacular_element = journal = None
    languages: list[str] = []
    publication_types: list[str] = []
    elocations: list[etree._Element] = []
    article_dates: list[etree._Element] = []
    for child in article:  # one pass over Article's children
        tag = child.tag
        if tag == "Abstract":
            if abstract is None:
                abstract = child
        elif tag == "ArticleTitle":
            if title_element is None:
                title_element = child
        elif tag == "Journal":
            if journal is None:
                journal = child
        elif tag == "Language":
            text = normalize_space(child.text or "") if len(child) == 0 else element_text(child)
            if text:
                languages.append(text)
        elif tag == "PublicationTypeList":
            for publication_type in child:
                text = element_text(publication_type)
                if text:
                    publication_types.append(text)
        elif tag == "ELocationID":
            elocations.append(child)
        elif tag == "VernacularTitle":
            if vernacular_element is None:
                vernacular_element = child
        elif tag == "ArticleDate":
            article_dates.append(child)

    paragraphs = _abstract_paragraphs(abstract)
    if not paragraphs:
        return Drop(id=f"pmid:{pmid}", reason="no_abstract", detail=f"no AbstractText with text ({name})",
                    source=SOURCE)
    vernacular_title = element_text(vernacular_element)
    title = element_text(title_element) or vernacular_title
    if title:
        paragraphs.insert(0, title)

    journal_title = journal_iso = issn = ""
    year = None
    if journal is not None:
        journal_title, journal_iso, issn, year = _journal(journal)
    if year is None:
        for article_date in article_dates:
            year = first_year(article_date.findtext("Year"))
            if year:
                break

    doi = pmcid = None
    if pubmed_data is not None:
        doi, pmcid = _pubmed_data_ids(pubmed_data)
    if pmcid is None:
        # Legacy records (and some current ones) carry it only as an NLM OtherID, "PMC123 [Available on ...]".
        for other_id in other_ids:
            text = other_id.text or ""
            if other_id.get(b"Source") == "NLM" and text.lstrip().upper().startswith("PMC"):
                pmcid = normalize_pmcid(text)
                if pmcid:
                    break
    if doi is None:
        for location in elocations:
            if location.get(b"EIdType") == "doi" and location.get(b"ValidYN", "Y") == "Y":
                doi = normalize_doi(location.text)
                if doi:
                    break

    keywords = []
    for keyword_list in keyword_lists:
        for keyword in keyword_list:
            text = element_text(keyword)
            if text:
                keywords.append(text)

    extra: dict[str, Any] = {"input": name}
    pmid_version = _as_int(pmid_element.get(b"Version"))
    if pmid_version is not None:
        extra["pmid_version"] = pmid_version
    if vernacular_title:
        extra["vernacular_title"] = vernacular_title
    if languages:
        extra["languages"] = languages
    if journal_iso:
        extra["journal_iso"] = journal_iso
    if issn:
        extra["issn"] = issn
    if journal_info is not None:
        nlm_unique_id = _child_text(journal_info, "NlmUniqueID")
        if nlm_unique_id:
            extra["nlm_unique_id"] = nlm_unique_id
    if other_abstract_elements:
        other_abstracts = _other_abstracts(other_abstract_elements)
        if other_abstracts:
            extra["other_abstracts"] = other_abstracts

    document = _DOCUMENT_TEMPLATE.copy()
    document["id"] = f"pmid:{pmid}"
    document["title"] = title or None
    document["text"] = "\n\n".join(paragraphs)
    document["url"] = f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/"
    document["pmid"] = pmid
    document["pmcid"] = pmcid
    document["doi"] = doi
    document["journal"] = journal_title or None
    document["year"] = year
    document["publication_types"] = publication_types
    document["mesh_terms"] = _mesh_terms(mesh_list) if mesh_list is not None else []
    document["keywords"] = keywords
    document["retracted"] = RETRACTED_PUBLICATION in publication_types or (
        corrections is not None and _has_retraction_notice(corrections))
    document["extra"] = _EXTRA_ENCODER.encode(extra)
    return document


def _child_text(parent: etree._Element, tag: str) -> str:
    """element_text of the first child of `parent` named `tag` ('' when none)."""
    for child in parent:  # a plain loop: cheaper than iterchildren(tag) over a few children
        if child.tag == tag:
            return element_text(child)
    return ""


def _journal(journal: etree._Element) -> tuple[str, str, str, int | None]:
    """Title, ISO abbreviation, ISSN and publication year (Year, else MedlineDate) of a Journal."""
    title = iso = issn = ""
    issue = None
    for child in journal:
        tag = child.tag
        if tag == "Title":
            title = title or element_text(child)
        elif tag == "ISOAbbreviation":
            iso = iso or element_text(child)
        elif tag == "ISSN":
            issn = issn or element_text(child)
        elif tag == "JournalIssue" and issue is None:
            issue = child
    year = None
    if issue is not None:
        for pub_date in issue:
            if pub_date.tag != "PubDate":
                continue
            year_text = medline_date = None
            for part in pub_date:
                tag = part.tag
                if tag == "Year":
                    year_text = part.text if year_text is None else year_text
                elif tag == "MedlineDate":
                    medline_date = part.text if medline_date is None else medline_date
            year = first_year(year_text) or first_year(medline_date)
            break
    return title, iso, issn, year


def _pubmed_data_ids(pubmed_data: etree._Element) -> tuple[str | None, str | None]:
    """The first valid DOI and PMCID of PubmedData's ArticleIdList."""
    doi = pmcid = None
    for id_list in pubmed_data:
        if id_list.tag != "ArticleIdList":
            continue
        for article_id in id_list:
            id_type = article_id.get(b"IdType")
            if id_type == "doi":
                doi = doi or normalize_doi(article_id.text)
            elif id_type == "pmc":
                pmcid = pmcid or normalize_pmcid(article_id.text)
    return doi, pmcid


def _abstract_paragraphs(abstract: etree._Element | None) -> list[str]:
    """One paragraph per AbstractText, ``LABEL: `` first when it is labelled; URLs removed."""
    if abstract is None:
        return []
    paragraphs = []
    for part in abstract:
        if part.tag != "AbstractText":
            continue
        text = remove_urls(element_text(part))
        if text:
            label = part.get(b"Label")
            label = label.strip() if label else ""
            paragraphs.append(f"{label}: {text}" if label else text)
    return paragraphs


def _other_abstracts(elements: list[etree._Element]) -> list[dict[str, str | None]]:
    other_abstracts = []
    for other in elements:
        text = "\n\n".join(_abstract_paragraphs(other))
        if text:
            other_abstracts.append({"language": other.get(b"Language"), "type": other.get(b"Type"), "text": text})
    return other_abstracts


def _mesh_terms(heading_list: etree._Element) -> list[dict[str, Any]]:
    """MeSH descriptors; a heading is major when its descriptor or any of its qualifiers is."""
    terms = []
    term: dict[str, Any] | None = None
    # One C-level walk over the descriptors and qualifiers in document order (each qualifier
    # belongs to the descriptor before it), rather than a Python loop per heading.
    for part in heading_list.iter("DescriptorName", "QualifierName"):
        major = part.get(b"MajorTopicYN") == "Y"
        if part.tag == "DescriptorName":
            descriptor = element_text(part)
            term = {"descriptor": descriptor, "major_topic": major} if descriptor else None
            if term is not None:
                terms.append(term)
        elif major and term is not None:
            term["major_topic"] = True
    return terms


def _has_retraction_notice(corrections: etree._Element) -> bool:
    return any(link.get(b"RefType") == "RetractionIn" for link in corrections if link.tag == "CommentsCorrections")
