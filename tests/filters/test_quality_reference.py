"""The quality rules against a reference: every rule of :mod:`filters.quality` (which counts the word n-grams
of long documents as integer keys with numpy, of short ones as word tuples) gives the same value (the
failure's detail, or None) and the same decision as the straightforward implementation below (each rule
written out plainly, one word or line at a time), through either n-gram path, on random texts built to hit the edge
cases (empty, one word, unicode, punctuation-only words, repeated words, lines and paragraphs, n-gram sizes
above the word count) and on the real abstracts and papers, under the default and random thresholds."""

from __future__ import annotations

import dataclasses
import random
import re
from collections import Counter

import pytest

from gap_replay.filters import quality
from gap_replay.filters.quality import RULES, Features, QualityRules, prose
from gap_replay.filters.settings import FilterConfig

# ---------------------------------------------------------------------------------------------------
# The reference: each rule written out plainly from the module's documentation.

LETTERS = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def has_letter(word: str) -> bool:
    """A letter of the alpha_words rule: A-Z, a-z, Latin-1 to Latin Extended-B, Greek, Cyrillic."""
    return any(ch in LETTERS or 0xC0 <= ord(ch) <= 0x24F or 0x370 <= ord(ch) <= 0x3FF or 0x400 <= ord(ch) <= 0x4FF
               for ch in word)


def structure(text: str) -> tuple[list[str], int, list[str]]:
    """Lines (headers aside), the `#` of headers, paragraphs (one-header paragraphs aside)."""
    lines, hashes = [], 0
    for line in text.split("\n"):
        line = line.strip()
        if not line:
            continue
        level = len(line) - len(line.lstrip("#"))
        if 1 <= level <= 6 and line[level:level + 1] == " ":
            hashes += level
        else:
            lines.append(line)
    paragraphs = []
    for paragraph in text.split("\n\n"):
        paragraph = paragraph.strip()
        if not paragraph:
            continue
        level = len(paragraph) - len(paragraph.lstrip("#"))
        if 1 <= level <= 6 and paragraph[level:level + 1] == " " and "\n" not in paragraph:
            continue
        paragraphs.append(paragraph)
    return lines, hashes, paragraphs


def reference_top_ngram(words: list[str], limits) -> str | None:
    chars = sum(len(word) for word in words)
    for n, limit in limits:
        if len(words) <= n:
            continue
        grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
        counts = Counter(grams)
        top = max(counts.values())
        gram = next(gram for gram in grams if counts[gram] == top)  # of the most frequent, the first to occur
        share = top * sum(len(word) for word in gram) / chars
        if top >= 2 and share > limit:
            return f"{n}-gram {' '.join(gram)!r} x{top} covers {share:.0%} of characters > {limit:.0%}"
    return None


def reference_duplicate_ngrams(words: list[str], limits) -> str | None:
    chars = sum(len(word) for word in words)
    for n, limit in limits:
        if len(words) < n + 1:
            return None
        seen, covered = set(), set()
        for i in range(len(words) - n + 1):
            gram = tuple(words[i:i + n])
            if gram in seen:
                covered.update(range(i, i + n))
            seen.add(gram)
        share = sum(len(words[i]) for i in covered) / chars
        if share > limit:
            return f"repeated {n}-grams cover {share:.0%} of characters > {limit:.0%}"
    return None


def boilerplate(line: str, config: FilterConfig) -> bool:
    if re.search("lorem ipsum", line, re.IGNORECASE):
        return True
    if len(line) > config.boilerplate_max_line_chars:
        return False
    lower = line.lower()
    return bool(quality._NOTICE.search(lower)
                or (len(lower) <= config.boilerplate_max_link_chars and quality._LINK.search(lower)))


def repeats(kind: str, items: list[str], max_fraction: float, max_char_fraction: float) -> tuple:
    counts = Counter(items)
    duplicates = sum(count - 1 for count in counts.values())
    by_count = None
    if duplicates and duplicates / len(items) > max_fraction:
        by_count = f"{duplicates} of {len(items)} {kind}s repeat an earlier one > {max_fraction:.0%}"
    by_chars = None
    if duplicates:
        repeated = sum(len(item) * (count - 1) for item, count in counts.items())
        total = sum(len(item) for item in items)
        share = repeated / total if total else 0.0
        if share > max_char_fraction:
            by_chars = f"repeated {kind}s hold {share:.0%} of characters > {max_char_fraction:.0%}"
    return by_count, by_chars


