"""Heuristic quality rules in the style of Gopher (Rae et al., 2021, appendix A) and C4 (Raffel et al., 2020).

Every rule is a :class:`Rule`: a name, which is the drop reason recorded in the ledger, the
:class:`~filters.settings.FilterConfig` fields it reads (its thresholds), and a check over one
document's :class:`Features`. :data:`RULES` is the registry, in checking order;
:meth:`QualityRules.check` returns the first rule a document fails as ``(name, detail)``, or None
when it passes them all. The rules, in the order they are checked:

=========================== =======================================================================
``too_short``               fewer than ``min_words`` words
``too_long``                more than ``max_words`` words (0: no upper bound)
``mean_word_length``        mean word length outside [``min_mean_word_length``, ``max_mean_word_length``]
``symbol_ratio``            (``#`` symbols + ellipses) per word above ``max_symbol_word_ratio``
``stop_words``              fewer than ``min_stop_words`` occurrences of English stop words
                            (the, be, to, of, and, that, have, with; whole words, any case)
``alpha_words``             share of words with at least one letter below ``min_alpha_word_fraction``
``bullet_lines``            share of lines starting with a bullet above ``max_bullet_line_fraction``
``ellipsis_lines``          share of lines ending with an ellipsis above ``max_ellipsis_line_fraction``
``punctuated_lines``        share of lines ending in punctuation below ``min_punctuated_line_fraction``
``boilerplate_lines``       share of boilerplate lines (cookie notices, "enable JavaScript", navigation,
                            terms of use, lorem ipsum) above ``max_boilerplate_line_fraction``
``duplicate_lines``         share of lines repeating an earlier line above ``max_duplicate_line_fraction``
``duplicate_line_chars``    same, counted in characters, above ``max_duplicate_line_char_fraction``
``duplicate_paragraphs``    share of paragraphs repeating an earlier one above ``max_duplicate_paragraph_fraction``
``duplicate_paragraph_chars`` same in characters, above ``max_duplicate_paragraph_char_fraction``
``top_ngram``               the most frequent word n-gram (n = 2, 3, 4) covers more than its
                            ``max_top_ngram_char_fraction[n]`` of the word characters
``duplicate_ngrams``        word n-grams (n = 5 ... 10) repeating an earlier occurrence cover more than
                            ``max_duplicate_ngram_char_fraction[n]`` of the word characters
=========================== =======================================================================

What the rules look at (one pass of preparation, shared by every rule):

- Our corpus markers are not prose. Citation and figure references (``[BIB_REF]...[/BIB_REF]``,
  ``[FIG_REF]...[/FIG_REF]``) and formulas (``[FORMULA]...[/FORMULA]``) are removed with their
  content: they are machine-written, end in ``...`` by design and repeat whenever a paper cites the
  same source or figure again. ``[FIG]``/``[TABLE]`` tags are removed and their captions kept.
- Words are whitespace-separated tokens; "characters" are the characters of words.
- Lines are the non-empty lines; paragraphs are the blocks between blank lines. Markdown headers
  (``#`` to ``######`` and a space) are structure: they do not count as lines or paragraphs for the
  line rules, the duplicate rules or the punctuation rule, and their ``#`` are not symbols.
- Duplicates count the occurrences after the first (Gopher): three equal lines make two duplicates.
  Duplicate n-gram characters are those of words covered by an n-gram occurrence that repeats an
  earlier occurrence.
- A boilerplate line (case aside) is a line of at most ``boilerplate_max_line_chars`` characters with
  a banner notice (:data:`BOILERPLATE_NOTICES`: cookies, JavaScript, newsletter), a line of at most
  ``boilerplate_max_link_chars`` with a navigation or footer link (:data:`BOILERPLATE_LINKS`: terms
  of use, privacy policy, skip to content, sign in, read more...), or any line with "lorem ipsum".
  The length bounds keep prose that discusses privacy policies or cookies from counting.

How the n-gram rules count (same decisions either way, held to one reference by
tests/filters/test_quality_reference.py): a document of at least :data:`ARRAY_MIN_WORDS` words has its words
mapped once to integer ids (:attr:`Features.word_ids`, shared by the rules that need them; word lengths and
``str.isalpha`` are computed once per distinct word), each n-gram becomes an exact int64 key (the ids as digits
in base "distinct words", renumbered densely whenever the next digit could overflow: no hashing, no
collisions) and numpy sorts and counts the keys; shorter documents, where numpy's cost per call dominates,
count tuples of words with Counter and dicts.

How to add a rule: give it its threshold field in :class:`filters.settings.FilterConfig` (with
a comment, and a range check in ``validate`` when it is a fraction or a count), then write its
check below, where it belongs in the checking order::

    @rule("shouting", off=lambda config: config.max_upper_word_fraction >= 1)
    def shouting(doc: Features, *, max_upper_word_fraction):
        upper = sum(map(str.isupper, doc.words)) / doc.n_words
        return f"{upper:.0%} upper-case words" if upper > max_upper_word_fraction else None

The check's keyword parameters name the FilterConfig attributes it reads (bound once per
:class:`QualityRules`); it returns the failure's detail or None. A feature several rules need
belongs in :class:`Features`, computed once per document. Add a crafted document for the rule to
tests/filters/test_quality.py's CRAFTED and a line to the table above.
"""

