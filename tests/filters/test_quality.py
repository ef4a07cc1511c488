"""Heuristic quality rules: each fires on a crafted bad document with its own name; real abstracts, papers
and the sample's guidelines pass them all; our markers and Markdown headers are not held against a text."""

from __future__ import annotations

import dataclasses

import pytest

from gap_replay.filters.quality import RULES, Features, QualityRules, Rule, prose
from gap_replay.filters.settings import FilterConfig
from gap_replay.core.config import ConfigError, parse_override
from gap_replay.stages import load_config

SENTENCES = [
    "Hypertension is a major risk factor for stroke and coronary heart disease in adults.",
    "Adults with stage one hypertension received lifestyle counselling or usual care for twelve months.",
    "The primary outcome was the change in systolic blood pressure measured in the clinic.",
    "Secondary outcomes included adherence to medication, weight and reported quality of life.",
    "Blood pressure fell more in the counselling group than with usual care at one year.",
    "Adverse events were rare and did not differ between the two groups of participants.",
    "These findings support structured counselling as part of routine primary care.",
    "Further trials should test whether the effect lasts beyond the first year of follow-up.",
]
GOOD = "Lifestyle counselling for hypertension\n\n" + "\n\n".join(SENTENCES)
FILLER = ("alpha bravo charlie delta echo foxtrot golf hotel india juliet kilo lima mike november oscar papa "
          "quebec romeo sierra tango uniform victor whiskey xray yankee zulu").split()


def check(text: str, **changes) -> tuple[str, str] | None:
    return QualityRules(dataclasses.replace(FilterConfig(), **changes)).check(text)


def test_a_good_document_passes_every_rule():
    assert check(GOOD) is None


# One crafted document per rule; each fails that rule first under the default settings (or the
# settings given), so the drop reason names exactly that rule.
CRAFTED = {
    "too_short": ("Hypertension in adults.", {}),
    "too_long": (GOOD, {"max_words": 50}),
    "mean_word_length": ("I am at it so we go to be in on an ox by my " * 4, {}),
    "symbol_ratio": (" ".join(f"Best deal of the year #{word} #sale ..." for word in FILLER) + ".", {}),
    "stop_words": ("Cheap watches online, free shipping, discount prices, best quality guaranteed, "
                   "genuine leather straps, fast delivery, secure payment, gift wrapping, easy returns, "
                   "limited offer, order today.", {}),
    "alpha_words": ("The prices of the items: " + " ".join(str(1000 + 7 * i) for i in range(60)) + ".", {}),
    "bullet_lines": ("\n".join(f"- {sentence}" for sentence in SENTENCES), {}),
    "ellipsis_lines": ("\n".join(f"{sentence[:-1]} and the rest of this story is on the next page..."
                                 for sentence in SENTENCES), {}),
    "punctuated_lines": ("\n".join(f"Home and garden tips for the {word} season with the family"
                                   for word in FILLER[:12]), {}),
    "boilerplate_lines": ("\n".join(["We use cookies to improve your experience on our website.",
                                     "Skip to main content", "Terms of use", "Privacy policy",
                                     "Please enable JavaScript to view this page.", *SENTENCES[:4]]), {}),
    "duplicate_lines": ("\n".join(SENTENCES[:4] + [SENTENCES[0]] * 4), {}),
    "duplicate_line_chars": ("\n".join([" ".join(SENTENCES)] * 2 + [f"The {word} was noted." for word in FILLER]),
                             {}),
    "duplicate_paragraphs": ("\n\n".join(["\n".join(f"{sentence[:-1]}, case {word}." for sentence in SENTENCES)
                                          for word in FILLER[:4]] + ["See the figure on the next page."] * 4), {}),
    "duplicate_paragraph_chars": ("\n\n".join([" ".join(SENTENCES)] * 2
                                              + [f"The {word} was noted." for word in FILLER]),
                                  {"max_duplicate_line_char_fraction": 1.0}),
    "top_ngram": (" ".join(f"the best price {word}" for word in FILLER) + " of all.", {}),
    "duplicate_ngrams": (" ".join([SENTENCES[0], SENTENCES[1], SENTENCES[0], SENTENCES[2], SENTENCES[0],
                                   SENTENCES[3], SENTENCES[0]]), {}),
}


RULE_NAMES = [rule.name for rule in RULES]


