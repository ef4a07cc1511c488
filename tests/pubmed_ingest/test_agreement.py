"""Our parsers against pubmed_parser (0.5.1), the reference DESIGN.md names, on the real NCBI files.

Every field compared agrees after a documented normalisation, and every difference left is a
deliberate one with a test of its own below, asserting it exactly on a specific record. The
"all records" tests name the records they except (``EXPLAINED_*``) and fail both when another
record differs and when an excepted one no longer does, so no difference goes unexplained.

Normalisations (MEDLINE):
- whitespace: runs collapsed to one space, ends stripped (pubmed_parser keeps the XML's own,
  non-breaking spaces and newlines included: see test_titles_whitespace_is_normalised);
- abstract: our text is the title, then one paragraph per AbstractText as ``LABEL: text``;
  pubmed_parser puts the label on a line of its own (only when there are several sections).
  Labels (the Label attributes of the record) are removed from both, then the words compared;
- MeSH: pubmed_parser's ``UI:Name`` strings to names; majors from its ``*`` marks
  (``parse_downto_mesh_subterms=True``), which it only puts on qualifiers;
- publication types: ``UI:Name`` to names.
pubmed_parser reads gzip only, so plain files are handed to it gzip-compressed in memory.

PMC: ids (our PMID an int, PMCID with its ``PMC`` prefix, DOI lower-cased), titles
(whitespace), references (each of its references with a title is one of our [BIB_REF] markers,
same truncated title and first surname) and body paragraphs (its paragraphs that sit directly
in a section or the body are our paragraph blocks, bar those of metadata sections we drop).
"""

from __future__ import annotations

import gzip
import io
import re
from functools import cache
from pathlib import Path

import pytest
from lxml import etree

from tests.pubmed_ingest.pmc_files import article_tree, parsed_article
from pubmed_parser import (
    parse_medline_xml,
    parse_pubmed_paragraph,
    parse_pubmed_references,
    parse_pubmed_xml,
)

from gap_replay.core.outcome import Drop
from gap_replay.pubmed_ingest.jats import (
    _NON_CONTENT_SEC_TYPES,
    _NON_CONTENT_TITLE,
    _TRAILING_PUNCTUATION,
    _ArticleReader,
)
from gap_replay.pubmed_ingest.medline import DeleteCitation, iter_medline

ROOT = Path(__file__).resolve().parents[2]
PUBMED = ROOT.parent / "shared" / "data" / "pubmed"
PMC = ROOT.parent / "shared" / "data" / "pmc"

LEGACY = "medline16n0902.xml.gz"  # MedlineCitationSet: pubmed_parser reads nothing of it
ARTICLE_SET_FILES = sorted(path.name for path in PUBMED.iterdir()
                           if path.name.endswith((".xml", ".xml.gz")) and path.name != LEGACY)
PMC_FILES = sorted(path.name for path in PMC.iterdir() if path.suffix in (".nxml", ".xml"))

# Records whose abstract text (normalised as above) differs, and why.
EXPLAINED_ABSTRACTS = {29963580: "MathML flattened by us, dropped by pubmed_parser"}
# Records whose title differs before whitespace normalisation, and why.
EXPLAINED_RAW_TITLES = {
    30035852: "non-breaking space",
    31264050: "non-breaking space",
}


def normalized(text: str) -> str:
    return " ".join(text.split())


def xml_bytes(file_name: str) -> bytes:
    data = (PUBMED / file_name).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


@cache
def reference_records(file_name: str) -> dict[int, dict]:
    records = parse_medline_xml(io.BytesIO(gzip.compress(xml_bytes(file_name))), parse_downto_mesh_subterms=True)
    return {int(record["pmid"]): record for record in records}


@cache
def our_outcomes(file_name: str) -> list:
    return list(iter_medline(PUBMED / file_name, name=file_name))


def our_documents(file_name: str) -> dict[int, dict]:
    return {item["pmid"]: item for item in our_outcomes(file_name) if isinstance(item, dict)}