def reference(text: str, config: FilterConfig) -> dict:
    """Each rule's value (detail or None) or, where it cannot be computed, the exception's name."""
    text = prose(text)
    words = text.split()
    n = len(words)
    chars = sum(len(word) for word in words)
    lines, hashes, paragraphs = structure(text)
    c = config
    values = {}

    def value(name, compute):
        try:
            values[name] = compute()
        except ZeroDivisionError as error:
            values[name] = ("raises", type(error).__name__)

    value("too_short", lambda: f"{n} words < {c.min_words}" if n < c.min_words else None)
    value("too_long", lambda: f"{n} words > {c.max_words}" if c.max_words and n > c.max_words else None)

    def mean_word_length():
        mean = chars / n
        if not c.min_mean_word_length <= mean <= c.max_mean_word_length:
            return (f"mean word length {mean:.1f} outside [{c.min_mean_word_length:g}, "
                    f"{c.max_mean_word_length:g}]")
        return None

    def symbol_ratio():
        symbols = text.count("#") - hashes + text.count("...") + text.count("…")
        ratio = symbols / n
        return (f"{symbols} symbols per {n} words = {ratio:.2f} > {c.max_symbol_word_ratio:g}"
                if ratio > c.max_symbol_word_ratio else None)

    def stop_words():
        found = sum(1 for word in words if word.lower() in quality.STOP_WORDS)
        return f"{found} stop words < {c.min_stop_words}" if found < c.min_stop_words else None

    def alpha_words():
        # Words of letters only (str.isalpha) settle it first; then words with a letter of the rule's class.
        if sum(1 for word in words if word.isalpha()) >= c.min_alpha_word_fraction * n:
            return None
        alpha = 1.0 - (n - sum(1 for word in words if has_letter(word))) / n
        return (f"{alpha:.0%} of words have a letter < {c.min_alpha_word_fraction:.0%}"
                if alpha < c.min_alpha_word_fraction else None)

    def line_fraction(test):
        return sum(1 for line in lines if test(line)) / len(lines) if lines else 0.0

    def bullet_lines():
        share = line_fraction(lambda line: line.startswith(quality.BULLETS))
        return (f"{share:.0%} of lines are bullets > {c.max_bullet_line_fraction:.0%}"
                if share > c.max_bullet_line_fraction else None)

    def ellipsis_lines():
        share = line_fraction(lambda line: line.endswith(("...", "…")))
        return (f"{share:.0%} of lines end with an ellipsis > {c.max_ellipsis_line_fraction:.0%}"
                if share > c.max_ellipsis_line_fraction else None)

    def punctuated_lines():
        if not lines:
            return None
        share = line_fraction(lambda line: line[-1] in quality.TERMINAL_PUNCTUATION)
        return (f"{share:.0%} of lines end in punctuation < {c.min_punctuated_line_fraction:.0%}"
                if share < c.min_punctuated_line_fraction else None)

    def boilerplate_lines():
        if not lines:
            return None
        count = sum(1 for line in lines if boilerplate(line, c))
        return (f"{count} of {len(lines)} lines are boilerplate > {c.max_boilerplate_line_fraction:.0%}"
                if count / len(lines) > c.max_boilerplate_line_fraction else None)

    value("mean_word_length", mean_word_length)
    value("symbol_ratio", symbol_ratio)
    value("stop_words", stop_words)
    value("alpha_words", alpha_words)
    value("bullet_lines", bullet_lines)
    value("ellipsis_lines", ellipsis_lines)
    value("punctuated_lines", punctuated_lines)
    value("boilerplate_lines", boilerplate_lines)
    values["duplicate_lines"], values["duplicate_line_chars"] = repeats(
        "line", lines, c.max_duplicate_line_fraction, c.max_duplicate_line_char_fraction)
    values["duplicate_paragraphs"], values["duplicate_paragraph_chars"] = (
        repeats("paragraph", paragraphs, c.max_duplicate_paragraph_fraction, c.max_duplicate_paragraph_char_fraction)
        if lines else (None, None))
    value("top_ngram", lambda: reference_top_ngram(words, c.top_ngram_limits))
    value("duplicate_ngrams", lambda: reference_duplicate_ngrams(words, c.duplicate_ngram_limits))
    return values