def test_every_rule_has_a_crafted_document():
    assert set(CRAFTED) == set(RULE_NAMES)


def test_the_rules_in_checking_order_read_configuration_fields():
    assert RULE_NAMES == ["too_short", "too_long", "mean_word_length", "symbol_ratio", "stop_words", "alpha_words",
                          "bullet_lines", "ellipsis_lines", "punctuated_lines", "boilerplate_lines",
                          "duplicate_lines", "duplicate_line_chars", "duplicate_paragraphs",
                          "duplicate_paragraph_chars", "top_ngram", "duplicate_ngrams"]
    config = FilterConfig()
    assert all(rule.fields and all(hasattr(config, key) for key in rule.fields) for rule in RULES)
    assert [rule.fields for rule in RULES][:3] == [("min_words",), ("max_words",),
                                                   ("min_mean_word_length", "max_mean_word_length")]


@pytest.mark.parametrize("rule", RULE_NAMES)
def test_each_rule_fires_with_its_own_name(rule):
    text, changes = CRAFTED[rule]
    failed = check(text, **changes)
    assert failed is not None and failed[0] == rule, failed
    assert failed[1]  # a human-readable detail


def test_lorem_ipsum_lines_are_boilerplate_whatever_their_length():
    lorem = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt. " * 6
    assert check("\n".join([lorem, *SENTENCES[:3]]))[0] == "boilerplate_lines"


def test_prose_about_cookies_or_privacy_policies_is_not_boilerplate():
    text = ("Privacy policies of health apps\n\nWe reviewed the privacy policy of 50 mobile health applications and "
            "whether each app uses cookies or other trackers, and found that the terms of use were rarely read by "
            "patients, who could not say which data the apps shared with third parties or how long they kept it.")
    assert check(text) is None


def test_markers_are_not_symbols_ellipses_or_repetitions():
    reference = "[FIG_REF]Figure 2: Systolic blood pressure in both groups over twelve months...[/FIG_REF]"
    citation = "[BIB_REF]Lifestyle counselling for hypertension in primary care: a pragmatic..., Smith[/BIB_REF]"
    sentences = [f"{sentence[:-1]} {reference} {citation}." for sentence in SENTENCES]
    paper = ("A paper\n\n# Results\n\n" + "\n\n".join(sentences)
             + "\n\n[FORMULA]\\frac{\\#a}{b} ... \\ldots[/FORMULA]\n\n[FIG]Figure 2: Systolic blood pressure.[/FIG]")
    assert check(paper) is None
    assert "BIB_REF" not in prose(paper) and "Figure 2: Systolic blood pressure." in prose(paper)
    # The same text with markers that are not ours: the references now count as repeated ellipses.
    assert check(paper.replace("FIG_REF]", "XREF]").replace("BIB_REF]", "CITE]")) is not None


def test_headers_are_structure_for_the_line_rules():
    sections = "\n\n".join(f"## Section {word}\n\n### Background {word}\n\n### Evidence {word}\n\n{sentence}"
                           for word, sentence in zip(FILLER, SENTENCES))
    assert check(f"# A guideline\n\n{sections}") is None
    # The same headers as plain lines: three lines in four lack final punctuation.
    assert check(sections.replace("### ", "").replace("## ", ""))[0] == "punctuated_lines"
    # "#word" is a hashtag, not a header: its "#" is a symbol.
    assert check(sections.replace("### ", "#").replace("## ", "#"))[0] == "symbol_ratio"


def test_real_abstracts_pass_every_rule(real_abstracts):
    rules = QualityRules()
    failed = {document["id"]: rules.check(document["text"]) for document in real_abstracts}
    assert {key: value for key, value in failed.items() if value} == {}


def test_real_papers_pass_every_rule(real_papers):
    rules = QualityRules()
    failed = {paper["id"]: rules.check(paper["text"]) for paper in real_papers}
    assert {key: value for key, value in failed.items() if value} == {}
    assert all("[BIB_REF]" in paper["text"] for paper in real_papers[:3])  # the markers really are there