def our_no_abstract_pmids(file_name: str) -> set[int]:
    return {int(item.id.removeprefix("pmid:")) for item in our_outcomes(file_name)
            if isinstance(item, Drop) and item.reason == "no_abstract"}


@cache
def record_labels(file_name: str) -> dict[int, set[str]]:
    tree = etree.fromstring(xml_bytes(file_name), etree.XMLParser(resolve_entities=False, no_network=True))
    return {int(article.findtext("MedlineCitation/PMID")): {
        label.strip() for label in article.xpath("MedlineCitation/Article/Abstract/AbstractText/@Label")}
        for article in tree.iter("PubmedArticle")}


def abstract_words_ours(document: dict, labels: set[str]) -> str:
    paragraphs = document["text"].split("\n\n")[1 if document["title"] else 0:]
    without_labels = [paragraph.split(": ", 1)[1] if paragraph.split(": ", 1)[0] in labels else paragraph
                      for paragraph in paragraphs]
    return normalized(" ".join(without_labels))


def abstract_words_reference(record: dict, labels: set[str]) -> str:
    return normalized(" ".join(line for line in record["abstract"].split("\n") if line.strip() not in labels))


def mesh_reference(record: dict) -> list[tuple[str, bool]]:
    """(descriptor, any part starred) per heading of pubmed_parser's subterm string."""
    headings = record["mesh_terms"].split("; ") if record["mesh_terms"] else []
    parts = [heading.split(" / ") for heading in headings]
    return [(heading[0].split(":", 1)[1].rstrip("*"), any(part.endswith("*") for part in heading))
            for heading in parts]


# --- MEDLINE: what agrees -----------------------------------------------------------------


@pytest.mark.parametrize("file_name", ARTICLE_SET_FILES)
def test_same_pmids(file_name):
    # pubmed_parser yields citations without an abstract too; we account for them as no_abstract drops
    assert set(reference_records(file_name)) == set(our_documents(file_name)) | our_no_abstract_pmids(file_name)


@pytest.mark.parametrize("file_name", ARTICLE_SET_FILES)
def test_same_titles_after_whitespace_normalisation(file_name):
    reference = reference_records(file_name)
    for pmid, document in our_documents(file_name).items():
        assert normalized(reference[pmid]["title"]) == document["title"], pmid


def test_raw_titles_differ_only_where_explained():
    differing = {pmid for file_name in ARTICLE_SET_FILES for pmid, document in our_documents(file_name).items()
                 if reference_records(file_name)[pmid]["title"] != document["title"]}
    assert differing == set(EXPLAINED_RAW_TITLES)


@pytest.mark.parametrize("file_name", ARTICLE_SET_FILES)
def test_same_abstract_text_after_normalisation(file_name):
    reference, labels = reference_records(file_name), record_labels(file_name)
    differing = set()
    for pmid, document in our_documents(file_name).items():
        if abstract_words_ours(document, labels[pmid]) != abstract_words_reference(reference[pmid], labels[pmid]):
            differing.add(pmid)
    assert differing == set(EXPLAINED_ABSTRACTS) & set(reference)


@pytest.mark.parametrize("file_name", ARTICLE_SET_FILES)
def test_same_mesh_descriptors_and_publication_types(file_name):
    reference = reference_records(file_name)
    for pmid, document in our_documents(file_name).items():
        assert [term["descriptor"] for term in document["mesh_terms"]] == [
            name for name, _ in mesh_reference(reference[pmid])], pmid
        types = reference[pmid]["publication_types"]
        assert document["publication_types"] == [t.split(":", 1)[1] for t in types.split("; ")] if types else [], pmid


