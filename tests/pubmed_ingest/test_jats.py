"""parse_jats on the real PMC/eLife articles in shared/data/pmc, and on inline edge cases; iter_jats_articles
on pmc-articleset documents (several articles in one file)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from lxml import etree

from tests.pubmed_ingest.pmc_files import article_tree, parsed_article

from gap_replay.core.outcome import Drop
from gap_replay.core.schema import COLUMN_NAMES, documents_to_batch
from gap_replay.pubmed_ingest import jats
from gap_replay.pubmed_ingest.jats import iter_jats_articles, parse_jats

ROOT = Path(__file__).resolve().parents[2]
PMC = ROOT.parent / "shared" / "data" / "pmc"
ARTICLE_FILES = sorted(path.name for path in PMC.iterdir() if path.suffix in (".nxml", ".xml"))

MARKER = re.compile(r"\[(BIB_REF|FIG_REF|FIG|TABLE|FORMULA)\](.*?)\[/\1\]")
BIB_REF = re.compile(r"\[BIB_REF\](.*?)\[/BIB_REF\]")
JATS_TAG = re.compile(r"</?(?:mml:)?(?:p|italic|bold|sup|sub|xref|sec|title|td|tr|fig|table|math|mi|mo|mn|ext-link)\b")
# Three real PMC articles (each with a PMC id) and their ids, for the pmc-articleset tests.
SET_ARTICLES = {"ehp-116-1694.nxml": "PMC2599765", "mds526.nxml": "PMC3574550", "pone.0000217.nxml": "PMC1790863"}
ARTICLESET_DOCTYPE = (b'<!DOCTYPE pmc-articleset PUBLIC "-//NLM//DTD ARTICLE SET 2.0//EN" '
                      b'"https://dtd.nlm.nih.gov/ncbi/pmc/articleset/nlm-articleset-2.0.dtd">')
_ARTICLE_START = re.compile(rb"<article[\s>]")


def articleset(*articles: bytes) -> bytes:
    """A pmc-articleset document as NCBI efetch returns it for several ids: the articles' own XML
    declarations and DOCTYPEs removed, one set DOCTYPE (so their named entities stay legal)."""
    bodies = [data[_ARTICLE_START.search(data).start():].strip() for data in articles]
    return (b'<?xml version="1.0" encoding="UTF-8"?>\n' + ARTICLESET_DOCTYPE + b"\n<pmc-articleset>"
            + b"\n".join(bodies) + b"</pmc-articleset>\n")


def words(element: etree._Element | None) -> str:
    return " ".join("".join(element.itertext()).split()) if element is not None else ""


def without_markers(text: str) -> str:
    return MARKER.sub(" ", text)


# --- real files ---------------------------------------------------------------------------


def test_all_eleven_articles_are_present():
    assert len(ARTICLE_FILES) == 11


@pytest.mark.parametrize("file_name", ARTICLE_FILES)
def test_article_shape(file_name):
    doc = parsed_article(file_name)
    text = doc["text"]
    assert tuple(doc) == COLUMN_NAMES
    assert doc["source"] == "pubmed_papers"
    assert doc["title"] and text.startswith(doc["title"] + "\n\n# Abstract\n\n")
    assert re.search(r"^# \w", text, re.MULTILINE)  # top-level section headers
    assert "\n\n\n" not in text
    blocks = text.split("\n\n")
    assert all(block and block == block.strip() for block in blocks)
    assert not JATS_TAG.search(text), JATS_TAG.search(text)
    assert "http://" not in text and "https://" not in text and "www." not in text
    for marker in ("BIB_REF", "FIG_REF", "FIG", "TABLE", "FORMULA"):  # markers always come in non-empty pairs
        assert text.count(f"[{marker}]") == text.count(f"[/{marker}]")
        assert f"[{marker}][/{marker}]" not in text
    assert json.loads(doc["extra"]) == {"input": file_name, "article_type": article_tree(file_name).get("article-type")}
    documents_to_batch([doc])


@pytest.mark.parametrize("file_name", ARTICLE_FILES)
def test_citations_resolve_to_real_reference_titles_and_surnames(file_name):
    expected = set()
    for ref in article_tree(file_name).iter("ref"):
        title = words(ref.find(".//article-title")).rstrip(" .")
        surname = words(ref.find(".//surname"))
        if title and surname:
            title_words = title.split()
            short = " ".join(title_words[:12]) + ("..." if len(title_words) > 12 else "")
            expected.add(f"{short}, {surname}")
    found = set(BIB_REF.findall(parsed_article(file_name)["text"]))
    assert found & expected, sorted(found)[:5]


@pytest.mark.parametrize("file_name", ARTICLE_FILES)
def test_figures_and_tables_of_the_body_are_captioned_in_place(file_name):
    article = article_tree(file_name)
    scopes = [part for part in (article.find("body"), article.find("floats-group")) if part is not None]
    figures = sum(1 for scope in scopes for fig in scope.iter("fig"))
    tables = sum(1 for scope in scopes for table in scope.iter("table-wrap"))
    text = parsed_article(file_name)["text"]
    assert text.count("[FIG]") == figures
    assert text.count("[TABLE]") == tables
    if figures or tables:
        assert "[FIG_REF]" in text


@pytest.mark.parametrize("file_name", ARTICLE_FILES)
def test_reference_list_acknowledgements_and_table_bodies_are_left_out(file_name):
    article = article_tree(file_name)
    text = without_markers(parsed_article(file_name)["text"])
    for ref in article.iter("ref"):
        title = words(ref.find(".//article-title"))
        if len(title.split()) >= 6:
            assert title not in text
    back = article.find("back")
    left_out = list(article.iter("ack"))
    if back is not None:
        left_out += [sec for sec in back.iter("sec") if "cknowledg" in words(sec.find("title"))]
    for part in left_out:
        for paragraph in part.iter("p"):
            content = words(paragraph)
            if len(content.split()) >= 8:
                assert content not in text
    for cell in article.iter("td"):
        content = words(cell)
        if len(content.split()) >= 8:
            assert content not in text


@pytest.mark.parametrize("file_name", ARTICLE_FILES)
def test_every_citation_marker_has_a_title_and_a_surname(file_name):
    markers = BIB_REF.findall(parsed_article(file_name)["text"])
    assert markers
    for content in markers:
        title, _, surname = content.rpartition(",")
        assert title.strip() and surname.strip(), content


@pytest.mark.parametrize("file_name", ARTICLE_FILES)
def test_reference_titles_and_table_cells_are_not_in_the_text(file_name):
    """Outside the markers, no reference title (3 words or more) and no table cell (4 or more).

    Shorter ones are ordinary phrases that the text may well use ("at 25 min", "Oral contraceptive use").
    """
    text = without_markers(parsed_article(file_name)["text"])
    titles = {words(ref.find(".//article-title")) for ref in article_tree(file_name).iter("ref")}
    assert not [title for title in titles if len(title.split()) >= 3 and title in text]
    cells = {words(cell) for cell in article_tree(file_name).iter("td", "th")}
    assert not [cell for cell in cells if len(cell.split()) >= 4 and cell in text]


# Where the article's own prose names one of its authors (file -> phrases): these are text, not
# the author list. Any other occurrence of an author's surname outside the markers fails.
AUTHORS_IN_PROSE = {
    "1471-2180-11-174.nxml": ["holin hole formation described by Wang et al."],
    "ehp-116-1694.nxml": ["(Lema SC, Dickey JT, Schultz IR, Swanson P, unpublished data"],
    "elife00007.xml": ["(M C Schuman and I T Baldwin, personal observation, June 2010)"],
    "elife02935.xml": ["Wright–Fisher"],
}


@pytest.mark.parametrize("file_name", ARTICLE_FILES)
def test_author_list_is_not_in_the_text(file_name):
    # Markers are stripped first: an author may well be the first author of a cited paper.
    text = without_markers(parsed_article(file_name)["text"])
    explained = AUTHORS_IN_PROSE.get(file_name, [])
    for phrase in explained:
        assert phrase in text, phrase  # still there: the explanation is not stale
        text = text.replace(phrase, " ")
    authors = article_tree(file_name).findall("front/article-meta/contrib-group/contrib[@contrib-type='author']")
    assert authors
    for author in authors:
        surname, given = words(author.find(".//surname")), words(author.find(".//given-names"))
        if surname:
            assert not re.search(rf"\b{re.escape(surname)}\b", text), surname
            assert f"{given} {surname}" not in text and f"{surname} {given}" not in text
    for affiliation in article_tree(file_name).iter("aff"):
        content = words(affiliation)
        if len(content.split()) >= 6:
            assert content not in text


def test_research_article_metadata():
    doc = parsed_article("1471-2180-11-174.nxml")
    assert doc["id"] == "pmcid:PMC3166277"
    assert doc["pmcid"] == "PMC3166277"
    assert doc["pmid"] == 21810267
    assert doc["doi"] == "10.1186/1471-2180-11-174"
    assert doc["journal"] == "BMC Microbiology"
    assert doc["year"] == 2011
    assert doc["publication_types"] == ["research-article"]
    assert doc["license"] == "open-access"
    assert doc["url"] == "https://www.ncbi.nlm.nih.gov/pmc/articles/PMC3166277/"
    assert doc["title"] == "Factors influencing lysis time stochasticity in bacteriophage λ"
    # metadata sections in the body are left out, appendices are kept
    headers = [line for line in doc["text"].split("\n") if line.startswith("#")]
    assert "# Appendix A" in headers and "# Methods" in headers
    assert not {"# Competing interests", "# Authors' contributions", "# Supplementary Material"} & set(headers)


def test_elife_article_without_pmcid_falls_back_to_doi():
    doc = parsed_article("elife00007.xml")
    assert doc["id"] == "doi:10.7554/elife.00007"
    assert doc["pmcid"] is None
    assert doc["url"] == "https://doi.org/10.7554/elife.00007"
    assert doc["license"] == "http://creativecommons.org/licenses/by/3.0/"
    assert "Nicotiana attenuata" in doc["keywords"]
    # only the main abstract, not the eLife digest
    assert doc["text"].count("# Abstract") == 1
    assert "eLife digest" not in doc["text"]


def test_section_levels():
    headers = [line for line in parsed_article("PMC7417471.nxml")["text"].split("\n") if line.startswith("#")]
    assert headers[:4] == [
        "# Abstract", "# Introduction", "# Graphene-based Nanomaterials (GNMs)", "## GNMs fabrication"]
    assert "### Direct blending of GNMs in polymer nanofibers" in headers
    structured = parsed_article("6605965a.nxml")["text"]
    assert "# Abstract\n\n## Background\n\nOral contraceptive use" in structured  # trailing ":" of the label dropped


def test_markers_on_a_real_article():
    text = parsed_article("ehp-116-1694.nxml")["text"]
    assert ("[BIB_REF]Polybrominated diphenyl ethers in the environment and in people: a meta-analysis of..., "
            "Hites[/BIB_REF]") in text
    assert "[BIB_REF]Brominated flame retardants: cause for concern?, Birnbaum[/BIB_REF]" in text
    assert ("[FIG_REF]Figure 1: Exposure to PBDE-47 depressed circulating concentrations of total T4 in males "
            "and...[/FIG_REF]") in text
    assert ("[FIG]Figure 1: Exposure to PBDE-47 depressed circulating concentrations of total T4 in males and "
            "females (A), but had no effect on total T3 in males (B). *p < 0.05 compared with control.[/FIG]") in text
    tables = parsed_article("6605965a.nxml")["text"]
    assert ("[TABLE]Table 1: Participant characteristics at recruitment among women in the European Prospective "
            "Investigation into Cancer and Nutrition cohort[/TABLE]") in tables
    assert ("[FIG_REF]Table 1: Participant characteristics at recruitment among women in the European Prospective "
            "Investigation into...[/FIG_REF]") in tables


def test_formulas_from_mathml_and_tex():
    mathml = parsed_article("elife-14093-v1.xml")["text"]
    assert "divergence angle 137.5° (golden angle [FORMULA]ϕ[/FORMULA])" in mathml
    assert mathml.count("[FORMULA]") > 100
    tex = parsed_article("PMC7417471.nxml")["text"]
    assert "glass transition temperature ([FORMULA]{\\text{T}}_{\\text{g}}[/FORMULA])" in tex
    assert "documentclass" not in tex
    # pone.0000217's display formulas are images only: nothing to say, so no marker at all
    assert "[FORMULA]" not in parsed_article("pone.0000217.nxml")["text"]


# --- inline edge cases --------------------------------------------------------------------

META = ('<front><journal-meta><journal-title-group><journal-title>J Test</journal-title></journal-title-group>'
        '</journal-meta><article-meta>{ids}<title-group><article-title>Inline <italic>test</italic> article'
        '</article-title></title-group><pub-date pub-type="collection"><year>2001</year></pub-date>'
        '<pub-date pub-type="epub"><year>2003</year></pub-date>{abstract}</article-meta></front>')
IDS = '<article-id pub-id-type="pmid">123</article-id><article-id pub-id-type="pmc">456</article-id>'
REFS = ('<ref-list><title>References</title>'
        '<ref id="r1"><element-citation><person-group><name><surname>Curie</surname><given-names>M</given-names>'
        '</name><name><surname>Other</surname></name></person-group><article-title>On radioactive substances '
        'found in pitchblende and their many remarkable properties observed today.</article-title><source>Nature'
        '</source></element-citation></ref>'
        '<ref id="r2"><mixed-citation><person-group><name><surname>Snow</surname></name></person-group>. '
        '<source>Cholera book</source>.</mixed-citation></ref>'
        '<ref id="r3"><element-citation><person-group><name><surname>Nobody</surname></name></person-group>'
        '<year>1999</year></element-citation></ref>'
        '<ref id="r4"><element-citation><article-title>An anonymous report</article-title><source>Gazette</source>'
        '</element-citation></ref></ref-list>')


def article(body: str = "<p>Body text.</p>", *, ids: str = IDS, abstract: str = "", back: str = REFS,
            doctype: str = "", root_attrs: str = "") -> bytes:
    return (f'{doctype}<article xmlns:xlink="http://www.w3.org/1999/xlink" '
            f'xmlns:mml="http://www.w3.org/1998/Math/MathML" article-type="research-article"{root_attrs}>'
            + META.format(ids=ids, abstract=abstract)
            + f"<body>{body}</body><back>{back}</back></article>").encode()


def parse(data: bytes):
    return parse_jats(data, name="inline.nxml")


def body_text(data: bytes) -> str:
    doc = parse(data)
    assert isinstance(doc, dict), doc
    return doc["text"].split("\n\n", 1)[1]


def test_inline_metadata_and_pmcid_normalisation():
    doc = parse(article())
    assert doc["id"] == "pmcid:PMC456" and doc["pmid"] == 123
    assert doc["title"] == "Inline test article"
    assert doc["year"] == 2003  # epub preferred over an earlier collection date
    assert doc["text"] == "Inline test article\n\nBody text."
    for value in ("PMC789", "789"):
        ids = f'<article-id pub-id-type="pmcid">{value}</article-id>'
        assert parse(article(ids=ids))["pmcid"] == "PMC789"


def test_identifier_fallbacks():
    doi_only = parse(article(ids='<article-id pub-id-type="doi">https://doi.org/10.1/ABC</article-id>'))
    assert doi_only["id"] == "doi:10.1/abc" and doi_only["pmcid"] is None
    nothing = parse(article(ids='<article-id pub-id-type="publisher-id">x1</article-id>'))
    assert isinstance(nothing, Drop)
    assert (nothing.id, nothing.reason, nothing.source) == ("file:inline.nxml", "no_identifier", "pubmed_papers")


def test_empty_body_and_abstract_is_no_text():
    drop = parse(article(body="<sec><title>Empty</title></sec>"))
    assert isinstance(drop, Drop) and (drop.id, drop.reason) == ("pmcid:PMC456", "no_text")
    abstract_only = parse(article(body="", abstract="<abstract><p>Only the abstract.</p></abstract>"))
    assert abstract_only["text"] == "Inline test article\n\n# Abstract\n\nOnly the abstract."


def test_malformed_truncated_and_empty_input_are_parse_errors():
    truncated = article()[:-40]
    drop = parse(truncated)
    assert isinstance(drop, Drop) and (drop.id, drop.reason) == ("file:inline.nxml", "parse_error")
    assert drop.detail.startswith("XMLSyntaxError")
    for data in (b"", b"   \n", b"\x00\x01 not xml", b"<article><front></article>"):
        drop = parse(data)
        assert isinstance(drop, Drop) and (drop.id, drop.reason) == ("file:inline.nxml", "parse_error"), data


@pytest.mark.parametrize("data, root", [
    (b"<PubmedArticleSet/>", "PubmedArticleSet"),
    (b"<html><head><title>Not found</title></head><body><p>404</p></body></html>", "html"),
    (b'<foo xmlns="urn:x"><article/></foo>', "foo"),
    (b"<pmc-articleset><other/></pmc-articleset>", "pmc-articleset"),
])
def test_wrong_root_element_is_unsupported_input(data, root):
    drop = parse(data)
    assert isinstance(drop, Drop) and (drop.id, drop.reason) == ("file:inline.nxml", "unsupported_input")
    assert f"<{root}>" in drop.detail and drop.source == "pubmed_papers"


def test_pmc_articleset_wrapper_is_accepted():
    wrapped = b"<pmc-articleset>" + article() + b"</pmc-articleset>"
    assert parse(wrapped)["id"] == "pmcid:PMC456"


def test_section_nesting_and_paragraph_spacing():
    body = ('<p>Intro.</p><sec><title>Methods</title><p>M1.</p><p>M2.</p>'
            '<sec><title>Sub</title><p>S.</p><sec><title>Deep</title><sec><title>Deeper</title><p>D.</p>'
            '</sec></sec></sec></sec><sec><p>Untitled section text.</p></sec>')
    assert body_text(article(body)) == ("Intro.\n\n# Methods\n\nM1.\n\nM2.\n\n## Sub\n\nS.\n\n### Deep\n\n"
                                        "### Deeper\n\nD.\n\nUntitled section text.")


def test_citations_resolved_truncated_and_degraded():
    body = ('<p>Known <xref ref-type="bibr" rid="r1">1</xref>, book <xref ref-type="bibr" rid="r2">2</xref>, '
            'two <xref ref-type="bibr" rid="r1 r2">1,2</xref>, untitled <xref ref-type="bibr" rid="r3">3</xref>, '
            'anonymous <xref ref-type="bibr" rid="r4">4</xref>, '
            'unknown <xref ref-type="bibr" rid="r99">99</xref>, no rid <xref ref-type="bibr">?</xref>.</p>')
    assert body_text(article(body)) == (
        "Known [BIB_REF]On radioactive substances found in pitchblende and their many remarkable properties "
        "observed..., Curie[/BIB_REF], book [BIB_REF]Cholera book, Snow[/BIB_REF], two [BIB_REF]On radioactive "
        "substances found in pitchblende and their many remarkable properties observed..., Curie[/BIB_REF], "
        "[BIB_REF]Cholera book, Snow[/BIB_REF], untitled , anonymous , unknown , no rid .")


def test_figures_tables_and_their_references():
    body = ('<sec><title>Results</title><p>See <xref ref-type="fig" rid="f1">Figure 1</xref> and '
            '<xref ref-type="table" rid="t1">Table 1</xref> and <xref ref-type="fig" rid="gone">Figure 9</xref>.'
            '<fig id="f1"><label>Figure 1</label><caption><title>Survival curves.</title><p>Kaplan-Meier estimates '
            'of overall survival in both arms of the trial by treatment group and age.</p></caption>'
            '<graphic xlink:href="f1.jpg"/></fig> More text.</p>'
            '<table-wrap id="t1"><label>Table 1.</label><caption><p>Baseline characteristics.</p></caption>'
            '<table><tr><td>SECRET CELL VALUE</td></tr></table><table-wrap-foot><fn><p>FOOTNOTE</p></fn>'
            '</table-wrap-foot></table-wrap></sec>')
    assert body_text(article(body)) == (
        "# Results\n\n"
        "See [FIG_REF]Figure 1: Survival curves. Kaplan-Meier estimates of overall survival in both arms of the..."
        "[/FIG_REF] and [FIG_REF]Table 1: Baseline characteristics.[/FIG_REF] and . More text.\n\n"
        "[FIG]Figure 1: Survival curves. Kaplan-Meier estimates of overall survival in both arms of the trial by "
        "treatment group and age.[/FIG]\n\n"
        "[TABLE]Table 1: Baseline characteristics.[/TABLE]")


def test_formulas():
    tex = ('<inline-formula><alternatives><tex-math>\\documentclass[12pt]{minimal}\\usepackage{amsmath}'
           '\\begin{document}$$E=mc^2$$\\end{document}</tex-math><mml:math><mml:mi>E</mml:mi></mml:math>'
           '<inline-graphic xlink:href="e.gif"/></alternatives></inline-formula>')
    mathml = ('<disp-formula id="e1"><label>(1)</label><mml:math><mml:mrow>\n  <mml:msup><mml:mi>x</mml:mi>'
              '<mml:mn>2</mml:mn></mml:msup>\n  <mml:mo>+</mml:mo><mml:mn>1</mml:mn></mml:mrow></mml:math>'
              '</disp-formula>')
    graphic_only = '<disp-formula><graphic xlink:href="f.gif"/></disp-formula>'
    text = body_text(article(f"<p>Energy {tex} and {mathml} where {graphic_only} done.</p>"))
    assert text == "Energy [FORMULA]E=mc^2[/FORMULA] and [FORMULA]x2+1[/FORMULA] where done."


def test_back_matter_footnotes_funding_and_urls_removed():
    body = ('<p>Data at <ext-link ext-link-type="uri" xlink:href="https://x.org/d">https://x.org/d</ext-link> and '
            '(www.example.com/page).<xref ref-type="fn" rid="fn1">a</xref></p>'
            '<fn-group><fn id="fn1"><p>FOOTNOTE TEXT</p></fn></fn-group>'
            '<sec><title>Funding</title><p>FUNDED BY A GRANT</p></sec>'
            '<sec sec-type="supplementary-material"><title>Extra</title><p>SUPPLEMENT</p></sec>'
            '<ack><p>THANKS</p></ack>')
    back = REFS + '<ack><p>BACK THANKS</p></ack><fn-group><fn><p>BACK FOOTNOTE</p></fn></fn-group>'
    doc = parse(article(body, back=back))
    assert body_text(article(body, back=back)) == "Data at and."
    for hidden in ("FOOTNOTE", "FUNDED", "SUPPLEMENT", "THANKS", "pitchblende", "Curie"):
        assert hidden not in doc["text"]


def test_lists_become_dash_lines():
    body = ('<p>Steps:</p><list list-type="order"><list-item><p>First <italic>step</italic>.</p></list-item>'
            '<list-item><p>Second.</p><list><list-item><p>Nested.</p></list-item></list></list-item></list>')
    assert body_text(article(body)) == "Steps:\n\n- First step.\n- Second.\n  - Nested."


def test_entities_from_an_unloaded_dtd():
    doctype = '<!DOCTYPE article PUBLIC "-//NLM//DTD JATS (Z39.96) Journal Archiving DTD v1.0//EN" "JATS.dtd">'
    text = body_text(article("<p>10&nbsp;mg of &alpha;-toxin&#x02009;x.</p>", doctype=doctype))
    assert text == "10 mg of α-toxin x."


def test_billion_laughs_does_not_expand():
    entities = '<!ENTITY lol0 "lollollollollollollollollollol">' + "".join(
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    result = parse(article("<p>a &lol9; b</p>", doctype=f"<!DOCTYPE article [{entities}]>"))
    text = result["text"] if isinstance(result, dict) else result.detail
    assert "lollol" not in text


def test_external_entity_is_not_fetched(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-CONTENT")
    result = parse(article("<p>Leak &xxe; here.</p>",
                           doctype=f'<!DOCTYPE article [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'))
    text = result["text"] if isinstance(result, dict) else result.detail
    assert "TOP-SECRET" not in text


def test_gzip_compressed_article():
    import gzip

    data = (PMC / "mds526.nxml").read_bytes()
    assert parse_jats(gzip.compress(data), name="mds526.nxml.gz")["text"] == parsed_article("mds526.nxml")["text"]
    cut = parse_jats(gzip.compress(data)[:5000], name="cut.nxml.gz")
    assert isinstance(cut, Drop) and (cut.id, cut.reason) == ("file:cut.nxml.gz", "parse_error")


# --- several articles in one file: iter_jats_articles -----------------------------------------


def outcomes(data: bytes, name: str = "set.xml") -> list:
    return list(iter_jats_articles(data, name=name))


def test_articleset_of_three_real_articles_gives_three_documents(shared_data):
    data = articleset(*((shared_data / "pmc" / file_name).read_bytes() for file_name in SET_ARTICLES))
    docs = outcomes(data)
    assert all(isinstance(doc, dict) for doc in docs), docs
    assert [doc["pmcid"] for doc in docs] == list(SET_ARTICLES.values())  # in document order
    assert [doc["id"] for doc in docs] == [f"pmcid:{pmcid}" for pmcid in SET_ARTICLES.values()]
    for number, (doc, file_name) in enumerate(zip(docs, SET_ARTICLES), start=1):
        alone = parsed_article(file_name)  # the same article parsed from its own file
        assert {key: value for key, value in doc.items() if key != "extra"} == \
               {key: value for key, value in alone.items() if key != "extra"}
        assert json.loads(doc["extra"]) == {**json.loads(alone["extra"]), "input": f"set.xml#article{number}"}
    documents_to_batch(docs)
    # parse_jats still reads only the first article of a set, named as before.
    assert parse_jats(data, name="set.xml")["id"] == docs[0]["id"]
    # gzip-compressed, the same.
    import gzip

    assert outcomes(gzip.compress(data), name="set.xml") == docs


def test_a_single_article_is_named_as_parse_jats_names_it():
    for data in (article(), b"<pmc-articleset>" + article() + b"</pmc-articleset>"):
        assert outcomes(data, name="inline.nxml") == [parse(data)]
    nothing = article(ids="")
    for data in (nothing, b"<pmc-articleset>" + nothing + b"</pmc-articleset>"):
        assert outcomes(data, name="inline.nxml") == [parse(data)]
        assert parse(data).id == "file:inline.nxml"  # the file's only article: a failure of the file


@pytest.mark.parametrize("data", [
    b"<pmc-articleset/>",
    ARTICLESET_DOCTYPE + b"\n<pmc-articleset>\n</pmc-articleset>",
    b"<pmc-articleset><other/><!-- no article --></pmc-articleset>",
])
def test_empty_articleset_is_one_drop_of_the_file(data):
    [drop] = outcomes(data)
    assert isinstance(drop, Drop)
    assert (drop.id, drop.reason, drop.source) == ("file:set.xml", "unsupported_input", "pubmed_papers")
    assert "holds no JATS <article>" in drop.detail and "empty article set" in drop.detail
    assert parse_jats(data, name="set.xml") == drop


def test_one_bad_article_among_good_ones_is_dropped_alone(shared_data, monkeypatch):
    good = [(shared_data / "pmc" / file_name).read_bytes() for file_name in ("ehp-116-1694.nxml", "mds526.nxml")]
    no_id = article(ids='<article-id pub-id-type="publisher-id">x1</article-id>')
    no_text = article(body="<sec><title>Empty</title></sec>", ids='<article-id pub-id-type="pmc">777</article-id>',
                      back="")
    broken = article(ids='<article-id pub-id-type="pmc">888</article-id>', root_attrs=' specific-use="explode"')
    real = jats._ArticleReader.outcome

    def outcome(self):  # an article that trips an unexpected error in the reader
        if self.article.get("specific-use") == "explode":
            raise RuntimeError("unexpected structure")
        return real(self)

    monkeypatch.setattr(jats._ArticleReader, "outcome", outcome)
    found = outcomes(articleset(good[0], no_id, no_text, broken, good[1]))
    assert [item["id"] for item in (found[0], found[4])] == ["pmcid:PMC2599765", "pmcid:PMC3574550"]
    drops = [(item.id, item.reason) for item in found[1:4]]
    assert drops == [("file:set.xml#article2", "no_identifier"), ("pmcid:PMC777", "no_text"),
                     ("file:set.xml#article4", "parse_error")]
    assert "set.xml#article3" in found[2].detail and "RuntimeError: unexpected structure" in found[3].detail
    # None of them is a failure of the whole file (job.failed_input_files: a drop under the file's own id).
    assert not any(item.id.startswith("file:") and "#" not in item.id for item in found[1:4])


def test_malformed_articleset_is_one_parse_error_of_the_file(shared_data):
    data = articleset((shared_data / "pmc" / "mds526.nxml").read_bytes(), article())
    [drop] = outcomes(data[:-60])  # cut inside the second article: the document is not well-formed
    assert isinstance(drop, Drop) and (drop.id, drop.reason) == ("file:set.xml", "parse_error")
    assert drop.detail.startswith("XMLSyntaxError")
