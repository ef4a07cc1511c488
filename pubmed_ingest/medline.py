"""PubMed / MEDLINE citation XML to documents of the ``pubmed_abstracts`` source.

:func:`iter_medline` streams one NLM file (baseline or update, ``PubmedArticleSet`` or the legacy
``MedlineCitationSet`` format, plain or gzip) and yields per record a document, a :class:`Drop`,
or a :class:`DeleteCitation` (the PMIDs an update file withdraws). Memory stays flat: each record
is freed as soon as it has been turned into its outcome.
"""

from __future__ import annotations

import gzip
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import IO, Any

from lxml import etree

from gap_replay.outcome import Drop
from gap_replay.schema import make_document
from pubmed_ingest.xml_safety import (
    element_text,
    first_year,
    iterparse,
    normalize_doi,
    normalize_pmcid,
    release,
    remove_urls,
)

SOURCE = "pubmed_abstracts"
GZIP_MAGIC = b"\x1f\x8b"

# Record-level elements. In PubmedArticleSet files MedlineCitation is nested in PubmedArticle
# and handled with it; in legacy MedlineCitationSet files it is the record itself.
_RECORD_TAGS = ("PubmedArticle", "MedlineCitation", "PubmedBookArticle", "DeleteCitation")

RETRACTED_PUBLICATION = "Retracted Publication"


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
      the file turned out malformed (XML error, truncated gzip). That last one does not raise: the
      records before the error are yielded first, and it is the last item. A missing file raises
      ``OSError``.

    Languages are not filtered here (a later stage does it).
    """
    records = 0
    with _open_xml_stream(source) as stream:
        try:
            for _event, element in iterparse(stream, _RECORD_TAGS):
                tag = element.tag
                if tag == "DeleteCitation":
                    yield _delete_citation(element)
                elif tag == "MedlineCitation" and _inside_pubmed_article(element):
                    continue  # freed with its PubmedArticle
                else:
                    records += 1
                    yield _record_outcome(element, name=name, index=records)
                release(element)
        except Exception as error:  # noqa: BLE001 - any failure to read the file is a parse error of it
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


# ---------------------------------------------------------------------------------------------
# Records


def _inside_pubmed_article(citation: etree._Element) -> bool:
    parent = citation.getparent()
    return parent is not None and parent.tag == "PubmedArticle"


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
        if record.tag == "PubmedBookArticle":
            pmid = _as_int(record.findtext("BookDocument/PMID"))
            return Drop(
                id=f"pmid:{pmid}" if pmid is not None else record_id,
                reason="book_article",
                detail=f"PubmedBookArticle (NCBI Bookshelf) record #{index} of {name}: not a journal abstract",
                source=SOURCE,
            )
        if record.tag == "PubmedArticle":
            citation, pubmed_data = record.find("MedlineCitation"), record.find("PubmedData")
        else:
            citation, pubmed_data = record, None
        pmid_element = citation.find("PMID") if citation is not None else None
        pmid = _as_int(pmid_element.text) if pmid_element is not None else None
        if pmid is None:
            found = "no PMID" if pmid_element is None else f"PMID {pmid_element.text!r}"
            return Drop(id=record_id, reason="parse_error", detail=f"{found} in record #{index} of {name}",
                        source=SOURCE)
        record_id = f"pmid:{pmid}"
        return _citation_outcome(citation, pubmed_data, pmid, pmid_element.get("Version"), name)
    except Exception as error:  # noqa: BLE001 - one odd record must not end the file
        return Drop(id=record_id, reason="parse_error",
                    detail=f"{type(error).__name__}: {error} (record #{index} of {name})", source=SOURCE)


def _citation_outcome(
    citation: etree._Element,
    pubmed_data: etree._Element | None,
    pmid: int,
    pmid_version: str | None,
    name: str,
) -> dict | Drop:
    article = citation.find("Article")
    if article is None:
        return Drop(id=f"pmid:{pmid}", reason="no_abstract", detail=f"citation has no Article element ({name})",
                    source=SOURCE)

    abstract = _abstract_paragraphs(article.find("Abstract"))
    if not abstract:
        return Drop(id=f"pmid:{pmid}", reason="no_abstract", detail=f"no AbstractText with text ({name})",
                    source=SOURCE)

    vernacular_title = element_text(article.find("VernacularTitle"))
    title = element_text(article.find("ArticleTitle")) or vernacular_title
    text = "\n\n".join([title, *abstract] if title else abstract)

    journal = article.find("Journal")
    journal_info = citation.find("MedlineJournalInfo")
    publication_types = _texts(article.iterfind("PublicationTypeList/PublicationType"))
    extra = {
        "pmid_version": _as_int(pmid_version),
        "vernacular_title": vernacular_title,
        "languages": _texts(article.iterfind("Language")),
        "journal_iso": element_text(journal.find("ISOAbbreviation")) if journal is not None else "",
        "issn": element_text(journal.find("ISSN")) if journal is not None else "",
        "nlm_unique_id": element_text(journal_info.find("NlmUniqueID")) if journal_info is not None else "",
        "other_abstracts": _other_abstracts(citation),
        "input": name,
    }
    return make_document(
        id=f"pmid:{pmid}",
        source=SOURCE,
        title=title or None,
        text=text,
        url=f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
        pmid=pmid,
        pmcid=_pmcid(citation, pubmed_data),
        doi=_doi(article, pubmed_data),
        journal=(element_text(journal.find("Title")) or None) if journal is not None else None,
        year=_year(article),
        publication_types=publication_types,
        mesh_terms=_mesh_terms(citation),
        keywords=_texts(citation.iterfind("KeywordList/Keyword")),
        retracted=RETRACTED_PUBLICATION in publication_types or _has_retraction_notice(citation),
        extra={key: value for key, value in extra.items() if value not in (None, "", [])},
    )


def _texts(elements: Iterator[etree._Element]) -> list[str]:
    return [text for text in map(element_text, elements) if text]


def _abstract_paragraphs(abstract: etree._Element | None) -> list[str]:
    """One paragraph per AbstractText, ``LABEL: `` first when it is labelled; URLs removed."""
    if abstract is None:
        return []
    paragraphs = []
    for part in abstract.iterfind("AbstractText"):
        text = remove_urls(element_text(part))
        if text:
            label = (part.get("Label") or "").strip()
            paragraphs.append(f"{label}: {text}" if label else text)
    return paragraphs


def _other_abstracts(citation: etree._Element) -> list[dict[str, str | None]]:
    other_abstracts = []
    for other in citation.iterfind("OtherAbstract"):
        text = "\n\n".join(_abstract_paragraphs(other))
        if text:
            other_abstracts.append({"language": other.get("Language"), "type": other.get("Type"), "text": text})
    return other_abstracts


def _pmcid(citation: etree._Element, pubmed_data: etree._Element | None) -> str | None:
    if pubmed_data is not None:
        for article_id in pubmed_data.iterfind("ArticleIdList/ArticleId"):
            if article_id.get("IdType") == "pmc":
                pmcid = normalize_pmcid(article_id.text)
                if pmcid:
                    return pmcid
    # Legacy records (and some current ones) carry it only as an NLM OtherID, "PMC123 [Available on ...]".
    for other_id in citation.iterfind("OtherID"):
        if other_id.get("Source") == "NLM" and (other_id.text or "").lstrip().upper().startswith("PMC"):
            pmcid = normalize_pmcid(other_id.text)
            if pmcid:
                return pmcid
    return None


def _doi(article: etree._Element, pubmed_data: etree._Element | None) -> str | None:
    if pubmed_data is not None:
        for article_id in pubmed_data.iterfind("ArticleIdList/ArticleId"):
            if article_id.get("IdType") == "doi":
                doi = normalize_doi(article_id.text)
                if doi:
                    return doi
    for location in article.iterfind("ELocationID"):
        if location.get("EIdType") == "doi" and location.get("ValidYN", "Y") == "Y":
            doi = normalize_doi(location.text)
            if doi:
                return doi
    return None


def _year(article: etree._Element) -> int | None:
    pub_date = article.find("Journal/JournalIssue/PubDate")
    if pub_date is not None:
        year = first_year(pub_date.findtext("Year")) or first_year(pub_date.findtext("MedlineDate"))
        if year:
            return year
    for article_date in article.iterfind("ArticleDate"):
        year = first_year(article_date.findtext("Year"))
        if year:
            return year
    return None


def _mesh_terms(citation: etree._Element) -> list[dict[str, Any]]:
    """MeSH descriptors; a heading is major when its descriptor or any of its qualifiers is."""
    heading_list = citation.find("MeshHeadingList")
    if heading_list is None:
        return []
    terms = []
    for heading in heading_list:  # plain child loops: this runs ~15 times per citation
        descriptor, major = "", False
        for part in heading:
            if part.tag == "DescriptorName":
                descriptor = element_text(part)
            if part.get("MajorTopicYN") == "Y":
                major = True
        if descriptor:
            terms.append({"descriptor": descriptor, "major_topic": major})
    return terms


def _has_retraction_notice(citation: etree._Element) -> bool:
    return any(
        link.get("RefType") == "RetractionIn"
        for link in citation.iterfind("CommentsCorrectionsList/CommentsCorrections")
    )
