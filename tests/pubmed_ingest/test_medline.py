"""iter_medline on the real NCBI files in shared/data/pubmed, on a made-up 2026 update file (fixtures/),
and on inline edge cases."""

from __future__ import annotations

import gzip
import io
import json
import resource
from pathlib import Path

import pytest
from lxml import etree

from gap_replay.core.ingest import RawStream
from gap_replay.core.outcome import Drop
from gap_replay.core.schema import COLUMN_NAMES, documents_to_batch
from gap_replay.pubmed_ingest import medline
from gap_replay.pubmed_ingest.medline import DeleteCitation, _Pruner, iter_medline

ROOT = Path(__file__).resolve().parents[2]
PUBMED = ROOT.parent / "shared" / "data" / "pubmed"

# file -> (citation records, records with an abstract), as counted in PROVENANCE.md
RECORD_COUNTS = {
    "biopython_pubmed1.xml": (2, 1),
    "biopython_pubmed2.xml": (2, 2),
    "biopython_pubmed4.xml": (1, 1),
    "biopython_pubmed7.xml": (1, 1),
    "main_finding_recognition_pubmed_result.xml": (121, 102),
    "medline16n0902.xml.gz": (604, 526),
    "ncbiutils_markup.xml": (1, 1),
    "ncbiutils_pubmed.xml": (5, 5),
    "ncbiutils_pubmed22n1313.xml.gz": (4, 3),
    "pubMR_pubmed_result.xml": (93, 92),
    "pubmed-29768149.xml": (1, 1),
    "test_current_medline.xml.gz": (4, 3),
}


def outcomes(file_name: str) -> list:
    return list(iter_medline(PUBMED / file_name, name=file_name))


def documents(file_name: str) -> dict[int, dict]:
    return {item["pmid"]: item for item in outcomes(file_name) if isinstance(item, dict)}


def citation_xml(body: str, *, pmid: str = "1", abstract: str = "<AbstractText>Some findings.</AbstractText>",
                 tail: str = "") -> bytes:
    """A PubmedArticleSet with one PubmedArticle, `body` inserted in its Article."""
    abstract_xml = f"<Abstract>{abstract}</Abstract>" if abstract else ""
    return (
        f"<PubmedArticleSet><PubmedArticle><MedlineCitation><PMID Version=\"2\">{pmid}</PMID>"
        f"<Article><Journal><Title>J Test</Title><JournalIssue><PubDate><Year>2020</Year></PubDate></JournalIssue>"
        f"</Journal><ArticleTitle>A title.</ArticleTitle>{abstract_xml}{body}</Article>{tail}"
        f"</MedlineCitation></PubmedArticle></PubmedArticleSet>"
    ).encode()


def parse_one(data: bytes):
    items = list(iter_medline(io.BytesIO(data), name="inline.xml"))
    assert len(items) == 1, items
    return items[0]


# --- real files ---------------------------------------------------------------------------


@pytest.mark.parametrize("file_name", sorted(RECORD_COUNTS))
def test_record_counts_match_provenance(file_name):
    items = outcomes(file_name)
    records = [item for item in items if not isinstance(item, DeleteCitation)]
    kept = [item for item in records if isinstance(item, dict)]
    drops = [item for item in records if isinstance(item, Drop)]
    assert (len(records), len(kept)) == RECORD_COUNTS[file_name]
    assert {drop.reason for drop in drops} <= {"no_abstract"}
    for document in kept:
        assert document["source"] == "pubmed_abstracts"
        assert document["id"] == f"pmid:{document['pmid']}"
        assert document["url"] == f"https://pubmed.ncbi.nlm.nih.gov/{document['pmid']}/"
        assert "\n\n\n" not in document["text"] and document["text"] == document["text"].strip()
        assert json.loads(document["extra"])["input"] == file_name
    documents_to_batch(kept)  # every document fits the Arrow schema


def test_every_document_has_all_schema_columns():
    document = documents("biopython_pubmed4.xml")[27797938]
    assert tuple(document) == COLUMN_NAMES


