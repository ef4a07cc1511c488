"""[filter] configuration (gap_replay.config.FilterConfig) to the core's settings, validated.

Errors are :class:`gap_replay.config.ConfigError` naming the key, so the command line reports them
as bad configuration (exit status 2) before Spark starts.
"""

from __future__ import annotations

from filters.core import FilterSettings
from filters.quality import QualitySettings
from gap_replay.config import ConfigError

_FRACTIONS = (
    "min_alpha_word_fraction", "max_bullet_line_fraction", "max_ellipsis_line_fraction",
    "min_punctuated_line_fraction", "max_boilerplate_line_fraction", "max_duplicate_line_fraction",
    "max_duplicate_line_char_fraction", "max_duplicate_paragraph_fraction", "max_duplicate_paragraph_char_fraction",
    "min_language_score", "min_quality_score", "quality_validation_fraction",
)
_NON_NEGATIVE = ("min_words", "max_words", "min_mean_word_length", "max_mean_word_length", "max_symbol_word_ratio",
                 "min_stop_words", "boilerplate_max_line_chars",
                 "boilerplate_max_link_chars", "quality_max_documents")


def _ngram_thresholds(config, key: str) -> tuple[tuple[int, float], ...]:
    thresholds = []
    for n, limit in getattr(config, key).items():
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


def validate(config) -> None:
    for key in _FRACTIONS:
        value = getattr(config, key)
        if not 0 <= value <= 1:
            raise ConfigError(f"filter.{key}: must be between 0 and 1, got {value}")
    for key in _NON_NEGATIVE:
        if getattr(config, key) < 0:
            raise ConfigError(f"filter.{key}: must not be negative, got {getattr(config, key)}")
    if config.max_words and config.max_words < config.min_words:
        raise ConfigError(f"filter.max_words ({config.max_words}) is below filter.min_words ({config.min_words})")
    if config.min_mean_word_length > config.max_mean_word_length:
        raise ConfigError("filter.min_mean_word_length must not exceed filter.max_mean_word_length")
    if not config.languages:
        raise ConfigError("filter.languages: list at least one language code (e.g. [\"en\"])")
    if config.lid_windows < 1 or config.lid_window_chars < 50:
        raise ConfigError("filter.lid_windows must be at least 1 and filter.lid_window_chars at least 50")
    if config.min_quality_score > 0 and not config.quality_model:
        raise ConfigError("filter.min_quality_score needs filter.quality_model "
                          "(train one with `gap-replay quality train`)")
    if config.quality_epochs < 1 or config.quality_lr <= 0 or config.quality_word_ngrams < 1 or config.quality_dim < 1 \
            or config.quality_threads < 1 or config.quality_buckets < 0:
        raise ConfigError("filter.quality_epochs, quality_lr, quality_word_ngrams, quality_dim and quality_threads "
                          "must be positive, quality_buckets not negative")
    _ngram_thresholds(config, "max_top_ngram_char_fraction")
    _ngram_thresholds(config, "max_duplicate_ngram_char_fraction")


def quality_settings(config) -> QualitySettings:
    return QualitySettings(
        min_words=config.min_words,
        max_words=config.max_words,
        min_mean_word_length=config.min_mean_word_length,
        max_mean_word_length=config.max_mean_word_length,
        max_symbol_word_ratio=config.max_symbol_word_ratio,
        min_stop_words=config.min_stop_words,
        min_alpha_word_fraction=config.min_alpha_word_fraction,
        max_bullet_line_fraction=config.max_bullet_line_fraction,
        max_ellipsis_line_fraction=config.max_ellipsis_line_fraction,
        min_punctuated_line_fraction=config.min_punctuated_line_fraction,
        max_boilerplate_line_fraction=config.max_boilerplate_line_fraction,
        boilerplate_max_line_chars=config.boilerplate_max_line_chars,
        boilerplate_max_link_chars=config.boilerplate_max_link_chars,
        max_duplicate_line_fraction=config.max_duplicate_line_fraction,
        max_duplicate_line_char_fraction=config.max_duplicate_line_char_fraction,
        max_duplicate_paragraph_fraction=config.max_duplicate_paragraph_fraction,
        max_duplicate_paragraph_char_fraction=config.max_duplicate_paragraph_char_fraction,
        max_top_ngram_char_fraction=_ngram_thresholds(config, "max_top_ngram_char_fraction"),
        max_duplicate_ngram_char_fraction=_ngram_thresholds(config, "max_duplicate_ngram_char_fraction"),
    )


def filter_settings(config) -> FilterSettings:
    """The core's settings from a FilterConfig; ConfigError when a value is out of range."""
    validate(config)
    return FilterSettings(
        languages=tuple(config.languages),
        min_language_score=config.min_language_score,
        quality=quality_settings(config),
        min_quality_score=config.min_quality_score,
        lid_windows=config.lid_windows,
        lid_window_chars=config.lid_window_chars,
    )