@pytest.mark.parametrize("file_name", ARTICLE_SET_FILES)
def test_mesh_major_flags_agree_with_starred_qualifiers(file_name):
    """Our flag = descriptor major, or a qualifier major (what pubmed_parser stars)."""
    tree = etree.fromstring(xml_bytes(file_name), etree.XMLParser(resolve_entities=False, no_network=True))
    descriptor_major = {int(article.findtext("MedlineCitation/PMID")): [
        heading.find("DescriptorName").get("MajorTopicYN") == "Y" for heading in article.iter("MeshHeading")]
        for article in tree.iter("PubmedArticle")}
    reference = reference_records(file_name)
    for pmid, document in our_documents(file_name).items():
        expected = [starred or own for (_, starred), own in zip(mesh_reference(reference[pmid]), descriptor_major[pmid])]
        assert [term["major_topic"] for term in document["mesh_terms"]] == expected, pmid


# --- MEDLINE: each deliberate difference, on a specific record ----------------------------


def test_we_flatten_mathml_that_pubmed_parser_drops():
    record = reference_records("biopython_pubmed7.xml")[29963580]
    document = our_documents("biopython_pubmed7.xml")[29963580]
    # pubmed_parser reads only the direct children's text: the <mml:math> isotopes vanish
    assert "(1)\xa0inhaled \n" in record["abstract"] and "He3" not in record["abstract"]
    assert "(1) inhaled He3/Xe129 MRI ventilation and apparent diffusion coefficients" in document["text"]


def test_we_keep_section_labels_inline():
    record = reference_records("biopython_pubmed4.xml")[27797938]
    document = our_documents("biopython_pubmed4.xml")[27797938]
    assert record["abstract"].startswith("OBJECTIVE\nTelomere shortening occurs as an early event")
    assert "\n\nOBJECTIVE: Telomere shortening occurs as an early event" in document["text"]
    # a single labelled section: pubmed_parser leaves its label out, we keep it
    single = reference_records("pubMR_pubmed_result.xml")[30124210]
    assert single["abstract"].startswith("To investigate the effect of serine/threonine-protein kinase B-Raf")
    assert "\n\nOBJECTIVE: To investigate the effect of serine/threonine-protein kinase B-Raf" in (
        our_documents("pubMR_pubmed_result.xml")[30124210]["text"])


def test_titles_whitespace_is_normalised():
    record = reference_records("pubMR_pubmed_result.xml")[30035852]
    document = our_documents("pubMR_pubmed_result.xml")[30035852]
    assert "essential for de\xa0novo nuclear" in record["title"]
    assert document["title"] == record["title"].replace("\xa0", " ")
    record = reference_records("main_finding_recognition_pubmed_result.xml")[31264050]
    assert record["title"].endswith("biopsy : A\xa0case report.")
    assert our_documents("main_finding_recognition_pubmed_result.xml")[31264050]["title"].endswith(
        "biopsy : A case report.")


def test_descriptor_major_topic_is_flagged_where_pubmed_parser_stars_nothing():
    # pubmed_parser reads MajorTopicYN on MeshHeading, which has none: a major descriptor gets no star
    stars = dict(mesh_reference(reference_records("biopython_pubmed4.xml")[27797938]))
    mesh = {term["descriptor"]: term["major_topic"] for term in our_documents("biopython_pubmed4.xml")[27797938][
        "mesh_terms"]}
    assert stars["Telomere Shortening"] is False and mesh["Telomere Shortening"] is True
    assert stars["Pancreatic Neoplasms"] is True and mesh["Pancreatic Neoplasms"] is True  # starred qualifiers


def test_citations_without_abstract_are_drops_not_empty_documents():
    record = reference_records("biopython_pubmed1.xml")[12091962]
    assert record["abstract"] == "" and record["title"].startswith("The treatment of AIDS behind the walls")
    [drop] = [item for item in our_outcomes("biopython_pubmed1.xml") if isinstance(item, Drop)]
    assert (drop.id, drop.reason) == ("pmid:12091962", "no_abstract")
    for file_name in ARTICLE_SET_FILES:
        empty = {pmid for pmid, record in reference_records(file_name).items() if not record["abstract"].strip()}
        assert empty == our_no_abstract_pmids(file_name), file_name


def test_we_read_the_legacy_medline_citation_set():
    assert reference_records(LEGACY) == {}
    assert len(our_documents(LEGACY)) == 526 and len(our_no_abstract_pmids(LEGACY)) == 78


