"""Generated inputs of `bench/scale.py`: format-faithful PubMed, PMC, replay and guideline inputs whose sizes
follow the real ones, with skew planted on purpose. Used by the bench only.

Lengths (characters of the text the project's parsers produce):

- an abstract's text (its title and abstract, as the parser gives it) is drawn from the deciles of real PubMed
  abstracts (:data:`ABSTRACT_CHARS_DECILES`: the 738 abstracts of the real MEDLINE files under
  ``shared/data/pubmed``, read with ``pubmed_ingest.medline.iter_medline``: mean 1,498 characters, median
  1,556, longest 3,640);
- a paper's text is lognormal with a mean of 33,000 characters (PMC's), sigma :data:`PAPER_SIGMA` (median
  about 22,000), capped at 500,000; the 11 real JATS articles of ``shared/data/pmc`` (mean 66,000 characters
  of text, 2.4x as many bytes of XML, most of the rest the reference list) gave the structure: sections and
  subsections, citations of the reference list in the text, tables and figures with captions, a reference
  list of about one entry per 700 characters of text;
- a replay document is lognormal with a mean of 600 words (RedPajama's), sigma 0.8, capped at 20,000 words.

Skew, planted on purpose (:class:`Skew`):

- one PMC package holds ten times the articles of each of the others;
- a few papers of exactly 500,000 characters of text, in different packages;
- a cluster of near-identical replay documents (one text, each copy with 3 of its ~600 words replaced:
  Jaccard similarity of 5-word shingles about 0.9 between any two, over the dedup threshold of 0.8), spread
  over the replay files.

Text is English words drawn by frequency from the embedded sample, as sentences of 10 to 24 words taken from
a pool of 200,000 generated once per run: documents share no paragraph and, by chance, hardly a sentence
(two of the 500,000-character papers share about 2% of their sentences).
"""

from __future__ import annotations

import gzip
import io
import json
import math
import re
import tarfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gap_replay.build import sample_dir
from gap_replay.guidelines_scraper.local_site import write_listing_pages

# Deciles (0%, 10%, ..., 100%) of the text length of real PubMed abstracts (module docstring).
ABSTRACT_CHARS_DECILES = (172, 762, 1005, 1187, 1399, 1556, 1701, 1806, 1914, 2102, 3640)
PAPER_MEAN_CHARS, PAPER_SIGMA, PAPER_MAX_CHARS = 33_000, 0.9, 500_000
REPLAY_MEAN_WORDS, REPLAY_SIGMA, REPLAY_MAX_WORDS = 600, 0.8, 20_000
NEAR_DUPLICATE_EDITS = 3  # words replaced in each copy of the cluster's text
SENTENCE_POOL = 200_000
REPLAY_SETS = ("RedPajamaC4", "RedPajamaCommonCrawl", "RedPajamaWikipedia", "RedPajamaArXiv", "RedPajamaBook",
               "RedPajamaStackExchange")


@dataclass(frozen=True)
class Skew:
    big_package_factor: int = 10  # the first PMC package holds this many times the articles of each other one
    long_papers: int = 3  # papers of exactly PAPER_MAX_CHARS characters of text
    cluster: int = 10_000  # near-identical replay documents


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def lognormal(rng: np.random.Generator, mean: float, sigma: float, size: int, cap: float) -> np.ndarray:
    """`size` draws of a lognormal of the given mean (before the cap) and sigma, capped."""
    mu = math.log(mean) - sigma * sigma / 2
    return np.minimum(rng.lognormal(mu, sigma, size), cap)


