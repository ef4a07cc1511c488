from datetime import date

import pytest

from gap_replay.pubmed_ingest.upsampling import (
    UpsamplingRules,
    citation_score,
    paper_types,
    recency_score,
    type_key,
    upsampling,
)

RULES = UpsamplingRules(date(2023, 8, 1), frozenset({"the lancet"}), (0.5, 4.0))


def test_type_names_match_in_either_spelling():
    assert type_key("Clinical Trial, Phase IV") == type_key("clinical trial phase iv")


@pytest.mark.parametrize(
    "types, expected",
    [
        (["Journal Article", "Case Reports"], 0.0),  # none of the rows: recency is not added either
        (["Meta-Analysis"], 1.0 + 1.0),  # + recency (2022 is under 5.5 years before the reference date)
        (["Randomized Controlled Trial", "Review"], 0.5 + 1.0),  # one row counts once
        (["Randomized Controlled Trial", "Clinical Trial, Phase III"], 0.5 + 0.6 + 1.0),  # two rows add up
        (["Editorial"], 0.1 + 1.0),
    ],
)
def test_publication_type_rows(types, expected):
    assert upsampling(types, [], None, 2022, None, RULES).score == pytest.approx(expected)


def test_journal_recency_and_citations():
    # On the list, 7 years old (0.2), top quartile of citations per year (1).
    assert upsampling([], [], "The Lancet", 2016, 5.0, RULES).score == pytest.approx(1 + 0.2 + 1)
    # Not on the list, no type: the conditional rows are not added.
    assert upsampling([], [], "Other Journal", 2022, 5.0, RULES).score == 0.0
    assert recency_score(2012, date(2023, 8, 1)) == 0.0 and recency_score(None, date(2023, 8, 1)) == 0.0
    assert citation_score(1.0, (0.5, 4.0)) == 0.5 and citation_score(0.1, (0.5, 4.0)) == 0.0
    assert citation_score(9.0, None) == 0.0


@pytest.mark.parametrize(
    "types, mesh, excluded",
    [
        (["Preprint"], [], "publication type preprint"),
        (["Retracted Publication", "Meta-Analysis"], [], "publication type retracted publication"),
        (["Observational Study, Veterinary"], [], "publication type observational study veterinary"),
        (["Review"], ["Mice", "Animals"], "MeSH Animals"),
    ],
)
def test_drop_categories(types, mesh, excluded):
    result = upsampling(types, mesh, None, 2022, None, RULES)
    assert result.excluded == excluded


def test_paper_types_from_jats():
    assert paper_types(["review-article"], ["Cardiology"]) == ["Review"]
    assert paper_types(["research-article"], ["Practice Guideline"]) == ["research-article", "Practice Guideline"]
    assert paper_types(None, None) == []
