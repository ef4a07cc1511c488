"""The filter stage's configuration: the ``[filter]`` section, defined once, with its checks.

The core (filters/core.py, quality.py, quality_model.py, job.py) reads this object; the quality
rules read the fields they name (see :mod:`filters.quality`). Errors are
:class:`gap_replay.core.errors.ConfigError` naming the key, so the command line reports them as bad
configuration (exit status 2) before Spark starts. This module imports only foundation modules.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gap_replay.core.errors import ConfigError

_FRACTIONS = (
    "min_alpha_word_fraction", "max_bullet_line_fraction", "max_ellipsis_line_fraction",
    "min_punctuated_line_fraction", "max_boilerplate_line_fraction", "max_duplicate_line_fraction",
    "max_duplicate_line_char_fraction", "max_duplicate_paragraph_fraction", "max_duplicate_paragraph_char_fraction",
    "min_language_score", "min_quality_score", "quality_validation_fraction",
)
_NON_NEGATIVE = ("min_words", "max_words", "min_mean_word_length", "max_mean_word_length", "max_symbol_word_ratio",
                 "min_stop_words", "boilerplate_max_line_chars",
                 "boilerplate_max_link_chars", "quality_max_documents")


@dataclass
class FilterConfig:
    # The filter stage (filters/): language ID, heuristic quality rules, optional model-based quality score.
    # Every rule drops with its own reason (the name before the colon below); filters/quality.py has the details.
    # Checked first: too_short; then non_english; then the rules in the order listed; then low_quality_score.
    #
    # Language (filters/langid.py): documents up to lid_windows * lid_window_chars characters are judged
    # whole; longer ones by a length-weighted vote of lid_windows slices spread through the text.
    lid_model: str = ""  # path of lid.176.ftz / .bin; empty = $GAP_REPLAY_LID_MODEL or the model cache
    languages: list[str] = field(default_factory=lambda: ["en"])
    min_language_score: float = 0.65  # non_english: top language not in `languages`, or its score below this
    lid_windows: int = 4
    lid_window_chars: int = 1000
    # Heuristic rules (Gopher / C4 style). Words are whitespace-separated tokens of the text without our
    # citation, figure-reference and formula markers; a fraction rule is off at 0 (min_) or 1 (max_).
    min_words: int = 20  # too_short: fewer words
    max_words: int = 0  # too_long: more words; 0 = no upper bound (Gopher: 100,000; full guidelines can exceed it)
    min_mean_word_length: float = 3.0  # mean_word_length: mean characters per word outside [min, max]
    max_mean_word_length: float = 10.0
    max_symbol_word_ratio: float = 0.1  # symbol_ratio: ('#' outside headers + '...'/'…') per word
    min_stop_words: int = 2  # stop_words: occurrences of the, be, to, of, and, that, have, with
    # alpha_words: share of words with a letter. Gopher: 0.8; statistics-heavy abstracts (± and P values)
    # come down to 0.82 in the real PubMed files, hence the lower default.
    min_alpha_word_fraction: float = 0.6
    max_bullet_line_fraction: float = 0.9  # bullet_lines: share of lines starting with a bullet
    max_ellipsis_line_fraction: float = 0.3  # ellipsis_lines: share of lines ending with an ellipsis
    min_punctuated_line_fraction: float = 0.3  # punctuated_lines: share of lines (headers aside) ending in punctuation
    # boilerplate_lines: share of lines that are cookie/JavaScript notices (lines of at most
    # boilerplate_max_line_chars characters), navigation or footer links such as "Terms of use", "Skip to
    # content", "Sign in" (lines of at most boilerplate_max_link_chars), or lorem ipsum (any line)
    max_boilerplate_line_fraction: float = 0.2
    boilerplate_max_line_chars: int = 300
    boilerplate_max_link_chars: int = 80
    max_duplicate_line_fraction: float = 0.3  # duplicate_lines: share of lines repeating an earlier line
    max_duplicate_line_char_fraction: float = 0.2  # duplicate_line_chars: the same in characters
    max_duplicate_paragraph_fraction: float = 0.3  # duplicate_paragraphs
    max_duplicate_paragraph_char_fraction: float = 0.2  # duplicate_paragraph_chars
    # top_ngram: character share of the most frequent word n-gram, by n. Gopher: 0.20/0.18/0.16; abstracts
    # restate their title and key phrases (up to 0.24 in the real PubMed files), hence higher defaults.
    max_top_ngram_char_fraction: dict[str, float] = field(
        default_factory=lambda: {"2": 0.30, "3": 0.28, "4": 0.26})
    # duplicate_ngrams: character share of words covered by repeated word n-grams, by n. Gopher: 0.15 ... 0.10;
    # real abstracts reach 0.20 (5-grams) and 0.16 (10-grams), hence higher defaults.
    max_duplicate_ngram_char_fraction: dict[str, float] = field(
        default_factory=lambda: {"5": 0.25, "6": 0.24, "7": 0.23, "8": 0.22, "9": 0.21, "10": 0.20})
    # Model-based quality (`gap-replay quality train` makes the model). With a model, every kept document gets
    # quality_score = probability of the positive label; low_quality_score drops those below min_quality_score.
    quality_model: str = ""  # path of the fastText classifier; empty = no quality_score
    min_quality_score: float = 0.0  # 0 = score only, never drop
    # Training sets: documents of the positive inputs whose source is in quality_positive_sources (empty = all),
    # papers among them only with upsampling_score >= quality_positive_min_upsampling; documents of the
    # negative inputs whose source is in quality_negative_sources (empty = all).
    quality_positive_sources: list[str] = field(default_factory=lambda: ["guidelines", "pubmed_papers"])
    quality_positive_min_upsampling: float = 1.0
    quality_negative_sources: list[str] = field(default_factory=lambda: ["replay"])
    quality_validation_fraction: float = 0.1  # held-out share (by a seeded hash of the id) for precision/recall
    quality_max_documents: int = 0  # per class, 0 = all; the kept ones are chosen by the same seeded hash
    quality_seed: int = 42
    quality_epochs: int = 10  # fastText train_supervised: epoch, lr, wordNgrams, dim
    quality_lr: float = 0.5
    quality_word_ngrams: int = 2
    quality_dim: int = 64
    quality_buckets: int = 200_000  # hashed word n-grams; the model takes about (words + buckets) * dim * 4 bytes
    quality_threads: int = 1  # 1 = reproducible model; more train faster, not byte-identically
    # Personal data (gap_replay/core/redaction.py): in every kept document, each kind that is on is replaced
    # by a fixed placeholder (email@example.com, +1 202 555 0100, 192.0.2.1 or 2001:db8::1), counted in the
    # document's extra.redacted, the stage ledger's details.redaction and the dataset card.
    redact_emails: bool = True  # e-mail addresses
    redact_phones: bool = True  # phone numbers: international (+41 ...), North American, or after Tel/Phone/Fax...
    redact_ips: bool = True  # IPv4 and IPv6 addresses (not section or version numbers)

    def ngram_thresholds(self, key: str) -> tuple[tuple[int, float], ...]:
        """The table `key` (n-gram size -> limit) as sorted (n, limit) pairs; ConfigError on a bad entry."""
        thresholds = []
        for n, limit in getattr(self, key).items():
            try:
                size = int(n)
            except ValueError:
                size = 0
            if size < 1 or size > 50:
                raise ConfigError(f"filter.{key}: keys are n-gram sizes from 1 to 50, got {n!r}")
            if not 0 <= limit <= 1:
                raise ConfigError(f"filter.{key}.{n}: must be between 0 and 1, got {limit}")
            thresholds.append((size, float(limit)))
        return tuple(sorted(thresholds))

    # Sorted views of the n-gram tables, for the rules that read them.
    @property
    def top_ngram_limits(self) -> tuple[tuple[int, float], ...]:
        return self.ngram_thresholds("max_top_ngram_char_fraction")

    @property
    def duplicate_ngram_limits(self) -> tuple[tuple[int, float], ...]:
        return self.ngram_thresholds("max_duplicate_ngram_char_fraction")


    def validate(self) -> None:
        """ConfigError naming the first `filter.<key>` that is out of range."""
        for key in _FRACTIONS:
            value = getattr(self, key)
            if not 0 <= value <= 1:
                raise ConfigError(f"filter.{key}: must be between 0 and 1, got {value}")
        for key in _NON_NEGATIVE:
            if getattr(self, key) < 0:
                raise ConfigError(f"filter.{key}: must not be negative, got {getattr(self, key)}")
        if self.max_words and self.max_words < self.min_words:
            raise ConfigError(f"filter.max_words ({self.max_words}) is below filter.min_words ({self.min_words})")
        if self.min_mean_word_length > self.max_mean_word_length:
            raise ConfigError("filter.min_mean_word_length must not exceed filter.max_mean_word_length")
        if not self.languages:
            raise ConfigError("filter.languages: list at least one language code (e.g. [\"en\"])")
        if self.lid_windows < 1 or self.lid_window_chars < 50:
            raise ConfigError("filter.lid_windows must be at least 1 and filter.lid_window_chars at least 50")
        if self.min_quality_score > 0 and not self.quality_model:
            raise ConfigError("filter.min_quality_score needs filter.quality_model "
                              "(train one with `gap-replay quality train`)")
        if self.quality_epochs < 1 or self.quality_lr <= 0 or self.quality_word_ngrams < 1 or self.quality_dim < 1 \
                or self.quality_threads < 1 or self.quality_buckets < 0:
            raise ConfigError("filter.quality_epochs, quality_lr, quality_word_ngrams, quality_dim and "
                              "quality_threads must be positive, quality_buckets not negative")
        for key in ("max_top_ngram_char_fraction", "max_duplicate_ngram_char_fraction"):
            self.ngram_thresholds(key)
