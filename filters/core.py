"""The filter stage's pure core: language and quality decisions over a batch of documents."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from gap_replay.outcome import Drop, Outcome
from filters.langid import LanguageIdentifier
from filters.quality import too_short


@dataclass(frozen=True)
class FilterSettings:
    languages: tuple[str, ...] = ("en",)
    min_language_score: float = 0.65
    min_words: int = 20


def filter_documents(documents: Iterable[dict], identifier: LanguageIdentifier,
                     settings: FilterSettings) -> Iterator[Outcome]:
    """Annotate each document with its language, then keep it or drop it with the failing rule's name.

    Length is checked first: language identification is unreliable on a few words, so a very
    short document is reported as too short rather than as whatever language it seemed to be.
    """
    documents = list(documents)
    predictions = identifier.predict([document["text"] for document in documents])
    for document, (language, score) in zip(documents, predictions):
        document = {**document, "language": language, "language_score": score}
        detail = too_short(document["text"], settings.min_words)
        if detail:
            yield Drop(document["id"], "too_short", detail, document["source"])
        elif language not in settings.languages or score < settings.min_language_score:
            yield Drop(document["id"], "non_english", f"{language} {score:.2f}", document["source"])
        else:
            yield document