def module_values(text: str, config: FilterConfig) -> dict:
    """Each rule of the module that these settings turn on, run on its own: its value or exception's name."""
    doc = Features(text)
    values = {}
    for rule in RULES:
        check = rule.bind(config)
        if check is None:
            continue
        try:
            values[rule.name] = check(doc)
        except ZeroDivisionError as error:
            values[rule.name] = ("raises", type(error).__name__)
    return values


def first_failure(values: dict, config: FilterConfig):
    """What QualityRules.check gives: the first failing rule and its detail, None, or the exception raised."""
    active = [rule.name for rule in RULES if rule.bind(config) is not None]
    return next(((name, values[name]) if isinstance(values[name], str) else values[name]
                 for name in active if values[name] is not None), None)


def decision(text: str, config: FilterConfig):
    try:
        return QualityRules(config).check(text)
    except ZeroDivisionError as error:
        return "raises", type(error).__name__


def assert_same(text: str, config: FilterConfig) -> dict:
    ours, expected = module_values(text, config), reference(text, config)
    assert ours == {name: expected[name] for name in ours}, text[:200]
    assert decision(text, config) == first_failure(expected, config)
    return ours


@pytest.fixture(params=["arrays", "tuples", "by length"])
def path(request, monkeypatch):
    """Every document through the integer-key (numpy) n-gram rules, through the word-tuple ones, or each
    document by its length as in production."""
    if request.param != "by length":
        monkeypatch.setattr(quality, "ARRAY_MIN_WORDS", 0 if request.param == "arrays" else 10 ** 9)
    return request.param


# ---------------------------------------------------------------------------------------------------
# Inputs: random texts and thresholds.

VOCABULARY = [
    "the", "of", "and", "to", "with", "The", "OF", "patients", "blood", "pressure", "trial", "care", "a", "in",
    "é", "café", "naïve", "Übersicht", "α", "β-blocker", "курс", "中文", "日本語", "😀", "x²", "ﬁ",
    "...", "…", "#", "##", "#tag", "-", "—", "–", "•", "*", "+", "(", ")", "[", "]", ",", ".", ";", ":", "!", "?",
    "1", "2.5", "10,000", "p<0.05", "±", "%", "§", "e.g.", "U.S.A.", "don't", "https://example.org/a?b=c",
    "cookies", "We", "use", "Privacy", "policy", "Terms", "of", "use", "Skip", "to", "content", "lorem", "ipsum",
    "a" * 40, "ab", "abc",
]
SEPARATORS = [" "] * 12 + ["\n"] * 3 + ["\n\n"] * 2 + ["\t", "  ", "\xa0", "\u3000", "\u2003", " \n ", "\r\n"]
STARTS = ["", "", "", "# ", "## ", "###### ", "####### ", "- ", "* ", "• ", "+ "]
MARKERS = ["[BIB_REF]Smith et al., a pragmatic trial...[/BIB_REF]", "[FIG_REF]Figure 2: ...[/FIG_REF]",
           "[FORMULA]\\frac{a}{b} ... \\#[/FORMULA]", "[FIG]Figure 1: a caption.[/FIG]", "[TABLE]Table 1[/TABLE]"]


BOILERPLATE = ["We use cookies to improve your experience.", "Skip to main content", "Terms of use", "Sign in",
               "Please enable JavaScript to view this page.", "Lorem ipsum dolor sit amet", "Read more", "LOREM IPSUM",
               "Privacy policy " + "x" * 80, "This site uses cookies " + "y" * 300]


def random_text(rng: random.Random) -> str:
    shape = rng.randrange(8)
    if shape == 0:  # tiny: empty, whitespace, one word, a few words
        return rng.choice(["", " ", "\n\n", "word", "ab", "…", "# x", "a b", " ".join(rng.choices(VOCABULARY, k=3))])
    vocabulary = rng.sample(VOCABULARY, rng.randint(1, len(VOCABULARY)))
    size = rng.choice([rng.randint(1, 30), rng.randint(1, 300), rng.randint(200, 3000)])
    words = rng.choices(vocabulary, k=size)
    parts = []
    for i, word in enumerate(words):
        if rng.random() < 0.02:
            parts.append(rng.choice(MARKERS))
        separator = rng.choice(SEPARATORS)
        if "\n" in separator:
            separator += rng.choice(STARTS)
        parts.append(word)
        parts.append(separator)
    text = "".join(parts)
    if shape in (1, 2):  # repeated paragraphs, lines or runs of words
        pieces = text.split("\n\n") if shape == 1 else text.split(" ")
        repeated = []
        for piece in pieces:
            repeated.append(piece)
            if rng.random() < 0.3:
                repeated.extend([rng.choice(pieces)] * rng.randint(1, 3))
        text = ("\n\n" if shape == 1 else " ").join(repeated)
    if shape == 4:  # boilerplate lines among the others
        lines = text.split("\n")
        text = "\n".join(rng.choice(BOILERPLATE) if rng.random() < 0.3 else line for line in lines)
    if shape == 3:  # one phrase many times over, with noise
        phrase = " ".join(rng.choices(vocabulary, k=rng.randint(1, 12)))
        text = " ".join(phrase if rng.random() < 0.7 else rng.choice(vocabulary) for _ in range(rng.randint(1, 200)))
    return text


