"""fastText language identification (lid.176) for documents.

Long documents are judged on a bounded prefix: the text is normalised (markup and markers removed,
whitespace collapsed) and the first PREFIX_CHARS characters are given to fastText. For abstracts and
papers that prefix is the title and abstract, which is what decides a PubMed record's language.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PREFIX_CHARS = 4000
LABEL_PREFIX = "__label__"
MODEL_ENV = "GAP_REPLAY_LID_MODEL"
MODEL_NAME = "lid.176.ftz"

_MARKERS = re.compile(r"\[/?(?:BIB_REF|FIG_REF|FIG|TABLE|FORMULA)\]")
_MARKDOWN = re.compile(r"(?m)^\s*(?:#+|-)\s+")
_SPACE = re.compile(r"\s+")


class ModelNotFoundError(FileNotFoundError):
    """No language-ID model where the configuration, the environment or the cache point."""


def cache_dir() -> Path:
    root = os.environ.get("GAP_REPLAY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "gap-replay")
    return Path(root) / "models"


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
    """Text as fastText expects it: one line, no Markdown headers or corpus markers."""
    text = _MARKERS.sub(" ", text[: PREFIX_CHARS * 2])
    text = _MARKDOWN.sub("", text)
    return _SPACE.sub(" ", text).strip()[:PREFIX_CHARS]


_loaded: dict[str, object] = {}


def load_model(path: str | Path):
    """Load a fastText model once per process (Spark executors reuse Python workers)."""
    key = str(path)
    if key not in _loaded:
        import fasttext

        _loaded[key] = fasttext.load_model(key)
    return _loaded[key]


class LanguageIdentifier:
    def __init__(self, model_path: str | Path):
        self.model = load_model(model_path)

    def predict(self, texts: list[str]) -> list[tuple[str, float]]:
        """(language, probability) per text; empty text gives ('und', 0.0)."""
        prepared = [normalise_for_prediction(text or "") for text in texts]
        results: list[tuple[str, float]] = [("und", 0.0)] * len(texts)
        todo = [i for i, text in enumerate(prepared) if text]
        if todo:
            labels, scores = self.model.predict([prepared[i] for i in todo], k=1)
            for i, label, score in zip(todo, labels, scores):
                results[i] = (label[0][len(LABEL_PREFIX):], float(score[0]))
        return results
