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


# Personal data: the card's table comes from the ledgers' details.redaction.
from gap_replay.mixer.card import redaction_lines  # noqa: E402

PLACEHOLDERS = {"email": "email@example.com", "phone": "+1 202 555 0100", "ip": "192.0.2.1 / 2001:db8::1"}


def redaction_manifest(kinds=("email", "phone", "ip"), replay_redacted=False):
    counts = {"guidelines": {"documents": 7, "redacted_documents": 1, "email": 3, "phone": 3, "ip": 1},
              "pubmed_abstracts": {"documents": 20, "redacted_documents": 1, "email": 1, "phone": 0, "ip": 0}}
    stages = [{"stage": "pubmed", "in": 1, "kept": 1, "dropped": {}},
              {"stage": "filter", "in": 27, "kept": 27, "dropped": {},
               "details": {"redaction": {"kinds": list(kinds),
                                         "placeholders": {kind: PLACEHOLDERS[kind] for kind in kinds},
                                         "by_source": counts}}}]
    if replay_redacted:
        stages.append({"stage": "replay", "in": 5, "kept": 5, "dropped": {}, "details": {"redaction": {
            "kinds": list(kinds), "placeholders": {kind: PLACEHOLDERS[kind] for kind in kinds},
            "by_source": {"replay": {"documents": 5, "redacted_documents": 2, "email": 2, "phone": 0, "ip": 1}}}}})
    parts = {part: {} for part in ("guidelines", "pubmed_abstracts", "replay")}
    return {"stages": stages, "parts": parts}


def test_the_card_counts_personal_data_by_part_and_says_what_was_not_checked():
    lines = redaction_lines(redaction_manifest())
    text = "\n".join(lines)
    assert "the `filter` stage replaced e-mail addresses by `email@example.com`, phone numbers by " \
           "`+1 202 555 0100`, IP addresses by `192.0.2.1 / 2001:db8::1`" in text
    assert "| Clinical practice guidelines (`guidelines`) | 7 | 1 | 3 | 3 | 1 |" in lines
    assert "| PubMed abstracts (`pubmed_abstracts`) | 20 | 1 | 1 | 0 | 0 |" in lines
    assert "| **total** | 27 | 2 | 4 | 3 | 1 |" in lines
    assert "Not checked for personal data: General-domain replay text (`replay`)" in text
    both = "\n".join(redaction_lines(redaction_manifest(replay_redacted=True)))
    assert "`filter`, `replay` stages" in both and "Not checked" not in both
    assert "| General-domain replay text (`replay`) | 5 | 2 | 2 | 0 | 1 |" in both


def test_a_kind_turned_off_is_said_and_shown_as_off():
    lines = redaction_lines(redaction_manifest(kinds=("email", "ip")))
    assert any(line.startswith("Not redacted, turned off in this build: phone numbers (`filter.redact_phones = false`)")
               for line in lines)
    assert "| Clinical practice guidelines (`guidelines`) | 7 | 1 | 3 | off | 1 |" in lines
    assert redaction_lines({"stages": [{"stage": "filter", "details": {}}]}) == []  # nothing recorded: nothing said
