"""Heuristic quality rules in the style of Gopher (Rae et al., 2021, appendix A) and C4 (Raffel et al., 2020).

Every rule has a name, which is the drop reason recorded in the ledger, and thresholds from
configuration (``[filter]``, see :class:`QualitySettings`). :meth:`QualityRules.check` returns the
first rule a document fails as ``(name, detail)``, or None when it passes them all. The rules, in
the order they are checked:

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
"""

from __future__ import annotations

import operator
import re
from collections import Counter
from dataclasses import dataclass
from collections.abc import Sequence
from itertools import accumulate

# Reference-like markers are dropped with their content; caption tags are dropped, captions kept.
_MARKER_SPAN = re.compile(r"\[(BIB_REF|FIG_REF|FORMULA)\][^\[]*(?:\[(?!/\1\])[^\[]*)*\[/\1\]")
_CAPTION_TAGS = ("[FIG]", "[/FIG]", "[TABLE]", "[/TABLE]")

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


@dataclass(frozen=True)
class QualitySettings:
    """Thresholds of the quality rules (the [filter] configuration section documents each)."""

    min_words: int = 20
    max_words: int = 0
    min_mean_word_length: float = 3.0
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1
    min_stop_words: int = 2
    min_alpha_word_fraction: float = 0.6
    max_bullet_line_fraction: float = 0.9
    max_ellipsis_line_fraction: float = 0.3
    min_punctuated_line_fraction: float = 0.3
    max_boilerplate_line_fraction: float = 0.2
    boilerplate_max_line_chars: int = 300
    boilerplate_max_link_chars: int = 80
    max_duplicate_line_fraction: float = 0.3
    max_duplicate_line_char_fraction: float = 0.2
    max_duplicate_paragraph_fraction: float = 0.3
    max_duplicate_paragraph_char_fraction: float = 0.2
    max_top_ngram_char_fraction: tuple[tuple[int, float], ...] = ((2, 0.30), (3, 0.28), (4, 0.26))
    max_duplicate_ngram_char_fraction: tuple[tuple[int, float], ...] = (
        (5, 0.25), (6, 0.24), (7, 0.23), (8, 0.22), (9, 0.21), (10, 0.20))


RULES = (
    "too_short", "too_long", "mean_word_length", "symbol_ratio", "stop_words", "alpha_words", "bullet_lines",
    "ellipsis_lines", "punctuated_lines", "boilerplate_lines", "duplicate_lines", "duplicate_line_chars",
    "duplicate_paragraphs", "duplicate_paragraph_chars", "top_ngram", "duplicate_ngrams",
)


def prose(text: str) -> str:
    """The text the rules look at: reference, figure-reference and formula markers removed with their
    content, caption tags removed."""
    if "[/" not in text:
        return text
    text = _MARKER_SPAN.sub("", text)
    for tag in _CAPTION_TAGS:
        text = text.replace(tag, "")
    return text


def word_count(text: str) -> int:
    return len(prose(text).split())


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


def _covered_chars(starts: list[int], n: int, prefix: list[int]) -> int:
    """Characters of the words covered by n-grams starting at `starts` (sorted), each word counted once."""
    covered, end = 0, 0
    for start in starts:
        stop = start + n
        if stop > end:
            covered += prefix[stop] - prefix[max(start, end)]
            end = stop
    return covered