def random_config(rng: random.Random) -> FilterConfig:
    def table(sizes, fractions):
        return {str(n): rng.choice(fractions) for n in rng.sample(sizes, rng.randint(1, min(6, len(sizes))))}

    return FilterConfig(
        min_words=rng.choice([1, 1, 5, 20]), max_words=rng.choice([0, 0, 50]),
        min_mean_word_length=rng.choice([0.0, 3.0]), max_mean_word_length=rng.choice([10.0, 50.0]),
        max_symbol_word_ratio=rng.choice([0.1, 1.0, 10.0]), min_stop_words=rng.choice([0, 2, 5]),
        min_alpha_word_fraction=rng.choice([0.0, 0.6, 0.9]),
        max_bullet_line_fraction=rng.choice([0.9, 1.0]), max_ellipsis_line_fraction=rng.choice([0.3, 1.0]),
        min_punctuated_line_fraction=rng.choice([0.0, 0.3]), max_boilerplate_line_fraction=rng.choice([0.2, 1.0]),
        max_duplicate_line_fraction=rng.choice([0.3, 1.0]), max_duplicate_line_char_fraction=rng.choice([0.2, 1.0]),
        max_duplicate_paragraph_fraction=rng.choice([0.3, 1.0]),
        max_duplicate_paragraph_char_fraction=rng.choice([0.2, 1.0]),
        max_top_ngram_char_fraction=table(list(range(1, 13)) + [30, 50], [0.0, 0.01, 0.05, 0.1, 0.2, 0.3, 1.0]),
        max_duplicate_ngram_char_fraction=table(list(range(1, 16)) + [40, 50], [0.0, 0.01, 0.05, 0.1, 0.25, 1.0]),
    )


# Thresholds low enough for the n-gram rules to fire on ordinary text (with their details compared), the rules
# before them out of the way.
NGRAMS_ONLY = dataclasses.replace(
    FilterConfig(), min_words=1, min_mean_word_length=0.0, max_mean_word_length=1000.0, max_symbol_word_ratio=1e9,
    min_stop_words=0, min_alpha_word_fraction=0.0, max_bullet_line_fraction=1.0, max_ellipsis_line_fraction=1.0,
    min_punctuated_line_fraction=0.0, max_boilerplate_line_fraction=1.0, max_duplicate_line_fraction=1.0,
    max_duplicate_line_char_fraction=1.0, max_duplicate_paragraph_fraction=1.0,
    max_duplicate_paragraph_char_fraction=1.0)
LOW_NGRAM_LIMITS = [
    dataclasses.replace(NGRAMS_ONLY, max_top_ngram_char_fraction={"1": 0.02, "2": 0.01, "3": 0.005, "6": 0.001},
                        max_duplicate_ngram_char_fraction={"2": 0.5, "5": 0.05, "7": 0.02, "11": 0.01}),
    dataclasses.replace(NGRAMS_ONLY, max_top_ngram_char_fraction={"4": 0.0, "8": 0.0},
                        max_duplicate_ngram_char_fraction={"5": 0.3, "6": 0.2, "8": 0.1, "10": 0.0, "20": 0.0}),
    dataclasses.replace(NGRAMS_ONLY, max_top_ngram_char_fraction={"2": 0.05, "3": 0.04, "4": 0.03},
                        max_duplicate_ngram_char_fraction={"5": 0.1, "6": 0.09, "7": 0.08, "8": 0.07, "9": 0.06,
                                                           "10": 0.05}),
]