def test_we_report_delete_citations():
    records = reference_records("ncbiutils_pubmed22n1313.xml.gz")
    assert len(records) == 4 and not any(record["delete"] for record in records.values())
    deletions = [item for item in our_outcomes("ncbiutils_pubmed22n1313.xml.gz") if isinstance(item, DeleteCitation)]
    assert len(deletions) == 1 and len(deletions[0].pmids) == 559
    assert not set(deletions[0].pmids) & set(records)


def test_we_remove_urls_from_abstracts():
    # no real abstract here holds a URL, so this record is made up
    data = (b"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID Version=\"1\">5</PMID><Article>"
            b"<Journal><JournalIssue><PubDate><Year>2020</Year></PubDate></JournalIssue><Title>J</Title></Journal><ArticleTitle>T.</ArticleTitle><Abstract><AbstractText>Code at "
            b"https://github.com/x/y. Done.</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>"
            b"</PubmedArticleSet>")
    [record] = parse_medline_xml(io.BytesIO(gzip.compress(data)))
    [document] = iter_medline(io.BytesIO(data), name="made-up")
    assert record["abstract"] == "Code at https://github.com/x/y. Done."
    assert document["text"] == "T.\n\nCode at. Done."


# --- PMC ------------------------------------------------------------------------------------


@cache
def reference_article(file_name: str) -> dict:
    return parse_pubmed_xml(str(PMC / file_name))




@pytest.mark.parametrize("file_name", PMC_FILES)
def test_pmc_ids_and_titles(file_name):
    reference, document = reference_article(file_name), parsed_article(file_name)
    assert document["pmid"] == (int(reference["pmid"]) if reference["pmid"] else None)
    assert document["pmcid"] == (f"PMC{reference['pmc']}" if reference["pmc"] else None)
    assert document["doi"] == reference["doi"].lower()  # lower-cased, as the schema says
    assert document["title"] == normalized(reference["full_title"])


def test_pmc_doi_case_is_the_one_difference_of_ids():
    assert reference_article("elife00007.xml")["doi"] == "10.7554/eLife.00007"
    assert parsed_article("elife00007.xml")["doi"] == "10.7554/elife.00007"


@pytest.mark.parametrize("file_name", PMC_FILES)
def test_pmc_references_become_markers(file_name):
    """Each reference pubmed_parser finds with a title is our marker: same truncated title, first surname."""
    markers = _ArticleReader(article_tree(file_name), file_name)._index_references()
    references = parse_pubmed_references(str(PMC / file_name)) or []
    without_title = []
    for reference in references:
        title = normalized(reference["article_title"]).rstrip(_TRAILING_PUNCTUATION)
        if not title and not reference["journal"]:
            without_title.append(reference["ref_id"])
            continue
        marker = markers[reference["ref_id"]]
        content = marker.removeprefix("[BIB_REF]").removesuffix("[/BIB_REF]")
        first = next(_first_author(file_name, reference["ref_id"]))
        author = normalized("".join(first.itertext()))
        assert content.endswith(f", {author}"), reference["ref_id"]  # (a collaboration's name may hold commas)
        if title:
            words = title.split()
            short = " ".join(words[:12]) + ("..." if len(words) > 12 else "")
            assert content == f"{short}, {author}", reference["ref_id"]
        first_name = reference["name"].split("; ")[0]
        if first_name:
            assert first.tag == "surname" and first_name.endswith(author), reference["ref_id"]
        else:  # pubmed_parser reads personal names only: a collaboration first is our author
            assert first.tag == "collab", reference["ref_id"]
    assert len(markers) == len(references) - len(without_title)
    assert without_title == (["bib46"] if file_name == "elife00007.xml" else [])


def _first_author(file_name: str, ref_id: str):
    [ref] = article_tree(file_name).xpath("//ref[@id=$ref_id]", ref_id=ref_id)
    return ref.iter("surname", "collab")