class Text:
    """English-word text from the embedded sample's words (by frequency), as sentences from a fixed pool."""

    def __init__(self, seed: int, pool: int = SENTENCE_POOL):
        root = sample_dir()
        text = " ".join(path.read_text(encoding="utf-8", errors="replace")
                        for folder in ("pubmed", "pmc", "replay") for path in sorted((root / folder).iterdir()))
        self.words = np.array(re.findall(r"[a-z]{3,12}", re.sub(r"<[^>]+>", " ", text).lower()), dtype=object)
        self.rng = np.random.default_rng(seed)
        lengths = self.rng.integers(10, 25, size=pool)
        drawn = self.words[self.rng.integers(0, len(self.words), size=int(lengths.sum()))].tolist()
        self.pool, start = [], 0
        for length in lengths.tolist():
            self.pool.append(" ".join(drawn[start:start + length]).capitalize() + ".")
            start += length
        self.mean_sentence = sum(map(len, self.pool)) / pool + 1
        self.mean_word = self.mean_sentence / (float(lengths.mean()))

    def sentences(self, count: int) -> list[str]:
        return [self.pool[i] for i in self.rng.integers(0, len(self.pool), size=max(1, count)).tolist()]

    def chars(self, chars: float) -> str:
        """About `chars` characters of sentences (at least one): the sentences drawn until the next would
        overshoot `chars` by more than the text falls short without it."""
        drawn = self.sentences(int(chars / self.mean_sentence) + 3)
        kept, total = [drawn[0]], len(drawn[0])
        for sentence in drawn[1:]:
            if total + 1 + len(sentence) / 2 > chars:
                break
            kept.append(sentence)
            total += 1 + len(sentence)
        while total + 1 + self.mean_sentence / 2 <= chars:  # drew too few (short sentences): draw on
            sentence = self.sentences(1)[0]
            kept.append(sentence)
            total += 1 + len(sentence)
        return " ".join(kept)

    def paragraphs(self, chars: float, mean_paragraph: int = 900) -> list[str]:
        """About `chars` characters as paragraphs of about `mean_paragraph` characters."""
        count = max(1, round(chars / mean_paragraph))
        return [self.chars(chars / count) for _ in range(count)]

    def title(self) -> str:
        return " ".join(self.words[self.rng.integers(0, len(self.words), size=int(self.rng.integers(6, 13)))]
                        ).capitalize()

    def words_text(self, words: int) -> str:
        """About `words` words, as paragraphs of 3 to 8 sentences separated by blank lines."""
        sentences = self.sentences(round(words * self.mean_word / self.mean_sentence))
        paragraphs, start = [], 0
        while start < len(sentences):
            step = int(self.rng.integers(3, 9))
            paragraphs.append(" ".join(sentences[start:start + step]))
            start += step
        return "\n\n".join(paragraphs)


def abstract_lengths(rng: np.random.Generator, count: int) -> np.ndarray:
    """Characters of `count` abstracts, by the real deciles (inverse CDF, linear between deciles)."""
    return np.interp(rng.random(count), np.linspace(0, 1, len(ABSTRACT_CHARS_DECILES)), ABSTRACT_CHARS_DECILES)


# -- PubMed --------------------------------------------------------------------------------------

def _medline_templates() -> list[str]:
    sample = (sample_dir() / "pubmed" / "pubmed26n0001.xml").read_text(encoding="utf-8")
    templates = re.findall(r"<PubmedArticle>.*?</PubmedArticle>", sample, re.S)
    # The sample's PMC ids would give thousands of generated citations the same PMCID: a window keyed on the
    # PMCID would then be one huge group, a skew the real data does not have. The papers link by PMID.
    return [re.sub(r'<ArticleId IdType="pmc">[^<]*</ArticleId>', "", template) for template in templates]


def medline_records(text: Text, templates: list[str], pmids: list[int]) -> str:
    lengths = abstract_lengths(text.rng, len(pmids))
    records = []
    for number, pmid in enumerate(pmids):
        record = templates[number % len(templates)]
        record = re.sub(r'<PMID Version="1">\d+</PMID>', f'<PMID Version="1">{pmid}</PMID>', record, count=1)
        record = re.sub(r'<ArticleId IdType="pubmed">\d+</ArticleId>', f'<ArticleId IdType="pubmed">{pmid}</ArticleId>',
                        record)
        title = text.title()
        record = re.sub(r"<ArticleTitle>.*?</ArticleTitle>",
                        lambda _: f"<ArticleTitle>{_escape(title)}.</ArticleTitle>", record, count=1, flags=re.S)
        length = max(60.0, float(lengths[number]) - len(title) - 3)  # the document's text starts with the title
        parts = record.count("<AbstractText")
        if parts > 1 and length < 300 * parts:  # a short abstract is one paragraph, not structured
            first = record.index("</AbstractText>") + len("</AbstractText>")
            record = record[:first] + re.sub(r"<AbstractText[^>]*>.*?</AbstractText>", "", record[first:], flags=re.S)
            parts = 1
        # Structured abstracts: the length split over the parts, less what the label adds ("METHODS: ").
        share = length / max(1, parts) - (12 if parts > 1 else 0)
        record = re.sub(r"(<AbstractText[^>]*>).*?(</AbstractText>)",
                        lambda m: m.group(1) + _escape(text.chars(share)) + m.group(2), record, flags=re.S)
        records.append(record)
    return "\n".join(records)


