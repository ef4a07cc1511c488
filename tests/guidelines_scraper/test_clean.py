from __future__ import annotations

import pytest

from gap_replay.guidelines_scraper.clean import (
    apply_markers,
    clean_text,
    count_words,
    is_header_like,
)
from gap_replay.guidelines_scraper.sources import parse_sources


def make_source(**fields):
    base = dict(name="Test source", base_url="https://guidelines.example.org", seeds=["/"], discovery="static")
    base.update(fields)
    return parse_sources({"test": base})["test"]


def test_urls_removed_and_link_text_kept():
    text = ("See [the leaflet](https://example.org/leaflet) or https://example.org/a?b=1, "
            "www.example.org/page and <https://example.org/x>.\n\n![chart](https://example.org/c.png)")
    assert clean_text(text) == "See the leaflet or, and."


def test_parenthesised_url_pointer_removed():
    assert clean_text("Refer early (see https://example.org/toolkit for the toolkit).") == "Refer early."


@pytest.mark.parametrize("raw, expected", [
    ("Offer advice [1].", "Offer advice."),
    ("Offer advice [1–3] and review [2, 5-7].", "Offer advice and review."),
    ("Offer advice[12;14] today [3 and 4].", "Offer advice today."),
    ("Dose bands [A] to [C] apply [see Box 1].", "Dose bands [A] to [C] apply [see Box 1]."),
    ("Fever [edit] is common [citation needed].", "Fever is common."),
])
def test_only_numeric_citations_removed(raw, expected):
    assert clean_text(raw) == expected


def test_lists_normalised_without_the_o_bug():
    text = "* star item\n+ plus item\n• bullet item\n\uf0b7 wingdings item\no pdf bullet item\n- dash item"
    assert clean_text(text) == ("- star item\n- plus item\n- bullet item\n- wingdings item\n- pdf bullet item\n"
                                "- dash item")
    # Lines starting with words in "o" are not list items (the original `\no` rule ate their "o").
    text = "oral rehydration is first line.\n\nof all children, most recover.\n\nobserve for shock."
    assert clean_text(text) == text


def test_odd_characters_and_letterless_lines():
    text = "Give fluids\ufffd now ■ and review.\n\n12 34 56\n\n---\n\n|a|b|\n\nΗ θεραπεία είναι υποστηρικτική.\n\n\u200bEnd."
    assert clean_text(text) == "Give fluids now and review.\n\nΗ θεραπεία είναι υποστηρικτική.\n\nEnd."


def test_figure_and_table_debris_removed():
    text = ("Figure 2: Signs of dehydration\n\nTable 3. Doses by weight\n\nFig. 1 – Flow chart\n\n"
            "| Sign | Mild |\n| --- | --- |\n| Eyes | normal |\n\nTable 2 shows the doses by weight.\n\nClick to enlarge")
    assert clean_text(text) == "Table 2 shows the doses by weight."


def test_headers_rescaled_and_capped():
    text = "## Top\n\ntext a\n\n### Middle\n\ntext b\n\n#### Low\n\ntext c\n\n##### Lower\n\ntext d"
    assert clean_text(text) == "# Top\n\ntext a\n\n## Middle\n\ntext b\n\n### Low\n\ntext c\n\n### Lower\n\ntext d"


def test_headers_without_content_dropped():
    text = "# Empty section\n\n# Real section\n\nSome text.\n\n## Trailing empty"
    assert clean_text(text) == "# Real section\n\nSome text."


def test_paragraphs_one_blank_line_and_wrapped_lines_joined():
    text = "First paragraph starts here and is wrap-\nped over lines\nby a PDF extractor.\n\n\n\nSecond paragraph.\n- item one\ncontinued\n- item two"
    assert clean_text(text) == ("First paragraph starts here and is wrapped over lines by a PDF extractor.\n\n"
                                "Second paragraph.\n\n- item one continued\n- item two")


def test_blockquote_and_emphasis_removed():
    assert clean_text("> **Important:** give *oral* fluids, 5 * 3 ml.") == "Important: give oral fluids, 5 * 3 ml."


def test_reference_sections_removed_until_next_header():
    text = ("# Care\n\nGive fluids.\n\n## References\n\n1. Smith. Fluids. 2001.\n\n2. Jones. Salts. 2003.\n\n"
            "## Annex\n\nChecklist text.\n\n# Bibliography\n\n- Adams PQ. Oral rehydration. Lancet. 1999;354:12-15.\n"
            "- Brown T, et al. Zinc for diarrhoea. BMJ 2004, 12(3):45-50.\n\n## Books\n\n"
            "- Clark R. Paediatric fluids. 2nd ed. London: Field Press; 2010.\n"
            "- Dunn S, Eve K. Salts and water. In: Kay M, editor. Nursing. Oxford; 2012. p. 3-9.\n\n"
            "# Next chapter\n\nMore text.")
    assert clean_text(text) == "# Care\n\nGive fluids.\n\n## Annex\n\nChecklist text.\n\n# Next chapter\n\nMore text."
    # A plain "References" line (PDF text) removes up to the next '#' header.
    assert clean_text("Body text here.\n\nReferences\n\n1. Smith 2001.\n\n# After\n\nKept.") == (
        "Body text here.\n\n# After\n\nKept.")
    # A sentence starting with "References" is not a heading.
    assert clean_text("References to brand names are for identification only.") == (
        "References to brand names are for identification only.")


def test_markers_are_anchored_whole_line_regexes():
    source = make_source(start_markers=["introduction"], stop_markers=["notes", "acknowledge?ments"],
                         remove_markers=["last reviewed.*", "editor.*"])
    text = ("Skip to content\n\nPrint | Share\n\n# Introduction\n\nNotes on dosing are in the annex.\n\n"
            "Last reviewed: May 2024\n\nEditorial boards are independent of industry.\n\n"
            "An introduction to the topic is given below.\n\n## Notes:\n\nTrailing notes.\n\n# After\n\nGone.")
    assert clean_text(text, source) == ("# Introduction\n\nNotes on dosing are in the annex.\n\n"
                                        "An introduction to the topic is given below.")


def test_stop_marker_fires_only_on_header_like_lines():
    lines = ["Intro text.", "Acknowledgements are due to the nurses who collected data.", "Acknowledgements",
             "after"]
    import re

    stop = [re.compile(r"acknowledge?ments.*", re.IGNORECASE)]
    assert apply_markers(lines, stop=stop) == lines[:2]
    assert is_header_like("## Anything at all, even with a comma.")
    assert not is_header_like("- References")
    assert not is_header_like("This line ends a sentence.")


def test_start_marker_missing_keeps_everything():
    source = make_source(start_markers=["introduction"])
    assert clean_text("Body only.\n\nMore body.", source) == "Body only.\n\nMore body."


def test_count_words():
    assert count_words("# Title\n\n- one two\n\nthree, 4 -- ##") == 5