from __future__ import annotations

import inspect
import operator
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import accumulate

import numpy as np

from gap_replay.core import markers
from gap_replay.filters.settings import FilterConfig


STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
_STOP_SET = frozenset(STOP_WORDS)
_SPACED_STOP_WORDS = tuple(f" {word} " for word in STOP_WORDS)
# Line endings that count as punctuated: sentence ends, clause ends before a list, closing
# quotes and brackets (a line often ends with a citation or a parenthesis), and CJK full stops.
TERMINAL_PUNCTUATION = frozenset(".!?:;\"')]}”’»…。！？")
BULLETS = ("- ", "* ", "• ", "‣ ", "◦ ", "– ", "+ ")
ELLIPSES = ("...", "…")
_HEADER = re.compile(r"#{1,6} [^\n]*\Z")  # a paragraph that is one Markdown header

# Boilerplate, matched on the lower-cased line: (keyword, pattern) pairs, the keyword a literal the
# pattern cannot match without, so most documents are cleared by a few substring searches.
# Notices are what banners say; they count on lines up to boilerplate_max_line_chars.
BOILERPLATE_NOTICES = (
    ("cookie", r"\b(?:we|this (?:web)?site|our (?:web)?site) uses? cookies\b"),
    ("cookie", r"\b(?:the )?use of cookies\b"),
    ("cookie", r"\bcookie (?:policy|settings|preferences|consent|notice)\b"),
    ("cookie", r"\baccept (?:all )?cookies\b"),
    ("by continuing", r"\bby continuing to (?:use|browse)\b"),
    ("javascript", r"\bjavascript (?:is |must be |has been )?(?:disabled|required|enabled|not enabled|turned off)\b"),
    ("javascript", r"\b(?:enable|turn on|activate) javascript\b"),
    ("javascript", r"\bjavascript:"),
    ("browser", r"\byour browser (?:does not|doesn't) support\b"),
    ("newsletter", r"\bsubscribe to (?:our|the) newsletter\b"),
)
# Links are navigation and footer items; prose mentions the same words ("the terms of use of the
# app"), so they count only on short lines (up to boilerplate_max_link_chars), as links are.
BOILERPLATE_LINKS = (
    ("terms", r"\bterms (?:of use|of service|and conditions)\b"),
    ("privacy", r"\bprivacy (?:policy|notice|statement)\b"),
    ("skip to", r"\bskip to (?:main )?(?:content|navigation)\b"),
    ("back to top", r"\bback to top\b"),
    ("jump to", r"\bjump to (?:navigation|search)\b"),
    ("you are here", r"\byou are here\b"),
    ("sign ", r"\bsign (?:in|up|out)\b"),
    ("log ", r"\blog (?:in|out)\b"),
    ("follow us", r"\bfollow us\b"),
    ("share ", r"\bshare (?:this|on)\b"),
    ("print this", r"\bprint this page\b"),
    ("not found", r"\bpage not found\b"),
    ("read more", r"\bread more\b"),
    ("click here", r"\bclick here\b"),
)
_BOILERPLATE_KEYWORDS = tuple(dict.fromkeys(keyword for keyword, _ in BOILERPLATE_NOTICES + BOILERPLATE_LINKS))
_NOTICE = re.compile("|".join(pattern for _, pattern in BOILERPLATE_NOTICES))
_LINK = re.compile("|".join(pattern for _, pattern in BOILERPLATE_LINKS))
_LOREM = re.compile(r"lorem ipsum", re.IGNORECASE)