def test_structured_abstract_with_labels_and_flattened_markup():
    document = documents("biopython_pubmed4.xml")[27797938]
    assert document["title"] == ("Leucocyte telomere length, genetic variants at the TERT gene region "
                                 "and risk of pancreatic cancer.")
    paragraphs = document["text"].split("\n\n")
    assert paragraphs[0] == document["title"]
    labels = [paragraph.split(":")[0] for paragraph in paragraphs[1:]]
    assert labels == ["OBJECTIVE", "DESIGN", "RESULTS", "CONCLUSIONS"]
    assert paragraphs[1].startswith("OBJECTIVE: Telomere shortening occurs as an early event")
    # <i>TERT</i>, p<sub>trend</sub> and r<sup>2</sup>&lt;0.25 flattened, no text lost
    assert "reverse transcriptase (TERT) gene region" in paragraphs[1]
    assert "ptrend=0.048" in paragraphs[3] and "r2<0.25" in paragraphs[3]
    assert "<i>" not in document["text"] and "<sub>" not in document["text"]
    # CopyrightInformation is not abstract text
    assert "BMJ Publishing Group" not in document["text"]
    assert document["doi"] == "10.1136/gutjnl-2016-312510"
    assert document["pmcid"] == "PMC5442267"
    assert document["journal"] == "Gut"
    assert document["year"] == 2017
    assert "Observational Study" in document["publication_types"]
    assert document["keywords"] == ["PANCREATIC CANCER"]
    assert document["retracted"] is False
    extra = json.loads(document["extra"])
    assert extra == {"input": "biopython_pubmed4.xml", "issn": "1468-3288", "journal_iso": "Gut",
                     "languages": ["eng"], "nlm_unique_id": "2985108R", "pmid_version": 1}


def test_mesh_major_topic_from_descriptor_or_qualifier():
    terms = documents("biopython_pubmed4.xml")[27797938]["mesh_terms"]
    mesh = {term["descriptor"]: term["major_topic"] for term in terms}
    assert mesh["Pancreatic Neoplasms"] is True
    assert mesh["Telomere Shortening"] is True
    assert mesh["Humans"] is False and mesh["Case-Control Studies"] is False
    assert len(mesh) == 21


def test_mathml_in_abstract_is_flattened():
    document = documents("biopython_pubmed7.xml")[29963580]
    text = document["text"]
    assert document["title"].startswith("Development of a pulmonary imaging biomarker pipeline")
    assert "(1) inhaled He3/Xe129 MRI ventilation and apparent diffusion coefficients" in text
    assert "ultrashort echo-time H1 MRI proton density" in text
    assert "mml:" not in text and "<" not in text
    assert document["doi"] == "10.1117/1.jmi.5.2.026002"  # lower-cased, as the schema says


def test_legacy_medline_citation_set_parses():
    docs = documents("medline16n0902.xml.gz")
    first = docs[17942999]
    assert first["title"].startswith("Neuroplasticity in the processing of pitch dimensions")
    assert first["text"].split("\n\n")[1].startswith("PURPOSE: An auditory electrophysiological study")
    assert first["journal"] == "Restorative neurology and neuroscience"
    assert first["year"] == 2007
    assert first["doi"] is None
    assert first["pmcid"] == "PMC4380289"  # from OtherID Source="NLM", the legacy format has no PubmedData
    assert docs[18621939]["year"] == 2008  # <MedlineDate>2008 Jul-Aug</MedlineDate>


def test_delete_citations():
    legacy = [item for item in outcomes("medline16n0902.xml.gz") if isinstance(item, DeleteCitation)]
    assert legacy == [DeleteCitation(pmids=(26432306,))]
    update = [item for item in outcomes("ncbiutils_pubmed22n1313.xml.gz") if isinstance(item, DeleteCitation)]
    assert len(update) == 1 and len(update[0].pmids) == 559
    assert update[0].pmids[:3] == (21334990, 28296071, 28297399)
    assert all(isinstance(pmid, int) for pmid in update[0].pmids)


def test_other_language_abstracts_and_vernacular_title_kept_in_extra():
    docs = documents("main_finding_recognition_pubmed_result.xml")
    chinese = docs[26582223]
    extra = json.loads(chinese["extra"])
    assert extra["languages"] == ["chi"]
    [other] = extra["other_abstracts"]
    assert other["language"] == "chi" and other["type"] == "Publisher"
    assert other["text"].startswith("背景与目的 肺小结节尤其是磨玻璃结节")
    assert "背景与目的" not in chinese["text"]  # the other-language abstract is not in the training text

    norwegian = docs[1948942]
    extra = json.loads(norwegian["extra"])
    assert norwegian["title"].startswith("[Cerebral air embolism after percutaneous lung pun")
    assert extra["vernacular_title"].startswith("Cerebral luftemboli etter perkutan lungepunksjon")
    assert extra["languages"] == ["nor"]

    polish = json.loads(documents("medline16n0902.xml.gz")[26702272]["extra"])["other_abstracts"]
    assert polish == [{"language": "pol", "type": "Publisher", "text": "Abstract available from the publisher."}]


def test_no_abstract_drop():
    [drop] = [item for item in outcomes("biopython_pubmed1.xml") if isinstance(item, Drop)]
    assert drop.id == "pmid:12091962"
    assert drop.reason == "no_abstract"
    assert drop.source == "pubmed_abstracts"