class QualityRules:
    """The rules with their thresholds, ready to check many documents."""

    def __init__(self, settings: QualitySettings = QualitySettings()):
        self.settings = settings
        self.top_ngrams = tuple(sorted(settings.max_top_ngram_char_fraction))
        self.duplicate_ngrams = tuple(sorted(settings.max_duplicate_ngram_char_fraction))

    def check(self, text: str) -> tuple[str, str] | None:
        """The first rule `text` fails, as (rule name, detail), or None when it passes every rule."""
        s = self.settings
        text = prose(text)
        words = text.split()
        n_words = len(words)
        if n_words < s.min_words:
            return "too_short", f"{n_words} words < {s.min_words}"
        if s.max_words and n_words > s.max_words:
            return "too_long", f"{n_words} words > {s.max_words}"
        chars = sum(map(len, words))
        mean = chars / n_words
        if mean < s.min_mean_word_length or mean > s.max_mean_word_length:
            return "mean_word_length", (f"mean word length {mean:.1f} outside "
                                        f"[{s.min_mean_word_length:g}, {s.max_mean_word_length:g}]")

        lines = [line for line in map(str.strip, text.split("\n")) if line]
        header_hashes = 0
        content = []
        for line in lines:
            if line[0] == "#":
                title = line.lstrip("#")
                level = len(line) - len(title)
                if level <= 6 and title[:1] == " ":  # a Markdown header, not "#hashtag" text
                    header_hashes += level
                    continue
            content.append(line)
        symbols = text.count("#") - header_hashes + text.count("...") + text.count("…")
        ratio = symbols / n_words
        if ratio > s.max_symbol_word_ratio:
            return "symbol_ratio", f"{symbols} symbols per {n_words} words = {ratio:.2f} > {s.max_symbol_word_ratio:g}"

        if s.min_stop_words:
            # Fast lower bound first (lower-case, between spaces), exact count only when it falls short.
            found = 0
            for word in _SPACED_STOP_WORDS:
                found += text.count(word)
                if found >= s.min_stop_words:
                    break
            else:
                found = sum(1 for word in words if word.lower() in _STOP_SET)
                if found < s.min_stop_words:
                    return "stop_words", f"{found} stop words < {s.min_stop_words}"

        # Words made of letters only settle most documents without looking into the others.
        if s.min_alpha_word_fraction > 0 and sum(map(str.isalpha, words)) < s.min_alpha_word_fraction * n_words:
            alpha = 1.0 - len(_NON_ALPHA_WORD.findall(text)) / n_words
            if alpha < s.min_alpha_word_fraction:
                return "alpha_words", f"{alpha:.0%} of words have a letter < {s.min_alpha_word_fraction:.0%}"

        n_lines = len(content)
        if n_lines:
            bullets = _fraction(sum(1 for line in content if line.startswith(BULLETS)), n_lines)
            if bullets > s.max_bullet_line_fraction:
                return "bullet_lines", f"{bullets:.0%} of lines are bullets > {s.max_bullet_line_fraction:.0%}"
            ellipsis = _fraction(sum(1 for line in content if line.endswith(ELLIPSES)), n_lines)
            if ellipsis > s.max_ellipsis_line_fraction:
                return "ellipsis_lines", (f"{ellipsis:.0%} of lines end with an ellipsis "
                                          f"> {s.max_ellipsis_line_fraction:.0%}")
            ends = Counter(line[-1] for line in content)
            punctuated = _fraction(sum(count for end, count in ends.items() if end in TERMINAL_PUNCTUATION), n_lines)
            if punctuated < s.min_punctuated_line_fraction:
                return "punctuated_lines", (f"{punctuated:.0%} of lines end in punctuation "
                                            f"< {s.min_punctuated_line_fraction:.0%}")
            if s.max_boilerplate_line_fraction < 1:
                boilerplate = _boilerplate_lines(text, content, s.boilerplate_max_line_chars,
                                                 s.boilerplate_max_link_chars)
                if boilerplate / n_lines > s.max_boilerplate_line_fraction:
                    return "boilerplate_lines", (f"{boilerplate} of {n_lines} lines are boilerplate "
                                                 f"> {s.max_boilerplate_line_fraction:.0%}")

            failed = self._duplicates(content, "line", s.max_duplicate_line_fraction,
                                      s.max_duplicate_line_char_fraction)
            if failed:
                return failed
            paragraphs = [paragraph for paragraph in map(str.strip, text.split("\n\n"))
                          if paragraph and (paragraph[0] != "#" or not _HEADER.match(paragraph))]
            failed = self._duplicates(paragraphs, "paragraph", s.max_duplicate_paragraph_fraction,
                                      s.max_duplicate_paragraph_char_fraction)
            if failed:
                return failed

        return self._ngrams(words, chars)

    @staticmethod
    def _duplicates(items: list[str], kind: str, max_fraction: float, max_char_fraction: float):
        unique = set(items)
        if len(unique) == len(items):
            return None
        counts = Counter(items)
        duplicates = len(items) - len(unique)
        share = duplicates / len(items)
        if share > max_fraction:
            return f"duplicate_{kind}s", (f"{duplicates} of {len(items)} {kind}s repeat an earlier one "
                                          f"> {max_fraction:.0%}")
        total = sum(map(len, items))
        repeated = sum(len(item) * (count - 1) for item, count in counts.items() if count > 1)
        share = _fraction(repeated, total)
        if share > max_char_fraction:
            return f"duplicate_{kind}_chars", (f"repeated {kind}s hold {share:.0%} of characters "
                                               f"> {max_char_fraction:.0%}")
        return None

    def _ngrams(self, words: list[str], chars: int) -> tuple[str, str] | None:
        size = len(words)
        prefix = [0, *accumulate(map(len, words))]
        top_pair = 0  # count of the most frequent 2-gram, once known
        for n, limit in self.top_ngrams:
            if size <= n:
                continue
            if top_pair and n > 2:
                # Skip the count when it cannot matter: the most frequent n-gram occurs at most as often as
                # the most frequent 2-gram (its own first two words occur wherever it does), and holds at
                # most as many characters as the longest run of n words.
                longest = max(map(operator.sub, prefix[n:], prefix[:-n]))
                if top_pair * longest <= limit * chars:
                    continue
            ((gram, top),) = Counter(zip(*(words[i:] for i in range(n)))).most_common(1)
            if n == 2:
                top_pair = top
            if top < 2:
                continue
            share = top * sum(map(len, gram)) / chars
            if share > limit:
                return "top_ngram", (f"{n}-gram {' '.join(gram)!r} x{top} covers {share:.0%} of characters "
                                     f"> {limit:.0%}")
        if self.duplicate_ngrams:
            return self._duplicate_ngrams(words, chars, prefix)
        return None

    def _duplicate_ngrams(self, words: list[str], chars: int, prefix: list[int]) -> tuple[str, str] | None:
        # Smallest n first. An n-gram can only repeat where its shorter prefix repeats, so each larger
        # n looks only at the positions whose previous-size n-gram occurs more than once.
        size = len(words)
        candidates: Sequence[int] = range(size)
        previous = 0
        for n, limit in self.duplicate_ngrams:
            if size < n + 1:
                return None
            if previous == 0:
                grams = list(zip(*(words[i:] for i in range(n))))
            else:
                candidates = [p for p in candidates if p + n <= size]
                grams = [tuple(words[p:p + n]) for p in candidates]
            previous = n
            repeated, candidates = _repeats(grams, candidates)
            if not repeated:
                return None  # nothing repeats at this size, so nothing larger does either
            share = _covered_chars(repeated, n, prefix) / chars
            if share > limit:
                return "duplicate_ngrams", f"repeated {n}-grams cover {share:.0%} of characters > {limit:.0%}"
        return None


def _repeats(grams: list[tuple], positions: Sequence[int]) -> tuple[list[int], list[int]]:
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


def too_short(text: str, min_words: int) -> str | None:
    words = word_count(text)
    return f"{words} words < {min_words}" if words < min_words else None