def prose(text: str) -> str:
    """The text the rules look at: reference, figure-reference and formula markers removed with their
    content, caption tags removed."""
    if "[/" not in text:
        return text
    # Reference-like markers go with their content; caption tags go, captions stay.
    text = markers.REFERENCE_SPAN.sub("", text)
    for tag in markers.CAPTION_TAGS:
        text = text.replace(tag, "")
    return text


_NON_ALPHA_WORD = re.compile(r"(?<!\S)[^\sA-Za-z\u00c0-\u024f\u0370-\u03ff\u0400-\u04ff]+(?!\S)")


def _boilerplate_lines(text: str, lines: list[str], max_chars: int, max_link_chars: int) -> int:
    """How many of `lines` are boilerplate (see the module's doc)."""
    short = [line for line in lines if len(line) <= max_chars]
    matched: set[int] = set()
    if short:
        lowered = "\n".join(short).lower()
        if any(keyword in lowered for keyword in _BOILERPLATE_KEYWORDS):
            for i, line in enumerate(lines):
                if len(line) <= max_chars:
                    line = line.lower()
                    if _NOTICE.search(line) or (len(line) <= max_link_chars and _LINK.search(line)):
                        matched.add(i)
    if "psum" in text or "PSUM" in text:
        matched.update(i for i, line in enumerate(lines) if _LOREM.search(line))
    return len(matched)