def test_gzip_detected_by_magic_bytes_not_suffix(tmp_path):
    plain = tmp_path / "looks_compressed.xml.gz"
    plain.write_bytes((PUBMED / "biopython_pubmed2.xml").read_bytes())
    compressed = tmp_path / "looks_plain.xml"
    compressed.write_bytes(gzip.compress((PUBMED / "biopython_pubmed2.xml").read_bytes()))
    expected = outcomes("biopython_pubmed2.xml")
    assert [doc["id"] for doc in iter_medline(plain, name="x")] == [doc["id"] for doc in expected]
    assert [doc["id"] for doc in iter_medline(compressed, name="x")] == [doc["id"] for doc in expected]


def test_file_objects_seekable_or_not():
    data = (PUBMED / "ncbiutils_pubmed22n1313.xml.gz").read_bytes()

    for stream in (io.BytesIO(data), RawStream(io.BytesIO(data))):
        items = list(iter_medline(stream, name="stream"))
        assert sum(isinstance(item, dict) for item in items) == 3
        assert sum(isinstance(item, DeleteCitation) for item in items) == 1


# --- inline edge cases --------------------------------------------------------------------


def test_retraction_from_publication_type_and_from_comments_corrections():
    retracted_type = parse_one(citation_xml(
        "<PublicationTypeList><PublicationType>Journal Article</PublicationType>"
        "<PublicationType>Retracted Publication</PublicationType></PublicationTypeList>"))
    assert retracted_type["retracted"] is True
    retraction_link = parse_one(citation_xml("", tail=(
        "<CommentsCorrectionsList><CommentsCorrections RefType=\"RetractionIn\"><RefSource>J 2021</RefSource>"
        "<PMID>99</PMID></CommentsCorrections></CommentsCorrectionsList>")))
    assert retraction_link["retracted"] is True
    erratum = parse_one(citation_xml("", tail=(
        "<CommentsCorrectionsList><CommentsCorrections RefType=\"ErratumIn\"><RefSource>J</RefSource>"
        "</CommentsCorrections></CommentsCorrectionsList>")))
    assert erratum["retracted"] is False


def test_abstract_paragraphs_labels_markup_and_urls():
    document = parse_one(citation_xml("", abstract=(
        "<AbstractText Label=\"Background\" NlmCategory=\"BACKGROUND\">We  studied <i>E. coli</i>\n  in "
        "H<sub>2</sub>O.</AbstractText>"
        "<AbstractText>Unlabelled part; see https://example.org/trial.</AbstractText>"
        "<AbstractText Label=\"EMPTY\"/>")))
    assert document["text"] == ("A title.\n\nBackground: We studied E. coli in H2O.\n\n"
                                "Unlabelled part; see.")
    assert document["extra"] and json.loads(document["extra"])["pmid_version"] == 2


def test_vernacular_title_fallback_and_doi_from_elocation():
    document = parse_one(citation_xml(
        "<ELocationID EIdType=\"pii\">S1</ELocationID><ELocationID EIdType=\"doi\" ValidYN=\"Y\">"
        "10.1000/ABC.1</ELocationID><VernacularTitle>Titre français.</VernacularTitle>"
        "<Language>fre</Language>").replace(b"<ArticleTitle>A title.</ArticleTitle>", b"<ArticleTitle/>"))
    assert document["title"] == "Titre français."
    assert document["text"].startswith("Titre français.\n\nSome findings.")
    assert document["doi"] == "10.1000/abc.1"


def test_year_falls_back_to_medline_date_then_article_date():
    data = citation_xml("<ArticleDate DateType=\"Electronic\"><Year>2019</Year></ArticleDate>")
    medline_date = data.replace(b"<Year>2020</Year>", b"<MedlineDate>1998 Dec-1999 Jan</MedlineDate>")
    assert parse_one(medline_date)["year"] == 1998
    no_pub_year = data.replace(b"<Year>2020</Year>", b"<Season>Spring</Season>")
    assert parse_one(no_pub_year)["year"] == 2019


def test_missing_or_empty_abstract_is_dropped():
    for abstract in ("", "<AbstractText>  </AbstractText>"):
        drop = parse_one(citation_xml("", pmid="42", abstract=abstract))
        assert isinstance(drop, Drop)
        assert (drop.id, drop.reason) == ("pmid:42", "no_abstract")


def test_record_without_usable_pmid_is_a_parse_error_of_that_record():
    data = citation_xml("", pmid="not-a-number") + b""
    drop = parse_one(data)
    assert drop.id == "file:inline.xml#record1"
    assert drop.reason == "parse_error"


