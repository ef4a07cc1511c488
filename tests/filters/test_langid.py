"""Language identification: normalisation, the long-document policy, real PubMed abstracts in English and in
other languages, model resolution and the once-per-process model cache."""

from __future__ import annotations

import pytest

from gap_replay.filters import langid
from gap_replay.filters.langid import (LanguageIdentifier, ModelNotFoundError, normalise_for_prediction, resolve_model_path,
                            sample_windows)
from tests.filters.conftest import extra

ENGLISH = ("Hypertension is a major risk factor for stroke and heart disease. In this randomized trial, adults "
           "with stage one hypertension received lifestyle counselling or usual care for twelve months. ")
FRENCH = ("L'hypertension artérielle est un facteur de risque majeur d'accident vasculaire cérébral. Dans cet essai "
          "randomisé, des adultes ont reçu des conseils sur leur mode de vie pendant douze mois. ")
# MEDLINE language codes (ISO 639-2) of the real files, and the lid.176 labels (ISO 639-1) for them.
ISO_639_1 = {"eng": "en", "fre": "fr", "ita": "it", "ger": "de", "spa": "es", "nor": "no", "chi": "zh",
             "jpn": "ja", "pol": "pl"}


@pytest.fixture(scope="module")
def identifier(lid_model):
    return LanguageIdentifier(lid_model)


def test_normalisation_removes_markup_and_newlines():
    text = "# Methods\n\n- item one\n[BIB_REF]A study, Smith[/BIB_REF] more\n## Results"
    normalised = normalise_for_prediction(text)
    assert "\n" not in normalised and "#" not in normalised and "[" not in normalised
    assert normalised.split() == ["Methods", "item", "one", "A", "study,", "Smith", "more", "Results"]


def test_short_documents_are_judged_whole_long_ones_on_spread_windows():
    abstract = ENGLISH * 10  # 2,000 characters: one window, the whole text
    assert sample_windows(abstract) == [normalise_for_prediction(abstract)]
    paper = "".join(f"Paragraph {i}. " + ENGLISH for i in range(100))  # ~20,000 characters
    windows = sample_windows(paper, windows=4, window_chars=1000)
    assert len(windows) == 4 and all(len(window) <= 1000 for window in windows)
    positions = [paper.index(window[:60]) for window in windows]
    assert positions[0] == 0 and positions == sorted(positions) and positions[-1] > len(paper) * 0.7
    assert sample_windows("  \n\n ") == []


def test_an_english_abstract_on_a_french_body_is_not_english(identifier):
    mixed = "# Abstract\n\n" + ENGLISH * 21 + "\n\n# Introduction\n\n" + FRENCH * 100
    assert identifier.predict([mixed[:4000]])[0][0] == "en"  # a 4,000-character prefix sees only English...
    language, score = identifier.predict([mixed])[0]
    assert language == "fr" and score > 0.5  # ...the windows see the body


def test_predictions_for_blank_and_mixed_batches(identifier):
    results = identifier.predict([ENGLISH, "", FRENCH, "   "])
    assert [language for language, _ in results] == ["en", "und", "fr", "und"]
    assert results[1] == ("und", 0.0) and results[0][1] > 0.9


def test_real_english_abstracts_are_english(identifier, real_abstracts):
    english = [document for document in real_abstracts if extra(document).get("languages") == ["eng"]]
    assert len(english) > 700
    predictions = identifier.predict([document["text"] for document in english])
    assert {language for language, _ in predictions} == {"en"}
    assert min(score for _, score in predictions) >= 0.65


def test_real_other_language_abstracts_and_titles_are_identified(identifier, real_abstracts):
    others = [(other["language"], other["text"]) for document in real_abstracts
              for other in extra(document).get("other_abstracts", [])
              if other["text"] != "Abstract available from the publisher."]  # an English placeholder
    titles = [(extra(document)["languages"][0], extra(document)["vernacular_title"]) for document in real_abstracts
              if extra(document).get("vernacular_title") and extra(document).get("languages") != ["eng"]]
    assert len(others) >= 3 and len(titles) >= 15
    predictions = identifier.predict([text for _, text in others + titles])
    expected = [ISO_639_1[code] for code, _ in others + titles]
    assert [language for language, _ in predictions] == expected


def test_model_resolution(tmp_path, monkeypatch, lid_model):
    assert resolve_model_path(str(lid_model)) == lid_model.resolve()
    with pytest.raises(ModelNotFoundError, match="filter.lid_model"):
        resolve_model_path(str(tmp_path / "missing.ftz"))
    monkeypatch.delenv("GAP_REPLAY_LID_MODEL")
    monkeypatch.setenv("GAP_REPLAY_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="gap-replay models download"):
        resolve_model_path()


def test_a_model_is_loaded_once_per_process(lid_model):
    first = LanguageIdentifier(lid_model)
    loads = langid.LOADS[str(lid_model)]
    second = LanguageIdentifier(lid_model)
    for _ in range(3):
        second.predict([ENGLISH])
    assert second.model is first.model and langid.LOADS[str(lid_model)] == loads == 1