def test_rules_off_at_their_neutral_thresholds_are_not_checked():
    off = FilterConfig(max_words=0, min_stop_words=0, min_alpha_word_fraction=0.0, max_boilerplate_line_fraction=1.0,
                       max_top_ngram_char_fraction={}, max_duplicate_ngram_char_fraction={})
    active = [name for name, _ in QualityRules(off).checks]
    assert not {"too_long", "stop_words", "alpha_words", "boilerplate_lines", "top_ngram",
                "duplicate_ngrams"} & set(active)
    assert len(active) == len(RULES) - 6
    for rule in ("stop_words", "alpha_words", "boilerplate_lines", "top_ngram", "duplicate_ngrams"):
        failed = QualityRules(off).check(CRAFTED[rule][0])
        assert failed is None or failed[0] != rule


@dataclasses.dataclass
class ShoutingConfig(FilterConfig):
    max_upper_word_fraction: float = 0.5


def shouting(doc: Features, *, max_upper_word_fraction):
    upper = sum(map(str.isupper, doc.words)) / doc.n_words
    return f"{upper:.0%} upper-case words" if upper > max_upper_word_fraction else None


def test_a_rule_registered_in_a_test_is_applied_with_its_reason_in_its_place():
    custom = Rule("shouting", shouting, ("max_upper_word_fraction",),
                  off=lambda config: config.max_upper_word_fraction >= 1)
    # Registered right after stop_words: it runs before the line and n-gram rules.
    at = RULE_NAMES.index("stop_words") + 1
    rules = QualityRules(ShoutingConfig(), [*RULES[:at], custom, *RULES[at:]])
    shouted = GOOD.upper()
    assert rules.check(GOOD) is None
    assert rules.check(shouted) == ("shouting", "100% upper-case words")
    assert QualityRules(ShoutingConfig()).check(shouted) is None  # the built-in rules alone keep it
    # Earlier rules still come first; later ones only see what it passes.
    assert rules.check(shouted.split("\n\n")[1])[0] == "too_short"
    assert rules.check("\n".join(f"- {s}" for s in SENTENCES).upper())[0] == "shouting"
    off = QualityRules(ShoutingConfig(max_upper_word_fraction=1.0), [*RULES, custom])
    assert off.check(shouted) is None and "shouting" not in dict(off.checks)


def test_the_defaults_come_from_the_one_configuration():
    rules = QualityRules()
    assert rules.config == FilterConfig()
    assert FilterConfig().top_ngram_limits == ((2, 0.30), (3, 0.28), (4, 0.26))
    assert FilterConfig().duplicate_ngram_limits[0] == (5, 0.25) and len(FilterConfig().duplicate_ngram_limits) == 6


def test_thresholds_come_from_the_configuration():
    config = load_config(overrides=["filter.min_words=5", "filter.max_top_ngram_char_fraction={2 = 0.5}",
                                    "filter.max_duplicate_ngram_char_fraction={}"])
    rules = QualityRules(config.filter)
    five_words = "Hypertension in adults, rarely treated."
    assert QualityRules().check(five_words)[0] == "too_short" and rules.check(five_words)[0] != "too_short"
    assert config.filter.top_ngram_limits == ((2, 0.5),)
    assert config.filter.duplicate_ngram_limits == ()
    assert rules.check(CRAFTED["duplicate_ngrams"][0]) is None  # that rule is off
    assert QualityRules(dataclasses.replace(config.filter, max_top_ngram_char_fraction={"10": 0.1, "3": 0.2})
                        ).config.top_ngram_limits == ((3, 0.2), (10, 0.1))  # sorted by n


@pytest.mark.parametrize("override, message", [
    ("filter.max_duplicate_line_fraction=1.5", "max_duplicate_line_fraction: must be between 0 and 1"),
    ("filter.min_words=-1", "min_words: must not be negative"),
    ("filter.max_top_ngram_char_fraction={x = 0.2}", "keys are n-gram sizes"),
    ("filter.max_duplicate_ngram_char_fraction={5 = 1.5}", r"max_duplicate_ngram_char_fraction\.5: must be between"),
    ("filter.min_quality_score=0.5", "needs filter.quality_model"),
    ("filter.languages=[]", "at least one language"),
    ("filter.min_language_score=1.5", "filter.min_language_score: must be between 0 and 1"),
])
def test_bad_thresholds_are_configuration_errors_at_load_time(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])
    _, key, value = parse_override(override)
    config = dataclasses.replace(FilterConfig(), **{key: value})  # built in code, as the stage registry will
    with pytest.raises(ConfigError, match=message):
        config.validate()