def test_collaboration_authors_are_kept():
    references = {r["ref_id"]: r for r in parse_pubmed_references(str(PMC / "6605965a.nxml"))}
    assert references["bib2"]["name"] == ""  # <collab>American Cancer Society</collab>
    markers = _ArticleReader(article_tree("6605965a.nxml"), "6605965a.nxml")._index_references()
    assert markers["bib2"].endswith(", American Cancer Society[/BIB_REF]")
    # a collaboration listed before personal names is the first author
    references = {r["ref_id"]: r for r in parse_pubmed_references(str(PMC / "elife02935.xml"))}
    assert references["bib18"]["name"].startswith("; GR Abecasis; D Altshuler")
    markers = _ArticleReader(article_tree("elife02935.xml"), "elife02935.xml")._index_references()
    assert markers["bib18"].endswith(", 1000 Genomes Project Consortium[/BIB_REF]")


def test_reference_without_title_gets_no_marker():
    # a Dryad data set: authors and a <comment>, but no article-title, chapter-title or source
    [reference] = [r for r in parse_pubmed_references(str(PMC / "elife00007.xml")) if r["ref_id"] == "bib46"]
    assert (reference["article_title"], reference["journal"]) == ("", "")
    assert reference["name"] == "M Schuman; K Barthel; IT Baldwin"
    assert "bib46" not in _ArticleReader(article_tree("elife00007.xml"), "elife00007.xml")._index_references()


def _dropped_section(paragraph: etree._Element) -> bool:
    for section in paragraph.iterancestors("sec"):
        title = normalized("".join(section.find("title").itertext())) if section.find("title") is not None else ""
        if (section.get("sec-type") or "").lower() in _NON_CONTENT_SEC_TYPES or (
                title and _NON_CONTENT_TITLE.fullmatch(title.rstrip(_TRAILING_PUNCTUATION))):
            return True
    return False


# Paragraphs of body sections we drop as metadata, per file (pubmed_parser keeps them).
EXPLAINED_DROPPED_PARAGRAPHS = {
    "1471-2180-11-174.nxml": ["Competing interests", "Authors' contributions"],
    "mds526.nxml": ["funding", "disclosure"],
}


@pytest.mark.parametrize("file_name", PMC_FILES)
def test_pmc_body_paragraphs(file_name):
    """pubmed_parser's paragraphs directly in a section or the body are our paragraph blocks.

    Its other paragraphs (in captions, list items, footnotes, boxed text...) are parts of our
    float markers, lists and blocks, so they are not counted one to one.
    """
    paragraphs = parse_pubmed_paragraph(str(PMC / file_name), all_paragraph=True)
    body = article_tree(file_name).find("body")
    direct = [p for p in body.iter("p") if p.getparent().tag in ("sec", "body")]
    assert len(paragraphs) >= len(direct)
    dropped = [p for p in direct if _dropped_section(p)]
    assert sorted({normalized("".join(p.getparent().find("title").itertext())) for p in dropped}) == sorted(
        EXPLAINED_DROPPED_PARAGRAPHS.get(file_name, []))
    blocks = _ArticleReader(article_tree(file_name), file_name)._render_body()
    ours = [block for block in blocks if not block.startswith(("#", "[FIG]", "[TABLE]", "- "))]
    assert len(ours) == len(direct) - len(dropped)


def test_metadata_sections_in_the_body_are_dropped():
    text = parsed_article("1471-2180-11-174.nxml")["text"]
    paragraphs = {normalized(p["text"]) for p in parse_pubmed_paragraph(str(PMC / "1471-2180-11-174.nxml"),
                                                                        all_paragraph=True)
                  if p["section"] in ("Competing interests", "Authors' contributions")}
    assert len(paragraphs) == 2
    assert any(paragraph.startswith("The authors declare that they have no competing interests") for paragraph in
               paragraphs)
    for paragraph in paragraphs:
        assert paragraph not in text
    assert not re.search(r"^# (Competing interests|Authors' contributions)$", text, re.MULTILINE)