def test_the_edge_cases_agree_with_the_reference(path):
    texts = ["", " ", "\n\n\n", "word", "one two", "…", "... ... ...", "# Title", "# Title\n\nbody text here",
             "a a", "a a a", "a b a b a b", "é é é é é é", "中文 中文 中文", "😀 😀", "- - - - - -",
             "[BIB_REF]only a reference...[/BIB_REF]", "the of and " * 3, "x " * 60, "x y " * 40]
    configs = [FilterConfig(min_words=1), dataclasses.replace(NGRAMS_ONLY), *LOW_NGRAM_LIMITS,
               dataclasses.replace(NGRAMS_ONLY, max_top_ngram_char_fraction={"1": 0.0, "50": 0.0},
                                   max_duplicate_ngram_char_fraction={"1": 0.0, "49": 0.0, "50": 0.0})]
    for text in texts:
        for config in configs:
            assert_same(text, config)
    # an empty text fails too_short; with min_words=0 the ratio rules divide by zero, in both
    assert module_values("", FilterConfig(min_words=0))["mean_word_length"] == ("raises", "ZeroDivisionError")
    assert_same("", FilterConfig(min_words=0))


def test_random_texts_agree_with_the_reference(path):
    rng = random.Random(20261207)
    fired = Counter()
    for _ in range(400):
        text = random_text(rng)
        for config in (FilterConfig(min_words=1), random_config(rng), rng.choice(LOW_NGRAM_LIMITS)):
            values = assert_same(text, config)
            fired.update(name for name, value in values.items() if value is not None)
    # the comparison saw every rule fail (with its detail), not only pass
    assert {rule.name for rule in RULES} <= set(fired), fired


def test_long_texts_with_many_distinct_words_agree_with_the_reference(path):
    # A vocabulary large enough that 5-gram keys pass 2^62 in base `distinct words`: keys renumbered on the way.
    rng = random.Random(7)
    vocabulary = [f"w{i}" for i in range(20_000)]
    for repeated in (0.0, 0.3):
        words = rng.choices(vocabulary, k=30_000)
        for i in range(0, len(words) - 20, 997):
            if rng.random() < repeated or i == 0:
                words[i + 500:i + 520] = words[i:i + 20]
        text = " ".join(words)
        assert_same(text, NGRAMS_ONLY)
        for config in LOW_NGRAM_LIMITS:
            assert_same(text, config)


def test_real_documents_agree_with_the_reference(real_abstracts, real_papers, path):
    texts = [document["text"] for document in real_abstracts[:300] + real_papers]
    fired = Counter()
    for text in texts:
        for config in (FilterConfig(), *LOW_NGRAM_LIMITS):
            values = assert_same(text, config)
            fired.update(name for name, value in values.items() if value is not None)
    assert fired["top_ngram"] and fired["duplicate_ngrams"]


def test_paragraph_repeats_in_a_real_paper_agree_with_the_reference(real_papers, path):
    paper = real_papers[0]["text"]
    paragraphs = paper.split("\n\n")
    repeated = "\n\n".join(paragraphs + paragraphs[:len(paragraphs) // 2])
    for config in (FilterConfig(), *LOW_NGRAM_LIMITS):
        assert_same(repeated, config)


@pytest.mark.parametrize("n", [1, 2, 5, 10])
def test_n_larger_than_the_word_count(n, path):
    config = dataclasses.replace(NGRAMS_ONLY, max_top_ngram_char_fraction={str(n): 0.0, str(n + 1): 0.0},
                                 max_duplicate_ngram_char_fraction={str(n): 0.0, str(n + 1): 0.0})
    for size in range(0 if n > 1 else 1, n + 3):
        assert_same(" ".join(["same"] * size), config)
        assert_same(" ".join(f"w{i}" for i in range(size)), config)


@pytest.mark.parametrize("distinct, n", [(3, 40), (50, 12), (20_000, 5), (20_000, 9)])
def test_ngram_keys_stay_in_int64_and_equal_exactly_where_the_ngrams_do(distinct, n):
    rng = random.Random(distinct + n)
    words = [f"w{rng.randrange(distinct)}" for _ in range(25_000)]
    words[1000:1000 + 3 * n] = words[:3 * n]  # a few repeats for sure
    doc = Features(" ".join(words))
    keys, bound = quality._gram_keys(doc.word_ids, len(doc.distinct_words), n)
    assert bound <= 2 ** 63 and 0 <= int(keys.min()) and int(keys.max()) < bound
    grams = [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]
    first_gram = {}
    for key, gram in zip(keys.tolist(), grams):
        assert first_gram.setdefault(key, gram) == gram  # one n-gram per key
    assert len(first_gram) == len(set(grams))  # one key per n-gram
