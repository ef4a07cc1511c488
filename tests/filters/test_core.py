import pytest

from filters.core import FilterSettings, filter_documents
from filters.langid import LanguageIdentifier, ModelNotFoundError, normalise_for_prediction, resolve_model_path
from gap_replay.outcome import Drop
from gap_replay.schema import make_document

ENGLISH = ("Hypertension is a major risk factor for stroke and heart disease. In this randomized trial, adults "
           "with stage one hypertension received lifestyle counselling or usual care for twelve months.")
FRENCH = ("L'hypertension artérielle est un facteur de risque majeur d'accident vasculaire cérébral. Dans cet essai "
          "randomisé, des adultes ont reçu des conseils sur leur mode de vie pendant douze mois.")


def test_normalisation_removes_markup_and_newlines():
    text = "# Methods\n\n- item one\n[BIB_REF]A study, Smith[/BIB_REF] more"
    assert normalise_for_prediction(text) == "Methods item one A study, Smith more"


def test_languages_scores_and_drops(lid_model):
    identifier = LanguageIdentifier(lid_model)
    documents = [
        make_document(id="pmid:1", source="pubmed_abstracts", text=ENGLISH),
        make_document(id="pmid:2", source="pubmed_abstracts", text=FRENCH),
        make_document(id="pmid:3", source="pubmed_abstracts", text="Hypertension in adults."),
    ]
    kept, french, short = filter_documents(documents, identifier, FilterSettings(min_words=10))
    assert kept["language"] == "en" and kept["language_score"] > 0.9
    assert french == Drop("pmid:2", "non_english", french.detail, "pubmed_abstracts") and french.detail.startswith("fr ")
    assert short.reason == "too_short" and short.detail == "3 words < 10"


def test_model_resolution(tmp_path, monkeypatch, lid_model):
    assert resolve_model_path(str(lid_model)) == lid_model.resolve()
    with pytest.raises(ModelNotFoundError, match="filter.lid_model"):
        resolve_model_path(str(tmp_path / "missing.ftz"))
    monkeypatch.delenv("GAP_REPLAY_LID_MODEL")
    monkeypatch.setenv("GAP_REPLAY_CACHE", str(tmp_path))
    with pytest.raises(ModelNotFoundError, match="gap-replay models download"):
        resolve_model_path()
