"""The dataset card says what the data holds: its languages come from the documents' language ids."""

from gap_replay.mixer.card import card_languages


def manifest(languages):
    return {"statistics": {"languages": languages}}


def test_languages_are_those_identified_most_documents_first():
    languages = {"guidelines": {"en": 7, "fr": 2}, "pubmed_abstracts": {"en": 23, "de": 3}, "replay": {"und": 24}}
    assert card_languages(manifest(languages)) == ["en", "de", "fr"]


def test_nothing_identified_is_undetermined():
    assert card_languages(manifest({"replay": {"und": 5}})) == ["und"]
    assert card_languages({}) == ["und"]
