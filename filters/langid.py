"""fastText language identification (lid.176) for documents.

**Normalisation.** fastText reads one line and splits words on whitespace, so the text it is given
is the document's text with our corpus markers (``[BIB_REF]``, ``[/FIG]``...) and Markdown header
``#`` and list ``- `` prefixes removed, and newlines turned into spaces. Case, punctuation and
runs of spaces are left alone: lid.176 was trained on raw text and its tokenizer treats a run of
spaces like one. These are a handful of ``str.replace`` calls on a bounded slice, so normalising
costs a few percent of the prediction itself (``bench/langid.py`` measures it).

**Long documents.** A document of at most ``windows * window_chars`` characters (4 x 1000 by
default: every abstract) is judged whole. A longer one is judged on ``windows`` slices of
``window_chars`` characters spread evenly through it (its start, where title and abstract are,
then one at each quarter), each predicted separately, and the windows vote, weighted by their
length: the language is the one with the largest summed probability, and its score is that sum
divided by the total weight (a window whose top language is another one adds nothing). Compared
with a prefix, this costs the same fastText work (the same number of characters) and catches what
a prefix misses: PMC holds papers with an English abstract and a body in Portuguese or Spanish,
and those come out as the body's language, or as English with a score too low to keep. Compared
with a vote over every paragraph, the work stays bounded whatever the length of the document, and
windows of 1000 characters are long enough for fastText to be confident (short paragraphs, table
captions and headers are not). On the real PMC papers in ``../shared/data`` every window is
English with probability 0.71 to 0.96.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

from gap_replay.core.markers import MARKER_TAG
from gap_replay.filters.settings import FilterConfig

LABEL_PREFIX = "__label__"
MODEL_ENV = "GAP_REPLAY_LID_MODEL"
MODEL_NAME = "lid.176.ftz"
WINDOWS = FilterConfig.lid_windows  # the configuration's defaults
WINDOW_CHARS = FilterConfig.lid_window_chars
PREFIX_CHARS = WINDOWS * WINDOW_CHARS  # documents up to this length are judged whole



class ModelNotFoundError(FileNotFoundError):
    """No language-ID model where the configuration, the environment or the cache point."""


def cache_dir() -> Path:
    from gap_replay.core.storage import cache_root

    return Path(cache_root()) / "models"


def check_model(config) -> None:
    """A build's preflight: the configured language-ID model must be there before hours of parsing."""
    resolve_model_path(config.lid_model)


def resolve_model_path(configured: str = "") -> Path:
    """The model to use: the configured path, else $GAP_REPLAY_LID_MODEL, else the model cache."""
    candidates = [configured] if configured else []
    if os.environ.get(MODEL_ENV):
        candidates.append(os.environ[MODEL_ENV])
    candidates.append(str(cache_dir() / MODEL_NAME))
    for candidate in candidates:
        path = Path(candidate).expanduser()
        if path.is_file():
            return path.resolve()
        if configured and candidate == configured:
            raise ModelNotFoundError(f"language-ID model not found at filter.lid_model = {configured}")
    raise ModelNotFoundError(
        "language-ID model lid.176 not found; run `gap-replay models download`, "
        f"or set filter.lid_model or ${MODEL_ENV} to a lid.176.ftz/.bin file"
    )


def normalise_for_prediction(text: str) -> str:
    """One line as fastText expects it: markers, Markdown header and list prefixes and newlines removed."""
    if "[" in text:
        text = MARKER_TAG.sub(" ", text)
    if "#" in text:
        text = text.replace("#", " ")
    return text.replace("\n- ", "\n").replace("\n", " ").strip()


def sample_windows(text: str, windows: int = WINDOWS, window_chars: int = WINDOW_CHARS) -> list[str]:
    """The normalised slices of `text` that are predicted (see the module's doc); [] for blank text."""
    length = len(text)
    if length <= windows * window_chars or windows <= 1:
        whole = normalise_for_prediction(text[: windows * window_chars])
        return [whole] if whole else []
    slices = []
    for k in range(windows):
        start = length * k // windows
        if start:
            space = text.find(" ", start, start + 64)  # begin on a word boundary when one is near
            start = space + 1 if space >= 0 else start
        piece = normalise_for_prediction(text[start:start + window_chars])
        if piece:
            slices.append(piece)
    return slices


# Models loaded in this process, by path. Spark reuses its Python workers across tasks
# (spark.python.worker.reuse, on by default), so an executor loads each model once, not once per
# task or per batch. LOADS counts actual loads, for tests and diagnostics.
_loaded: dict[str, object] = {}
LOADS: Counter = Counter()


def load_model(path: str | Path):
    """Load a fastText model once per process."""
    key = str(path)
    model = _loaded.get(key)
    if model is None:
        import fasttext

        fasttext.FastText.eprint = lambda *args, **kwargs: None  # no "load_model does not return" warning
        model = _loaded[key] = fasttext.load_model(key)
        LOADS[key] += 1
    return model


class LanguageIdentifier:
    def __init__(self, model_path: str | Path, windows: int = WINDOWS, window_chars: int = WINDOW_CHARS):
        self.model = load_model(model_path)
        self.windows, self.window_chars = windows, window_chars

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """(language, score) per text, as the module's doc describes; blank text gives ('und', 0.0)."""
        whole = self.windows * self.window_chars
        pieces: list[str] = []
        sizes: list[int] = []  # windows predicted per text
        for text in texts:
            if not text:
                sizes.append(0)
            elif len(text) <= whole:  # judged whole: one window (every abstract)
                piece = normalise_for_prediction(text)
                if piece:
                    pieces.append(piece + "\n")
                    sizes.append(1)
                else:
                    sizes.append(0)
            else:
                windows = sample_windows(text, self.windows, self.window_chars)
                pieces += [window + "\n" for window in windows]
                sizes.append(len(windows))
        if not pieces:
            return [("und", 0.0)] * len(texts)
        # One call for the whole batch; the pieces are single lines already, as fastText's own
        # predict() would make them (it refuses newlines and appends one).
        labels, probabilities = self.model.f.multilinePredict(pieces, 1, 0.0, "strict")
        skip = len(LABEL_PREFIX)
        results: list[tuple[str, float]] = []
        at = 0
        for size in sizes:
            if size == 1:
                results.append((labels[at][0][skip:], float(probabilities[at][0])))
            elif size == 0:
                results.append(("und", 0.0))
            else:
                votes: dict[str, float] = {}
                total = 0.0
                for k in range(at, at + size):
                    weight = len(pieces[k]) - 1
                    language = labels[k][0][skip:]
                    votes[language] = votes.get(language, 0.0) + weight * float(probabilities[k][0])
                    total += weight
                language, weighted = max(votes.items(), key=lambda item: item[1])
                results.append((language, weighted / total))
            at += size
        return results