def test_malformed_xml_midway_yields_records_before_then_one_file_drop():
    good = citation_xml("").decode()
    two_records = good.replace("</PubmedArticleSet>", good[len("<PubmedArticleSet>"):]).replace(
        "<PMID Version=\"2\">1</PMID>", "<PMID Version=\"2\">2</PMID>", 1)
    broken = two_records.replace(
        "</PubmedArticleSet>", "<PubmedArticle><MedlineCitation><PMID>3</PMID><Oops></PubmedArticle>")
    items = list(iter_medline(io.BytesIO(broken.encode()), name="broken.xml"))
    assert [item["id"] for item in items[:-1]] == ["pmid:2", "pmid:1"]
    last = items[-1]
    assert isinstance(last, Drop) and last.id == "file:broken.xml" and last.reason == "parse_error"
    assert last.detail.startswith("XMLSyntaxError: ") and last.detail.endswith("(after 2 records)")


def test_truncated_gzip_yields_records_before_then_one_file_drop():
    data = gzip.compress((PUBMED / "main_finding_recognition_pubmed_result.xml").read_bytes())
    items = list(iter_medline(io.BytesIO(data[: len(data) // 2]), name="cut.xml.gz"))
    assert len(items) > 10
    assert all(not isinstance(item, Drop) or item.reason == "no_abstract" for item in items[:-1])
    assert items[-1].id == "file:cut.xml.gz" and items[-1].reason == "parse_error"
    assert "EOFError" in items[-1].detail or "XMLSyntaxError" in items[-1].detail


def test_not_xml_at_all_is_one_file_drop():
    [drop] = iter_medline(io.BytesIO(b"\x00\x01 definitely not xml"), name="junk")
    assert (drop.id, drop.reason) == ("file:junk", "parse_error")


def test_billion_laughs_does_not_expand():
    entities = '<!ENTITY lol0 "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    data = citation_xml("", abstract="<AbstractText>Before &lol9; after.</AbstractText>").replace(
        b"<PubmedArticleSet>", f"<!DOCTYPE PubmedArticleSet [{entities}]><PubmedArticleSet>".encode())
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    items = list(iter_medline(io.BytesIO(data), name="laughs.xml"))
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 50_000  # KiB: no gigabyte of "lol"
    assert len(items) == 1
    text = items[0]["text"] if isinstance(items[0], dict) else items[0].detail
    assert "lollol" not in text


def test_external_entity_is_not_fetched(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    data = citation_xml("", abstract="<AbstractText>Leak: &xxe; end.</AbstractText>").replace(
        b"<PubmedArticleSet>",
        f'<!DOCTYPE PubmedArticleSet [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]><PubmedArticleSet>'.encode())
    [item] = iter_medline(io.BytesIO(data), name="xxe.xml")
    text = item["text"] if isinstance(item, dict) else item.detail
    assert "TOP-SECRET" not in text
    if isinstance(item, dict):
        assert "Leak: end." in text


def test_book_articles_are_accounted_for():
    data = (b"<PubmedArticleSet><PubmedBookArticle><BookDocument><PMID Version=\"1\">777</PMID>"
            b"<Abstract><AbstractText>Chapter.</AbstractText></Abstract></BookDocument></PubmedBookArticle>"
            b"</PubmedArticleSet>")
    drop = parse_one(data)
    assert (drop.id, drop.reason) == ("pmid:777", "book_article")


class RepeatedRecords(io.RawIOBase):
    """A large PubmedArticleSet streamed from the records of a real file repeated, never held whole."""

    def __init__(self, source: bytes, copies: int) -> None:
        start, end = source.index(b"<PubmedArticle>"), source.rindex(b"</PubmedArticleSet>")
        self._parts = iter([source[:start], *([source[start:end]] * copies), source[end:]])
        self._current = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._current:
            self._current = next(self._parts, None)
            if self._current is None:
                self._current = b""
                return 0
        size = min(len(buffer), len(self._current))
        buffer[:size] = self._current[:size]
        self._current = self._current[size:]
        return size


def test_memory_stays_flat_while_streaming_a_large_file():
    source = (PUBMED / "pubMR_pubmed_result.xml").read_bytes()  # 2 MB, 93 records
    copies = 15  # 30 MB of XML: kept as a tree it would take several times that
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    count = sum(1 for _ in iter_medline(io.BufferedReader(RepeatedRecords(source, copies)), name="big"))
    growth_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert count == 93 * copies
    assert growth_kib < 30_000


# --- wrong or empty input ---------------------------------------------------------------


def test_empty_file_is_one_file_drop(tmp_path):
    for data in (b"", b"  \n\t", gzip.compress(b""), b'<?xml version="1.0"?>\n'):
        path = tmp_path / "empty.xml"
        path.write_bytes(data)
        [drop] = iter_medline(path, name="empty.xml")
        assert (drop.id, drop.reason, drop.source) == ("file:empty.xml", "parse_error", "pubmed_abstracts"), data


@pytest.mark.parametrize("data, root", [
    (b"<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body><p>nginx</p></body></html>", "html"),
    (b"<foo><PubmedArticle/></foo>", "foo"),
    (b'<?xml version="1.0"?><x:PubmedArticleSet xmlns:x="urn:not-nlm"/>', "PubmedArticleSet"),
    (b"<article><front/></article>", "article"),  # JATS goes to parse_jats
])
def test_wrong_root_element_is_one_unsupported_input_drop(data, root):
    for payload in (data, gzip.compress(data)):
        [drop] = iter_medline(io.BytesIO(payload), name="wrong.xml")
        assert (drop.id, drop.reason) == ("file:wrong.xml", "unsupported_input")
        assert f"<{root}>" in drop.detail


def test_wrong_root_is_told_before_the_file_is_read():
    class Endless(io.RawIOBase):
        """An HTML page that never ends: reading all of it would never finish."""

        def __init__(self) -> None:
            self.served = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            chunk = (b"<html><body>" if self.served == 0 else b"<p>more</p>" * 1000)[: len(buffer)]
            buffer[: len(chunk)] = chunk
            self.served += len(chunk)
            return len(chunk)

    stream = Endless()
    [drop] = iter_medline(io.BufferedReader(stream), name="page")
    assert drop.reason == "unsupported_input" and stream.served < 1_000_000


def test_a_lone_record_as_root_is_read():
    document = parse_one(citation_xml("").replace(b"<PubmedArticleSet>", b"").replace(b"</PubmedArticleSet>", b""))
    assert document["id"] == "pmid:1"
    legacy = (b"<MedlineCitation><PMID>7</PMID><Article><Journal><Title>J</Title></Journal><ArticleTitle>T.</ArticleTitle>"
              b"<Abstract><AbstractText>A.</AbstractText></Abstract></Article></MedlineCitation>")
    assert parse_one(legacy)["text"] == "T.\n\nA."


# --- byte-level pruning -------------------------------------------------------------------


def test_pruner_removes_whole_elements_whatever_the_chunking():
    document = (b'<a><AuthorList CompleteYN="Y"><Author><LastName>X</LastName></Author></AuthorList>'
                b'<AuthorListing/>t<AuthorList/><ReferenceList><Title>R</Title><ReferenceListY/><ReferenceList>'
                b'<Reference/></ReferenceList><ReferenceList/></ReferenceList><b>keep</b><History>\n<x/><HistoryZ>'
                b'</HistoryZ></History  \n><History\n>y</History ><c attr="&lt;History&gt;">&lt;AuthorList&gt;</c></a>')
    expected = b'<a><AuthorListing/>t<b>keep</b><c attr="&lt;History&gt;">&lt;AuthorList&gt;</c></a>'
    for size in range(1, len(document) + 1):
        pruner = _Pruner(("AuthorList", "ReferenceList", "History"))
        pruned = b"".join(pruner.feed(document[i:i + size]) for i in range(0, len(document), size)) + pruner.flush()
        assert pruned == expected, size


@pytest.mark.parametrize("markup", [b"<!-- <AuthorList> -->", b"<![CDATA[<AuthorList>]]>", b"<?pi <AuthorList>?>"])
def test_pruner_stops_at_comments_cdata_and_processing_instructions(markup):
    document = b"<a><AuthorList>gone</AuthorList><b>" + markup + b"</b><AuthorList>kept</AuthorList></a>"
    for size in (1, 7, len(document)):
        pruner = _Pruner(("AuthorList",))
        pruned = b"".join(pruner.feed(document[i:i + size]) for i in range(0, len(document), size)) + pruner.flush()
        assert pruned == b"<a><b>" + markup + b"</b><AuthorList>kept</AuthorList></a>", size


@pytest.mark.parametrize("read_size", [700, 4096, 65536])
@pytest.mark.parametrize("file_name", sorted(RECORD_COUNTS))
def test_pruning_changes_no_outcome(file_name, read_size, monkeypatch):
    """No field comes from a pruned element: with chunks smaller than a record, all records but
    the first go through the pruner."""
    monkeypatch.setattr(medline, "READ_SIZE", read_size)
    pruned = list(medline._iter_medline(PUBMED / file_name, name=file_name, prune=True))
    assert pruned == list(medline._iter_medline(PUBMED / file_name, name=file_name, prune=False))


def test_errors_are_still_found_around_and_inside_pruned_elements(monkeypatch):
    monkeypatch.setattr(medline, "READ_SIZE", 512)  # pruning starts after the first record
    good = citation_xml("<AuthorList><Author><LastName>A</LastName></Author></AuthorList>").decode()
    records = good[len("<PubmedArticleSet>"):-len("</PubmedArticleSet>")]
    many = "<PubmedArticleSet>" + records * 20
    cut_inside = (many + records[: records.index("</AuthorList>")]).encode()  # truncated in a pruned element
    *kept, last = iter_medline(io.BytesIO(cut_inside), name="cut.xml")
    assert len(kept) == 20 and (last.reason, last.id) == ("parse_error", "file:cut.xml")
    unclosed = (many + records.replace("<Abstract>", "<Abstract><Oops>") + "</PubmedArticleSet>").encode()
    *kept, last = iter_medline(io.BytesIO(unclosed), name="bad.xml")
    assert len(kept) == 20 and last.reason == "parse_error" and last.detail.startswith("XMLSyntaxError")
    commented = (many + records.replace("<Abstract>", "<!-- </AuthorList> --><Abstract>") + "</PubmedArticleSet>")
    items = list(iter_medline(io.BytesIO(commented.encode()), name="comment.xml"))
    assert len(items) == 21 and all(isinstance(item, dict) for item in items)


def test_pruner_does_not_hold_an_endless_tag(monkeypatch):
    monkeypatch.setattr(medline, "READ_SIZE", 4096)
    records = citation_xml("").decode()[len("<PubmedArticleSet>"):-len("</PubmedArticleSet>")]
    endless = ("<PubmedArticleSet>" + records * 30 + "<PubmedArticle><MedlineCitation><AuthorList x=\"").encode()
    stream = io.BytesIO(endless + b"a" * (3 * 1024 * 1024))
    *kept, last = iter_medline(stream, name="endless.xml")
    assert len(kept) == 30 and (last.reason, last.id) == ("parse_error", "file:endless.xml")
    assert "ValueError" in last.detail


# --- a 2026 update file (made up, in the form NCBI writes since the December 2025 baseline) ----

UPDATE_2026 = Path(__file__).resolve().parent / "fixtures" / "pubmed26_update_made_up.xml.gz"  # see fixtures/README.md


def update_2026_outcomes() -> list:
    return list(iter_medline(UPDATE_2026, name=UPDATE_2026.name))


def update_2026_records() -> dict[int, etree._Element]:
    """The fixture's PubmedArticle elements by PMID, read with lxml independently of the parser."""
    with gzip.open(UPDATE_2026) as stream:
        root = etree.parse(stream, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)).getroot()
    return {int(record.findtext("MedlineCitation/PMID")): record for record in root.iter("PubmedArticle")}


def flat_text(element: etree._Element) -> str:
    return " ".join("".join(element.itertext()).split())


def test_2026_update_file_records_drops_and_deletions():
    items = update_2026_outcomes()
    assert [item["id"] if isinstance(item, dict) else type(item).__name__ for item in items] == [
        "pmid:41617203", "pmid:41617210", "pmid:41617254", "Drop", "pmid:41617301", "DeleteCitation"]
    drop = items[3]
    assert (drop.id, drop.reason, drop.source) == ("pmid:41617288", "no_abstract", "pubmed_abstracts")  # a letter
    assert items[-1] == DeleteCitation(pmids=(41398822, 40933107, 39871214))
    documents_to_batch([item for item in items if isinstance(item, dict)])


def test_2026_update_text_has_no_coi_statement_references_or_other_abstract():
    """Per record: no CoiStatement, Citation of a (PMC-supplied) Reference, OtherAbstract paragraph or
    CopyrightInformation of the record is in its text, which is its title and abstract only."""
    docs = {item["pmid"]: item for item in update_2026_outcomes() if isinstance(item, dict)}
    records = update_2026_records()
    assert sorted(records) == [41617203, 41617210, 41617254, 41617288, 41617301]
    seen = {"CoiStatement": 0, "Citation": 0, "OtherAbstract/AbstractText": 0, "CopyrightInformation": 0}
    for pmid, record in records.items():
        if pmid == 41617288:  # no abstract: dropped, no text at all
            assert pmid not in docs
            continue
        text = docs[pmid]["text"]
        paragraphs = [flat_text(record.find("MedlineCitation/Article/ArticleTitle"))] + [
            f"{part.get('Label')}: {flat_text(part)}" if part.get("Label") else flat_text(part)
            for part in record.iterfind("MedlineCitation/Article/Abstract/AbstractText")]
        paragraphs = [paragraph.replace(" https://osf.io/example-wfs23/", "") for paragraph in paragraphs]  # URLs go
        assert text.split("\n\n") == paragraphs, pmid
        for path in seen:
            for element in record.iterfind(f".//{path}"):
                seen[path] += 1
                assert flat_text(element) not in text, (pmid, path)
    assert seen == {"CoiStatement": 3, "Citation": 10, "OtherAbstract/AbstractText": 9, "CopyrightInformation": 2}

    # the same, spelled out
    trial = docs[41617203]["text"]
    assert "Meridian" not in trial and "competing interests" not in trial  # CoiStatement
    assert "Marsh RP" not in trial and "J Vasc Access Res" not in trial and "Standard operating" not in trial
    assert "Example Academic Press" not in trial  # CopyrightInformation
    spanish = docs[41617210]["text"]
    assert "conflicto de intereses" not in spanish and "OBJETIVO" not in spanish and "cribado" not in spanish
    assert "Cribado universal frente" not in spanish  # the VernacularTitle is not the title when there is one
    review = docs[41617254]["text"]
    assert "Nutrimed" not in review and "Getting fitter" not in review  # CoiStatement, plain-language summary
    cohort = docs[41617301]["text"]
    assert "CONTEXTE" not in cohort and "feux de forêt" not in cohort and "Lefebvre C" not in cohort
    assert "https://" not in cohort and "osf.io" not in cohort  # URL removed from the abstract
    assert "Analysis code is available at." in cohort


UPDATE_2026_FIELDS = {
    # pmid: (pmcid, doi, year, journal, publication types, {MeSH descriptor: major}, keywords)
    41617203: (
        "PMC12791436", "10.5555/jcat.2026.0112", 2026, "Journal of clinical antimicrobial therapy",
        ["Journal Article", "Multicenter Study", "Randomized Controlled Trial", "Research Support, Non-U.S. Gov't"],
        {"Humans": False, "Staphylococcal Infections": True, "Bacteremia": True, "Anti-Bacterial Agents": True,
         "Administration, Oral": False, "Administration, Intravenous": False, "Staphylococcus aureus": False,
         "Length of Stay": False, "Middle Aged": False, "Aged": False, "Female": False, "Male": False},
        ["Staphylococcus aureus", "Bacteraemia", "Oral antibiotic therapy", "Non-inferiority trial"]),
    41617210: (  # no PMC copy; year from <MedlineDate>2025 Nov-Dec</MedlineDate>, DOI from ArticleIdList
        None, "10.5555/raps.2025.103187", 2025, "Revista de atención primaria y salud comunitaria",
        ["Comparative Study", "English Abstract", "Journal Article", "Randomized Controlled Trial"],
        {"Humans": False, "Female": False, "Pregnancy": False, "Diabetes, Gestational": True, "Mass Screening": True,
         "Primary Health Care": False, "Glucose Tolerance Test": False, "Adult": False, "Spain": False},
        ["Atención primaria", "Cribado", "Diabetes gestacional", "Gestational diabetes", "Primary care", "Screening"]),
    41617254: (  # publisher record, not indexed yet; DOI only in ELocationID, the ValidYN="N" one skipped
        None, "10.5555/pmr.2026.0013", 2026, "Perioperative medicine reviews",
        ["Journal Article", "Review"], {},
        ["Frailty", "Older adults", "Perioperative care", "Prehabilitation"]),
    41617301: (
        "PMC12705518", "10.5555/cjrh.2025-0208", 2025, "Canadian journal of respiratory health",
        ["Journal Article", "Observational Study"],
        {"Humans": False, "Child": False, "Child, Preschool": False, "Asthma": True, "Smoke": True,
         "Particulate Matter": False, "Emergency Service, Hospital": False, "British Columbia": False,
         "Cross-Over Studies": False},
        ["Case-crossover", "PM2.5", "Paediatric asthma", "Wildfire smoke"]),
}


@pytest.mark.parametrize("pmid", sorted(UPDATE_2026_FIELDS))
def test_2026_update_fields(pmid):
    document = {item["pmid"]: item for item in update_2026_outcomes() if isinstance(item, dict)}[pmid]
    pmcid, doi, year, journal, publication_types, mesh, keywords = UPDATE_2026_FIELDS[pmid]
    assert (document["id"], document["url"]) == (f"pmid:{pmid}", f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/")
    assert (document["pmcid"], document["doi"], document["year"], document["journal"]) == (pmcid, doi, year, journal)
    assert document["publication_types"] == publication_types
    assert [term["descriptor"] for term in document["mesh_terms"]] == list(mesh)
    assert {term["descriptor"]: term["major_topic"] for term in document["mesh_terms"]} == mesh
    assert document["keywords"] == keywords
    assert document["retracted"] is False


def test_2026_update_structured_abstract_with_inline_markup():
    docs = {item["pmid"]: item for item in update_2026_outcomes() if isinstance(item, dict)}
    trial = docs[41617203]
    assert trial["title"] == ("Early oral step-down versus continued intravenous antibiotic therapy for uncomplicated "
                              "Staphylococcus aureus bacteraemia: a multicentre, open-label, randomised "
                              "non-inferiority trial.")
    paragraphs = trial["text"].split("\n\n")
    assert paragraphs[0] == trial["title"]
    assert [paragraph.split(":")[0] for paragraph in paragraphs[1:]] == [
        "BACKGROUND", "METHODS", "RESULTS", "CONCLUSIONS", "TRIAL REGISTRATION"]
    assert "death from any cause at 90 days, with a non-inferiority" in paragraphs[2]  # <b>90 days</b>
    assert paragraphs[3].endswith(  # <i>vs</i>, C<sub>max</sub>, thin and no-break spaces, minus, ×, ≥
        "(9 vs 13 days), and catheter-associated complications were less frequent (3 vs 15 events). Peak plasma "
        "concentrations (Cmax) of oral cefalexin exceeded 4 × MIC in 92% of sampled patients; no isolate had an "
        "MIC ≥2 mg/L.")
    assert "(risk difference −1.0 percentage point; 95% CI −6.1 to 4.1)" in paragraphs[3]
    assert paragraphs[5] == "TRIAL REGISTRATION: EU Clinical Trials Register, 2023-500118-27-00."
    assert "<" not in trial["text"] and "&" not in trial["text"]

    spanish = docs[41617210]["text"].split("\n\n")
    assert spanish[0] == ("[Universal versus risk-based screening for gestational diabetes in primary care: "
                          "a cluster-randomised comparison in 38 health centres].")
    assert "a body mass index ≥30 kg/m2, previous GDM" in spanish[2] and "an HbA1c of 5.7–6.4%" in spanish[2]
    assert "(V̇O2peak) by 1.5–2.5 mL/kg/min" in docs[41617254]["text"]
    assert "each 10 µg/m3 increase in smoke-related PM2.5" in docs[41617301]["text"]


def test_2026_update_other_abstracts_and_vernacular_title_kept_in_extra():
    docs = {item["pmid"]: item for item in update_2026_outcomes() if isinstance(item, dict)}
    extras = {pmid: json.loads(document["extra"]) for pmid, document in docs.items()}
    assert extras[41617203] == {"input": UPDATE_2026.name, "issn": "2731-4065", "journal_iso": "J Clin Antimicrob Ther",
                                "languages": ["eng"], "nlm_unique_id": "101790512", "pmid_version": 1}
    spanish = extras[41617210]
    assert spanish["languages"] == ["spa"]
    assert spanish["vernacular_title"].startswith("Cribado universal frente a cribado según factores de riesgo")
    [other] = spanish["other_abstracts"]
    assert (other["language"], other["type"]) == ("spa", "Publisher")
    assert [paragraph.split(":")[0] for paragraph in other["text"].split("\n\n")] == [
        "OBJETIVO", "DISEÑO", "RESULTADOS", "CONCLUSIONES"]
    assert "índice de masa corporal ≥30 kg/m2" in other["text"]
    [summary] = extras[41617254]["other_abstracts"]
    assert (summary["language"], summary["type"]) == ("eng", "plain-language-summary")
    assert summary["text"].startswith("Getting fitter, eating enough protein")
    [french] = extras[41617301]["other_abstracts"]
    assert (french["language"], french["type"]) == ("fre", "Publisher")
    assert french["text"].startswith("CONTEXTE: Les saisons de feux de forêt")
    dumped = json.dumps(extras, ensure_ascii=False)
    assert "Meridian" not in dumped and "conflicto de intereses" not in dumped and "Nutrimed" not in dumped


@pytest.mark.parametrize("read_size", [256, 700, 4096, 65536])
def test_2026_update_outcomes_do_not_depend_on_pruning_or_chunking(read_size, monkeypatch):
    """With chunks smaller than a record, the reference lists, histories (pmc-release dates), grant,
    author and chemical lists of all records but the first are cut by the pruner before parsing."""
    expected = update_2026_outcomes()  # one chunk: nothing pruned
    monkeypatch.setattr(medline, "READ_SIZE", read_size)
    pruned = list(medline._iter_medline(UPDATE_2026, name=UPDATE_2026.name, prune=True))
    assert pruned == expected
    assert list(medline._iter_medline(UPDATE_2026, name=UPDATE_2026.name, prune=False)) == expected