def _fraction(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


# Word n-grams are counted as integer keys: each word gets an id (its rank by first occurrence), an n-gram
# the number its ids make in base "distinct words"; when that number could pass _KEY_LIMIT, the keys so far are
# renumbered densely (their rank among the distinct keys) first. Equal keys mean equal n-grams and the
# other way round, for any n: no hashing, nothing to verify.
_KEY_LIMIT = 1 << 62
# Documents of fewer words take the word-tuple versions of the n-gram rules (and plain sums for chars).
ARRAY_MIN_WORDS = 400


def _extend_keys(keys: np.ndarray, bound: int, ids: np.ndarray, base: int, starts: np.ndarray,
                 count: int) -> tuple[np.ndarray, int]:
    """Keys (< `bound`) of sequences extended by the `count` word ids at `starts`, `starts` + 1...: the new
    keys (equal exactly where both the old keys and the added words are) and their bound."""
    for offset in range(count):
        if bound > _KEY_LIMIT // base:
            distinct, keys = np.unique(keys, return_inverse=True)
            bound = len(distinct)
        keys = keys * base + ids[starts + offset]
        bound *= base
    return keys, bound


def _gram_keys(ids: np.ndarray, base: int, n: int) -> tuple[np.ndarray, int]:
    """Keys of the n-grams of the word ids `ids` (< `base`) at every position 0 ... len(ids) - n, and their bound."""
    count = len(ids) - n + 1
    keys, bound = ids[:count], base
    for offset in range(1, n):
        if bound > _KEY_LIMIT // base:
            distinct, keys = np.unique(keys, return_inverse=True)
            bound = len(distinct)
        keys = keys * base + ids[offset:offset + count]
        bound *= base
    return keys, bound


def _runs(ordered: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For sorted keys: whether each one starts a run of equal keys, the runs' starts and their lengths."""
    new = np.empty(len(ordered), dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    sizes = np.empty(len(starts), dtype=np.int64)
    np.subtract(starts[1:], starts[:-1], out=sizes[:-1])
    sizes[-1:] = len(ordered) - starts[-1:]
    return new, starts, sizes


def _groups(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For `keys` (at least one): each one's group (the rank of its value among the distinct values), the
    size of each group and the index of each group's first occurrence."""
    order = np.argsort(keys)
    new, starts, sizes = _runs(keys[order])
    group = np.empty(len(keys), dtype=np.int64)
    group[order] = np.cumsum(new) - 1
    return group, sizes, np.minimum.reduceat(order, starts)


class _once:
    """functools.cached_property without Python 3.11's lock (a Features object stays in its thread),
    which costs a few percent of the rules' time: after the first read the value is a plain attribute."""

    def __init__(self, compute):
        self.compute, self.name = compute, compute.__name__
        self.__doc__ = compute.__doc__

    def __get__(self, doc, owner=None):
        if doc is None:
            return self
        value = doc.__dict__[self.name] = self.compute(doc)
        return value


class Features:
    """One document as the rules see it (see the module's doc). Words are split up front (every
    document needs them); the rest is computed once, when a rule first reads it, so a document
    that fails an early rule costs no more than that."""

    def __init__(self, text: str):
        self.text = prose(text)
        self.words = self.text.split()
        self.n_words = len(self.words)

    @_once
    def _vocabulary(self) -> tuple[np.ndarray, list[str]]:
        first: dict[str, int] = {}
        # Each word's first position (setdefault keeps the first), then the rank of that position.
        positions = np.fromiter(map(first.setdefault, self.words, range(self.n_words)), np.int64, self.n_words)
        rank = np.zeros(self.n_words, dtype=np.int64)
        rank[np.fromiter(first.values(), np.int64, len(first))] = np.arange(len(first))
        return rank[positions], list(first)

    @property
    def word_ids(self) -> np.ndarray:
        """word_ids[i]: the id of word i, the rank of the word among the distinct words by first occurrence
        (so that a per-word property is computed once per distinct word)."""
        return self._vocabulary[0]

    @property
    def distinct_words(self) -> list[str]:
        """The distinct words in order of first occurrence (word id i is distinct_words[i])."""
        return self._vocabulary[1]

    @_once
    def prefix(self) -> np.ndarray:
        """prefix[i]: characters of the first i words (int64)."""
        distinct = self.distinct_words
        prefix = np.zeros(self.n_words + 1, dtype=np.int64)
        np.cumsum(np.fromiter(map(len, distinct), np.int64, len(distinct))[self.word_ids], out=prefix[1:])
        return prefix

    @_once
    def chars(self) -> int:
        """Characters of the words."""
        if self.n_words < ARRAY_MIN_WORDS:
            return sum(map(len, self.words))
        return int(self.prefix[-1])

    @_once
    def alpha_words(self) -> int:
        """Words made of letters only (str.isalpha)."""
        if self.n_words < ARRAY_MIN_WORDS:
            return sum(map(str.isalpha, self.words))
        distinct = self.distinct_words
        return int(np.count_nonzero(np.fromiter(map(str.isalpha, distinct), bool, len(distinct))[self.word_ids]))

    @_once
    def prefix_list(self) -> list[int]:
        """prefix, as a list (for the short documents' word-tuple n-gram rules)."""
        return [0, *accumulate(map(len, self.words))]

    @_once
    def _structure(self) -> tuple[list[str], int]:
        lines = []
        header_hashes = 0
        for line in map(str.strip, self.text.split("\n")):
            if not line:
                continue
            if line[0] == "#":
                title = line.lstrip("#")
                level = len(line) - len(title)
                if level <= 6 and title[:1] == " ":  # a Markdown header, not "#hashtag" text
                    header_hashes += level
                    continue
            lines.append(line)
        return lines, header_hashes

    @property
    def lines(self) -> list[str]:
        """The non-empty lines, Markdown headers aside, stripped."""
        return self._structure[0]

    @property
    def header_hashes(self) -> int:
        """The `#` that mark Markdown headers (structure, not symbols)."""
        return self._structure[1]

    @_once
    def paragraphs(self) -> list[str]:
        """The blocks between blank lines, stripped, one-header paragraphs aside."""
        return [paragraph for paragraph in map(str.strip, self.text.split("\n\n"))
                if paragraph and (paragraph[0] != "#" or not _HEADER.match(paragraph))]

    @_once
    def duplicate_lines(self) -> int:
        """Lines that repeat an earlier line."""
        return len(self.lines) - len(set(self.lines))

    @_once
    def duplicate_paragraphs(self) -> int:
        return len(self.paragraphs) - len(set(self.paragraphs))


@dataclass(frozen=True)
class Rule:
    """One quality rule: its name (the drop reason), `check(doc, **thresholds)` over one document's
    Features returning the failure's detail or None, the FilterConfig attributes it reads (its
    keyword parameters, bound once per QualityRules), and `off(config)`: whether these settings
    turn it off, so that it is not run at all."""

    name: str
    check: Callable[..., str | None]
    fields: tuple[str, ...]
    off: Callable[[FilterConfig], bool] = lambda config: False

    def bind(self, config: FilterConfig) -> Callable[[Features], str | None] | None:
        if self.off(config):
            return None
        return partial(self.check, **{key: getattr(config, key) for key in self.fields})


RULES: list[Rule] = []  # the registry, in checking order


def rule(name: str, off: Callable[[FilterConfig], bool] = lambda config: False):
    """Register the decorated check as rule `name`, after those registered before it; its keyword
    parameters name the FilterConfig attributes it reads."""

    def register(check: Callable[..., str | None]) -> Rule:
        fields = tuple(inspect.signature(check).parameters)[1:]
        registered = Rule(name, check, fields, off)
        RULES.append(registered)
        return registered

    return register


TOO_SHORT = "too_short"


@rule(TOO_SHORT)
def too_short(doc: Features, *, min_words):
    return f"{doc.n_words} words < {min_words}" if doc.n_words < min_words else None


@rule("too_long", off=lambda config: not config.max_words)
def too_long(doc: Features, *, max_words):
    return f"{doc.n_words} words > {max_words}" if doc.n_words > max_words else None


@rule("mean_word_length")
def mean_word_length(doc: Features, *, min_mean_word_length, max_mean_word_length):
    mean = doc.chars / doc.n_words
    if mean < min_mean_word_length or mean > max_mean_word_length:
        return f"mean word length {mean:.1f} outside [{min_mean_word_length:g}, {max_mean_word_length:g}]"
    return None


@rule("symbol_ratio")
def symbol_ratio(doc: Features, *, max_symbol_word_ratio):
    text = doc.text
    symbols = text.count("#") - doc.header_hashes + text.count("...") + text.count("…")
    ratio = symbols / doc.n_words
    if ratio > max_symbol_word_ratio:
        return f"{symbols} symbols per {doc.n_words} words = {ratio:.2f} > {max_symbol_word_ratio:g}"
    return None


@rule("stop_words", off=lambda config: not config.min_stop_words)
def stop_words(doc: Features, *, min_stop_words):
    # Fast lower bound first (lower-case, between spaces), exact count only when it falls short.
    found = 0
    for word in _SPACED_STOP_WORDS:
        found += doc.text.count(word)
        if found >= min_stop_words:
            return None
    found = sum(1 for word in doc.words if word.lower() in _STOP_SET)
    return f"{found} stop words < {min_stop_words}" if found < min_stop_words else None


@rule("alpha_words", off=lambda config: not config.min_alpha_word_fraction > 0)
def alpha_words(doc: Features, *, min_alpha_word_fraction):
    # Words made of letters only settle most documents without looking into the others.
    if doc.alpha_words >= min_alpha_word_fraction * doc.n_words:
        return None
    alpha = 1.0 - len(_NON_ALPHA_WORD.findall(doc.text)) / doc.n_words
    if alpha < min_alpha_word_fraction:
        return f"{alpha:.0%} of words have a letter < {min_alpha_word_fraction:.0%}"
    return None


# The line and paragraph rules pass a document without lines (other than headers).

@rule("bullet_lines")
def bullet_lines(doc: Features, *, max_bullet_line_fraction):
    lines = doc.lines
    bullets = _fraction(sum(1 for line in lines if line.startswith(BULLETS)), len(lines))
    if bullets > max_bullet_line_fraction:
        return f"{bullets:.0%} of lines are bullets > {max_bullet_line_fraction:.0%}"
    return None


@rule("ellipsis_lines")
def ellipsis_lines(doc: Features, *, max_ellipsis_line_fraction):
    ellipsis = _fraction(sum(1 for line in doc.lines if line.endswith(ELLIPSES)), len(doc.lines))
    return (f"{ellipsis:.0%} of lines end with an ellipsis > {max_ellipsis_line_fraction:.0%}"
            if ellipsis > max_ellipsis_line_fraction else None)


@rule("punctuated_lines")
def punctuated_lines(doc: Features, *, min_punctuated_line_fraction):
    lines = doc.lines
    if not lines:
        return None
    ends = Counter(line[-1] for line in lines)
    punctuated = _fraction(sum(count for end, count in ends.items() if end in TERMINAL_PUNCTUATION), len(lines))
    if punctuated < min_punctuated_line_fraction:
        return f"{punctuated:.0%} of lines end in punctuation < {min_punctuated_line_fraction:.0%}"
    return None


@rule("boilerplate_lines", off=lambda config: not config.max_boilerplate_line_fraction < 1)
def boilerplate_lines(doc: Features, *, max_boilerplate_line_fraction, boilerplate_max_line_chars,
                      boilerplate_max_link_chars):
    lines = doc.lines
    if not lines:
        return None
    boilerplate = _boilerplate_lines(doc.text, lines, boilerplate_max_line_chars, boilerplate_max_link_chars)
    if boilerplate / len(lines) > max_boilerplate_line_fraction:
        return f"{boilerplate} of {len(lines)} lines are boilerplate > {max_boilerplate_line_fraction:.0%}"
    return None


def _repeated_items(kind: str, items: list[str], duplicates: int, max_fraction: float) -> str | None:
    if duplicates and duplicates / len(items) > max_fraction:
        return f"{duplicates} of {len(items)} {kind}s repeat an earlier one > {max_fraction:.0%}"
    return None


def _repeated_chars(kind: str, items: list[str], duplicates: int, max_char_fraction: float) -> str | None:
    if not duplicates:
        return None
    repeated = sum(len(item) * (count - 1) for item, count in Counter(items).items() if count > 1)
    share = _fraction(repeated, sum(map(len, items)))
    if share > max_char_fraction:
        return f"repeated {kind}s hold {share:.0%} of characters > {max_char_fraction:.0%}"
    return None


@rule("duplicate_lines")
def duplicate_lines(doc: Features, *, max_duplicate_line_fraction):
    return _repeated_items("line", doc.lines, doc.duplicate_lines, max_duplicate_line_fraction)


@rule("duplicate_line_chars")
def duplicate_line_chars(doc: Features, *, max_duplicate_line_char_fraction):
    return _repeated_chars("line", doc.lines, doc.duplicate_lines, max_duplicate_line_char_fraction)


@rule("duplicate_paragraphs")
def duplicate_paragraphs(doc: Features, *, max_duplicate_paragraph_fraction):
    if not doc.lines:
        return None
    return _repeated_items("paragraph", doc.paragraphs, doc.duplicate_paragraphs, max_duplicate_paragraph_fraction)


@rule("duplicate_paragraph_chars")
def duplicate_paragraph_chars(doc: Features, *, max_duplicate_paragraph_char_fraction):
    if not doc.lines:
        return None
    return _repeated_chars("paragraph", doc.paragraphs, doc.duplicate_paragraphs,
                           max_duplicate_paragraph_char_fraction)


@rule("top_ngram", off=lambda config: not config.top_ngram_limits)
def top_ngram(doc: Features, *, top_ngram_limits):
    if doc.n_words < ARRAY_MIN_WORDS:
        return _top_ngram_tuples(doc, top_ngram_limits)
    size = doc.n_words
    top_pair = 0  # count of the most frequent 2-gram, once known
    for n, limit in top_ngram_limits:
        if size <= n:
            continue
        chars, prefix = doc.chars, doc.prefix
        if top_pair and n > 2:
            # Skip the count when it cannot matter: the most frequent n-gram occurs at most as often as
            # the most frequent 2-gram (its own first two words occur wherever it does), and holds at
            # most as many characters as the longest run of n words.
            longest = int((prefix[n:] - prefix[:-n]).max())
            if top_pair * longest <= limit * chars:
                continue
        keys, _ = _gram_keys(doc.word_ids, len(doc.distinct_words), n)
        ordered = np.sort(keys)
        _, starts, counts = _runs(ordered)
        top = int(counts.max())
        if n == 2:
            top_pair = top
        if top < 2:
            continue
        # The most frequent n-gram; of several as frequent, the one that occurs first.
        tied = ordered[starts[counts == top]]
        first = int(np.argmax(keys == tied[0]) if len(tied) == 1 else np.argmax(np.isin(keys, tied)))
        share = top * int(prefix[first + n] - prefix[first]) / chars
        if share > limit:
            gram = doc.words[first:first + n]
            return f"{n}-gram {' '.join(gram)!r} x{top} covers {share:.0%} of characters > {limit:.0%}"
    return None


@rule("duplicate_ngrams", off=lambda config: not config.duplicate_ngram_limits)
def duplicate_ngrams(doc: Features, *, duplicate_ngram_limits):
    # Smallest n first. An n-gram can only repeat where its shorter prefix repeats, so each larger
    # n looks only at the positions whose previous-size n-gram occurs more than once.
    if doc.n_words < ARRAY_MIN_WORDS:
        return _duplicate_ngrams_tuples(doc, duplicate_ngram_limits)
    size = doc.n_words
    previous = 0
    # From one size to the next: the positions still in play, their n-grams' groups and the groups' bound.
    positions = groups = np.empty(0, dtype=np.int64)
    bound = 0
    for n, limit in duplicate_ngram_limits:
        if size < n + 1:
            return None
        if previous == 0:
            keys, bound = _gram_keys(doc.word_ids, len(doc.distinct_words), n)
            positions = np.arange(len(keys))
        else:
            fits = positions + n <= size
            positions = positions[fits]
            keys, bound = _extend_keys(groups[fits], bound, doc.word_ids, len(doc.distinct_words),
                                       positions + previous, n - previous)
        previous = n
        if not len(keys):
            return None
        groups, sizes, firsts = _groups(keys)
        if len(sizes) == len(keys):
            return None  # nothing repeats at this size, so nothing larger does either
        later = np.ones(len(keys), dtype=bool)
        later[firsts] = False
        repeated = positions[later]  # occurrences repeating an earlier one, in order
        # Characters of the words they cover: each occurrence adds its words up to the next one's start.
        ends = repeated + n
        np.minimum(ends[:-1], repeated[1:], out=ends[:-1])
        covered = int((doc.prefix[ends] - doc.prefix[repeated]).sum())
        share = covered / doc.chars
        if share > limit:
            return f"repeated {n}-grams cover {share:.0%} of characters > {limit:.0%}"
        involved = sizes[groups] > 1  # the occurrences of n-grams that occur more than once
        positions, groups, bound = positions[involved], groups[involved], len(sizes)
    return None


# The same two rules for short documents, over tuples of words: below ARRAY_MIN_WORDS words, numpy's cost
# per call is more than these loops' (tests/filters/test_quality_reference.py holds both to one reference).

def _top_ngram_tuples(doc: Features, top_ngram_limits) -> str | None:
    words, chars, prefix = doc.words, doc.chars, doc.prefix_list
    size = len(words)
    top_pair = 0
    for n, limit in top_ngram_limits:
        if size <= n:
            continue
        if top_pair and n > 2:
            longest = max(map(operator.sub, prefix[n:], prefix[:-n]))
            if top_pair * longest <= limit * chars:
                continue
        ((gram, top),) = Counter(zip(*(words[i:] for i in range(n)))).most_common(1)  # of ties, the first
        if n == 2:
            top_pair = top
        if top < 2:
            continue
        share = top * sum(map(len, gram)) / chars
        if share > limit:
            return f"{n}-gram {' '.join(gram)!r} x{top} covers {share:.0%} of characters > {limit:.0%}"
    return None


def _duplicate_ngrams_tuples(doc: Features, duplicate_ngram_limits) -> str | None:
    words = doc.words
    size = len(words)
    candidates: Sequence[int] = range(size)
    previous = 0
    for n, limit in duplicate_ngram_limits:
        if size < n + 1:
            return None
        if previous == 0:
            grams = list(zip(*(words[i:] for i in range(n))))
        else:
            candidates = [p for p in candidates if p + n <= size]
            grams = [tuple(words[p:p + n]) for p in candidates]
        previous = n
        repeated, candidates = repeated_positions(grams, candidates)
        if not repeated:
            return None
        covered, end = 0, 0  # characters of the words the repeated occurrences cover, each word once
        prefix = doc.prefix_list
        for start in repeated:
            stop = start + n
            if stop > end:
                covered += prefix[stop] - prefix[start if start > end else end]
                end = stop
        share = covered / doc.chars
        if share > limit:
            return f"repeated {n}-grams cover {share:.0%} of characters > {limit:.0%}"
    return None


def repeated_positions(grams: list[tuple], positions: Sequence[int]) -> tuple[list[int], list[int]]:
    """For n-grams `grams` at `positions`: the positions (sorted) of occurrences that repeat an earlier
    occurrence, and the positions of every occurrence of an n-gram that occurs more than once."""
    count = len(grams)
    earliest = dict(zip(reversed(grams), range(count - 1, -1, -1)))  # n-gram -> index of its first occurrence
    if len(earliest) == count:
        return [], []
    firsts = set(earliest.values())
    repeated = sorted(set(range(count)).difference(firsts))
    involved = sorted({earliest[grams[k]] for k in repeated}.union(repeated))
    return [positions[k] for k in repeated], [positions[k] for k in involved]


class QualityRules:
    """The rules bound to their thresholds, ready to check many documents."""

    def __init__(self, config: FilterConfig | None = None, rules: Sequence[Rule] = RULES):
        self.config = config if config is not None else FilterConfig()
        bound = ((rule.name, rule.bind(self.config)) for rule in rules)
        self.checks = tuple((name, check) for name, check in bound if check is not None)  # rules that are on

    def check(self, text: str) -> tuple[str, str] | None:
        """The first rule `text` fails, as (rule name, detail), or None when it passes every rule."""
        doc = Features(text)
        for name, check in self.checks:
            detail = check(doc)
            if detail is not None:
                return name, detail
        return None
