"""PDF text fidelity against poppler's ``pdftotext``, page by page. Prints one JSON line.

For each PDF given (default: the real PDFs in ``../shared/data/guidelines/``, see its PROVENANCE.md),
``pdftotext`` (poppler-utils; required) gives the reference text of every page. From it are taken out:

- running heads and footers: a line among the first or last three lines of a page whose text (digits
  ignored) comes back at the top or bottom of at least 3 pages and 30% of them, and page numbers
  ("12", "Page 3 of 10") there;
- web addresses (a token with ``://``, ``www.``, a ``/`` or a ``.html``/``.gov``/... ending, as pdftotext
  breaks them over lines): the document's cleaning removes URLs by design;

and then each page's word 6-grams (letters only, case folded, hyphens and line-end hyphenation
removed on both sides, so that "treat-/ment" and "long-term" compare whatever the extractor did) are
looked up in our text. The 6-grams are taken within each of pdftotext's text blocks (its paragraphs,
separated by blank lines), not across them: the order in which two extractors visit the blocks of a
page (the cells of a checklist, a side box) is no loss of text. A page's *recall* is the share of its
distinct 6-grams found in our text. Two texts are measured:

- ``reader``: :func:`guidelines_scraper.pdf.convert_pdf`'s text (everything the reader kept), on every
  page with text;
- ``document``: that text cleaned as a guideline document (:func:`guidelines_scraper.clean.clean_text`:
  reference lists, tables of contents, debris removed), on the *body* pages only: pages that are not a
  table of contents (most lines dot leaders or page references), not a reference list (most lines
  citation-like) and hold at least 20 words.

Target (issue 26): on every PDF, no page under 0.3 (``pages_under``) and a mean recall of at least 0.9,
for the reader on pages with text and for the document on body pages. Pages per second: the reader's
(pdfminer layout analysis, headings, reading order), best of ``--repeat``.

    python bench/pdf_fidelity.py [PDF ...] [--threshold 0.3] [--repeat 1]
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DIR = ROOT.parent / "shared" / "data" / "guidelines"

from gap_replay.guidelines_scraper.clean import clean_text, is_citation  # noqa: E402
from gap_replay.guidelines_scraper.pdf import convert_pdf  # noqa: E402

N = 6
TARGET_MEAN = 0.9
EDGE_LINES = 3
_PAGE_NUMBER = re.compile(r"^(?:page\s+)?[\divxlc]{1,6}(?:\s*(?:/|of)\s*\d{1,4})?$", re.IGNORECASE)
_LINE_END_HYPHEN = re.compile(r"(?<=[^\W\d_])[-\u2010\u00ad]\s*\n\s*(?=[^\W\d_])")
_HYPHENS = re.compile(r"[-\u2010\u2011\u00ad]")
_WORD = re.compile(r"[^\W\d_]+")
_CONTENTS_LINE = re.compile(r"(?:(?:\.\s?){4,}|(?:…\s?){2,})\s*\d{1,4}\s*$|\S\s+\d{1,4}$")


def pdftotext_pages(path: Path) -> list[str]:
    result = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    pages = result.stdout.decode("utf-8", "replace").split("\f")
    if pages and not pages[-1].strip():
        pages.pop()
    return pages


def _key(line: str) -> str:
    return re.sub(r"\d+", "#", " ".join(line.split()).casefold())


def strip_running_lines(pages: list[str]) -> tuple[list[str], int]:
    """The pages without their running heads, footers and page numbers; and how many lines went."""
    edges: list[list[tuple[int, str]]] = []
    seen: Counter = Counter()
    for page in pages:
        lines = page.split("\n")
        filled = [index for index, line in enumerate(lines) if line.strip()]
        edge = sorted(set(filled[:EDGE_LINES] + filled[-EDGE_LINES:]))
        edges.append([(index, lines[index]) for index in edge])
        seen.update({_key(lines[index]) for index in edge})
    threshold = max(3, round(0.3 * len(pages)))
    out, removed = [], 0
    for page, edge in zip(pages, edges):
        lines = page.split("\n")
        drop = {index for index, line in edge
                if seen[_key(line)] >= threshold or _PAGE_NUMBER.match(line.strip())}
        removed += len(drop)
        out.append("\n".join(line for index, line in enumerate(lines) if index not in drop))
    return out, removed


_URL_TOKEN = re.compile(r"\S*(?:://|www\.|/)\S*|\S+\.(?:html?|pdf|aspx?|php|gov|org|com|int|edu)\b\S*",
                        re.IGNORECASE)


def tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFKC", text)
    text = _URL_TOKEN.sub(" ", text)
    text = _LINE_END_HYPHEN.sub("", text)
    text = _HYPHENS.sub("", text)
    return _WORD.findall(text.casefold())


def grams(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + N]) for i in range(len(words) - N + 1)}


def page_grams(text: str) -> set[tuple[str, ...]]:
    """The 6-grams of a reference page, within each of its blank-line separated blocks."""
    found: set[tuple[str, ...]] = set()
    for block in re.split(r"\n\s*\n", text):
        found |= grams(tokens(block))
    return found


_ENTRY_START = re.compile(r"^\s*(?:\[\d{1,4}\]|\d{1,4}[.)])\s")


def page_kind(text: str) -> str:
    """``empty`` (under 20 words), ``contents``, ``references`` or ``body``."""
    lines = [line.strip() for line in text.split("\n") if line.strip()]
    words = sum(len(line.split()) for line in lines)
    if words < 20:
        return "empty"
    if sum(bool(_CONTENTS_LINE.search(line)) for line in lines) >= 0.4 * len(lines):
        return "contents"
    # Entries: numbered lines with the lines that follow them, or else single lines.
    entries: list[str] = []
    for line in lines:
        if entries and not _ENTRY_START.match(line) and sum(bool(_ENTRY_START.match(l)) for l in lines) >= 3:
            entries[-1] += " " + line
        else:
            entries.append(line)
    cited = sum(len(entry.split()) for entry in entries if is_citation(entry))
    if cited >= 0.5 * words:
        return "references"
    return "body"


def _summary(recalls: dict[int, float], threshold: float) -> dict:
    values = list(recalls.values())
    return {
        "pages": len(values),
        "mean_recall": round(sum(values) / len(values), 4) if values else None,
        "min_recall": round(min(values), 4) if values else None,
        "pages_under": sorted(page + 1 for page, value in recalls.items() if value < threshold),
        "within_target": bool(values) and min(values) >= threshold and sum(values) / len(values) >= TARGET_MEAN,
    }


def measure(path: Path, threshold: float, repeat: int) -> dict:
    body = path.read_bytes()
    best = float("inf")
    for _ in range(max(1, repeat)):
        start = time.perf_counter()
        converted = convert_pdf(body)
        best = min(best, time.perf_counter() - start)
    reader_grams = grams(tokens(converted.text))
    document = clean_text(converted.text)
    document_grams = grams(tokens(f"{converted.title or ''}\n\n{document}"))
    pages, removed = strip_running_lines(pdftotext_pages(path))
    kinds: dict[int, str] = {}
    reader: dict[int, float] = {}
    documented: dict[int, float] = {}
    for number, page in enumerate(pages):
        kinds[number] = page_kind(page)
        reference = page_grams(page)
        if not reference:
            continue
        reader[number] = len(reference & reader_grams) / len(reference)
        if kinds[number] == "body":
            documented[number] = len(reference & document_grams) / len(reference)
    return {
        "file": path.name,
        "pages": len(pages),
        "kinds": dict(Counter(kinds.values())),
        "running_lines_removed": removed,
        "title": converted.title,
        "extraction": converted.extraction,
        "reader": _summary(reader, threshold),
        "document": _summary(documented, threshold),
        "recall_by_page": {str(page + 1): [kinds[page], round(reader[page], 3),
                                           round(documented[page], 3) if page in documented else None]
                           for page in reader},
        "seconds": round(best, 3),
        "pages_per_s": round(len(pages) / best, 2) if best else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pdfs", nargs="*", type=Path, help=f"PDF files (default: {DEFAULT_DIR}/*.pdf)")
    parser.add_argument("--threshold", type=float, default=0.3, help="a page under this recall is lost (0.3)")
    parser.add_argument("--repeat", type=int, default=1, help="timed conversions of each PDF (best is kept)")
    args = parser.parse_args(argv)
    if shutil.which("pdftotext") is None:
        print("pdf_fidelity: pdftotext (poppler-utils) is required as the reference", file=sys.stderr)
        return 2
    paths = args.pdfs or sorted(DEFAULT_DIR.glob("*.pdf"))
    if not paths:
        print(f"pdf_fidelity: no PDF given and none in {DEFAULT_DIR}", file=sys.stderr)
        return 2
    results = [measure(path, args.threshold, args.repeat) for path in paths]
    total_pages = sum(result["pages"] for result in results)
    total_seconds = sum(result["seconds"] for result in results)
    print(json.dumps({
        "bench": "pdf_fidelity",
        "reference": "pdftotext " + subprocess.run(["pdftotext", "-v"], capture_output=True, text=True)
        .stderr.split("\n")[0].split()[-1],
        "ngram": N,
        "threshold": args.threshold,
        "target_mean_recall": TARGET_MEAN,
        "pdfs": results,
        "pages_per_s": round(total_pages / total_seconds, 2) if total_seconds else None,
        "within_target": all(r["reader"]["within_target"] and r["document"]["within_target"] for r in results),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