def write_medline(directory: Path, text: Text, citations: int, files: int, first_pmid: int) -> list[int]:
    """`files` baseline files of `citations` citations, and an update file revising 1% and deleting 0.5%."""
    directory.mkdir(parents=True)
    templates = _medline_templates()
    head = '<?xml version="1.0" encoding="utf-8"?>\n<PubmedArticleSet>\n'
    pmids = list(range(first_pmid, first_pmid + citations))
    per_file = -(-citations // files)
    for index in range(files):
        chunk = pmids[index * per_file:(index + 1) * per_file]
        with gzip.open(directory / f"pubmed26n{index + 1:04d}.xml.gz", "wt", encoding="utf-8", compresslevel=1) as out:
            out.write(head + medline_records(text, templates, chunk) + "\n</PubmedArticleSet>\n")
    revised = pmids[:: 100]  # 1%: a later version of the record
    deleted = pmids[50:: 200]  # 0.5%
    deletions = "".join(f'<PMID Version="1">{pmid}</PMID>' for pmid in deleted)
    with gzip.open(directory / f"pubmed26n{files + 1:04d}.xml.gz", "wt", encoding="utf-8", compresslevel=1) as out:
        out.write(head + medline_records(text, templates, revised) + f"\n<DeleteCitation>{deletions}</DeleteCitation>\n"
                  "</PubmedArticleSet>\n")
    return pmids


# -- PMC -----------------------------------------------------------------------------------------

_SURNAMES = ("Holloway", "Ibsen", "Castellano", "Wright", "Obi", "Fairlie", "Anand", "Lindahl", "Moretti", "Okonkwo",
             "Brandt", "Sato", "Nguyen", "Ellis", "Marsh", "Kimura", "Adeleke", "Ferreira", "Nakamura", "Dunmore")
_SECTIONS = ("Introduction", "Methods", "Results", "Discussion", "Conclusions")


def _front_templates() -> list[str]:
    """The sample articles' front matter (up to the abstract), its ids and title replaced by PMID, PMC and
    TITLE markers (:func:`jats_article` fills them in)."""
    fronts = []
    for path in sorted((sample_dir() / "pmc").glob("*.nxml")):
        article = path.read_text(encoding="utf-8")
        front = article[:article.index("<abstract")]
        for pattern, marker in ((r'(<article-id pub-id-type="pmid">)\d+()', "\x00PMID\x00"),
                                (r'(<article-id pub-id-type="pmc">)\d+()', "\x00PMC\x00"),
                                (r'(<article-id pub-id-type="doi">)[^<]+()', "10.5555/bench.\x00PMC\x00"),
                                (r"(<article-title>).*?(</article-title>)", "\x00TITLE\x00")):
            front = re.sub(pattern, lambda match: match.group(1) + marker + match.group(2), front, count=1, flags=re.S)
        fronts.append(front)
    return fronts


def _references(count: int, text: Text) -> str:
    """A reference list of `count` journal citations (authors, title, source, year, pages, PMID, DOI)."""
    rng = text.rng
    numbers = rng.integers(0, 1 << 30, size=(count, 8)).tolist()
    refs = []
    for number, (a, b, year, volume, page, pmid, doi, given) in enumerate(numbers, start=1):
        authors = "".join(f"<name><surname>{_SURNAMES[(a >> (5 * k)) % len(_SURNAMES)]}</surname>"
                          f"<given-names>{'ABCDEFGHJKLMNP'[(given >> k) % 14]}</given-names></name>"
                          for k in range(1 + b % 5))
        title = " ".join(text.pool[(a + b) % len(text.pool)].split(" ")[:9 + b % 8])
        refs.append(f'<ref id="B{number}"><label>{number}</label><element-citation publication-type="journal">'
                    f'<person-group person-group-type="author">{authors}</person-group>'
                    f"<article-title>{title}</article-title><source>{title[:40].title()}</source>"
                    f"<year>{1990 + year % 35}</year><volume>{1 + volume % 90}</volume>"
                    f"<fpage>{1 + page % 900}</fpage><lpage>{901 + page % 98}</lpage>"
                    f'<pub-id pub-id-type="pmid">{10_000_000 + pmid % 29_000_000}</pub-id>'
                    f'<pub-id pub-id-type="doi">10.{1000 + doi % 9000}/j.bench.{doi}</pub-id></element-citation></ref>')
    return "\n".join(refs)


def jats_article(text: Text, front: str, pmid: int, pmc: int, chars: int) -> str:
    """One JATS article whose parsed text is about `chars` characters: the front, an abstract, a body of
    sections, subsections, paragraphs citing the reference list, tables and figures, and the back matter."""
    rng = text.rng
    references = int(min(400, max(10, chars // 700)))
    abstract_chars = float(abstract_lengths(rng, 1)[0])
    abstract = "".join(f"<sec><title>{name}</title><p>{_escape(text.chars(abstract_chars / 4))}</p></sec>"
                       for name in ("Background", "Methods", "Results", "Conclusions"))
    # Each citation adds about 110 characters ([BIB_REF]title..., Surname[/BIB_REF]) to the text, a figure or
    # table its caption twice (marker and float) or once.
    body_chars = max(800.0, chars - abstract_chars - 100)
    paragraphs = text.paragraphs(body_chars * 0.87)
    per_section = max(1, -(-len(paragraphs) // len(_SECTIONS)))
    body, number, floats = [], 0, 0
    for index, name in enumerate(_SECTIONS):
        chunk = paragraphs[index * per_section:(index + 1) * per_section]
        if not chunk:
            break
        body.append(f'<sec id="s{index + 1}"><title>{name}</title>')
        subsections = max(1, len(chunk) // 6)
        for sub in range(subsections):
            if subsections > 1:
                body.append(f'<sec id="s{index + 1}-{sub + 1}"><title>{_escape(text.title())}</title>')
            for paragraph in chunk[sub * len(chunk) // subsections:(sub + 1) * len(chunk) // subsections]:
                number += 1
                cite = int(rng.integers(1, references + 1))
                words = paragraph.split(" ")
                middle = len(words) // 2
                xref = f'<xref ref-type="bibr" rid="B{cite}">[{cite}]</xref>'
                body.append(f"<p>{_escape(' '.join(words[:middle]))} <italic>{words[middle]}</italic> "
                            f"{_escape(' '.join(words[middle + 1:]))} {xref}.</p>")
                if number % 9 == 0:  # a table or a figure every nine paragraphs
                    floats += 1
                    caption = _escape(text.chars(160))
                    if floats % 2:
                        rows = "".join(f"<tr><td>{_escape(text.title()[:30])}</td><td>{int(rng.integers(1, 999))}</td>"
                                       f"<td>{float(rng.random()):.2f}</td></tr>" for _ in range(8))
                        body.append(f'<table-wrap id="T{floats}" position="float"><label>Table {floats}</label>'
                                    f"<caption><title>{caption}</title></caption><table><thead><tr><th>Item</th>"
                                    f"<th>n</th><th>p</th></tr></thead><tbody>{rows}</tbody></table></table-wrap>")
                    else:
                        body.append(f'<fig id="F{floats}" position="float"><label>Figure {floats}</label>'
                                    f'<caption><title>{caption}</title></caption>'
                                    f'<graphic xlink:href="g{floats:03d}.jpg"/></fig>')
            if subsections > 1:
                body.append("</sec>")
        body.append("</sec>")
    refs = _references(references, text)
    title = _escape(text.title())
    return (front.replace("\x00PMID\x00", str(pmid)).replace("\x00PMC\x00", str(pmc)).replace("\x00TITLE\x00", title)
            + f"<abstract>{abstract}</abstract>\n</article-meta>\n</front>\n<body>\n" + "\n".join(body)
            + "\n</body>\n<back>\n<ack><title>Acknowledgements</title><p>We thank the staff of the units.</p></ack>"
            + f"\n<ref-list><title>References</title>\n{refs}\n</ref-list>\n</back>\n</article>\n")


def package_sizes(articles: int, packages: int, factor: int) -> list[int]:
    """Articles per package: the first holds `factor` times each of the others."""
    if packages <= 1:
        return [articles]
    weights = [factor] + [1] * (packages - 1)
    sizes = [articles * weight // sum(weights) for weight in weights]
    sizes[0] += articles - sum(sizes)
    return sizes


def write_pmc(directory: Path, text: Text, articles: int, pmids: list[int], packages: int, skew: Skew) -> dict:
    """PMC OA-style bulk packages (``.tar.gz`` of JATS ``.nxml``), each article the full text of one of the
    citations; the first package `skew.big_package_factor` times the others; `skew.long_papers` papers of
    PAPER_MAX_CHARS characters, one per package in turn. Returns what was written."""
    directory.mkdir(parents=True)
    fronts = _front_templates()
    lengths = lognormal(text.rng, PAPER_MEAN_CHARS, PAPER_SIGMA, articles, PAPER_MAX_CHARS).astype(int)
    sizes = package_sizes(articles, packages, skew.big_package_factor)
    starts = np.cumsum([0] + sizes)
    for index in range(min(skew.long_papers, articles)):  # first article of package 0, 1, 2...
        package = index % len(sizes)
        lengths[starts[package] + index // len(sizes)] = PAPER_MAX_CHARS
    step = max(1, len(pmids) // max(1, articles))
    written = {"packages": [], "paper_chars_target_mean": round(float(lengths.mean())),
               "long_papers": int((lengths >= PAPER_MAX_CHARS).sum())}
    number = 0
    for package, size in enumerate(sizes):
        path = directory / f"oa_comm_xml.PMC{package:03d}xxxxxx.baseline.2026-01-01.tar.gz"
        with tarfile.open(path, "w:gz", compresslevel=1) as archive:
            for _ in range(size):
                pmid, pmc = pmids[(number * step + 7) % len(pmids)], 8_000_000 + number
                data = jats_article(text, fronts[number % len(fronts)], pmid, pmc, int(lengths[number])).encode("utf-8")
                member = tarfile.TarInfo(f"oa_package/{pmc % 100:02d}/PMC{pmc}.nxml")
                member.size, member.mtime = len(data), 1_700_000_000
                archive.addfile(member, io.BytesIO(data))
                number += 1
        written["packages"].append({"name": path.name, "articles": size, "mib": round(path.stat().st_size / 2**20, 1)})
    return written


# -- replay --------------------------------------------------------------------------------------

def write_replay(directory: Path, text: Text, documents: int, files: int, cluster: int) -> dict:
    """RedPajama-style JSONL in `files` files: `documents` documents of lognormal length (mean 600 words) and
    `cluster` near-identical ones (one text, each copy with NEAR_DUPLICATE_EDITS words replaced), spread over
    the files at random places."""
    directory.mkdir(parents=True)
    rng = text.rng
    lengths = lognormal(rng, REPLAY_MEAN_WORDS, REPLAY_SIGMA, documents, REPLAY_MAX_WORDS)
    base = text.words_text(REPLAY_MEAN_WORDS).split(" ") if cluster else []
    kinds = np.concatenate([np.zeros(documents, dtype=np.int8), np.ones(cluster, dtype=np.int8)])
    rng.shuffle(kinds)
    outs = [(directory / f"redpajama_bench_{index:02d}.jsonl").open("w", encoding="utf-8") for index in range(files)]
    words = plain = 0
    try:
        for position, kind in enumerate(kinds.tolist()):
            if kind:
                copy = list(base)
                for at in rng.integers(0, len(copy), size=NEAR_DUPLICATE_EDITS).tolist():
                    copy[at] = str(text.words[int(rng.integers(0, len(text.words)))])
                body, meta = " ".join(copy), {"redpajama_set_name": "RedPajamaCommonCrawl", "cluster": True}
            else:
                body = text.words_text(float(lengths[plain]))
                meta = {"redpajama_set_name": REPLAY_SETS[plain % len(REPLAY_SETS)]}
                plain += 1
            words += body.count(" ") + body.count("\n\n") + 1
            outs[position % files].write(json.dumps({"text": body, "meta": meta}) + "\n")
    finally:
        for out in outs:
            out.close()
    return {"documents": documents + cluster, "near_duplicate_cluster": cluster, "files": files,
            "words_per_document": round(words / max(1, documents + cluster))}


# -- guidelines ----------------------------------------------------------------------------------

def write_site(root: Path, text: Text, pages: int, per_listing: int = 50) -> None:
    """A guideline site of `pages` article pages (3 to 6 sections of 4 to 8 sentences) behind listings."""
    (root / "a").mkdir(parents=True)
    for number in range(pages):
        title = _escape(text.title())
        sections = [(text.title(), " ".join(text.sentences(int(text.rng.integers(4, 9)))))
                    for _ in range(int(text.rng.integers(3, 7)))]
        body = "".join(f"<h2>{_escape(heading)}</h2><p>{_escape(paragraph)}</p>" for heading, paragraph in sections)
        (root / "a" / f"{number:05d}").write_text(
            f"<html><head><title>{title}</title></head><body><nav>Home</nav><article><h1>{title}</h1>{body}"
            "</article><footer>Bench guidelines</footer></body></html>", encoding="utf-8")
    write_listing_pages(root, pages, per_listing)
