"""The corpus markers: the one definition of the in-text markers of the MEDITRON paper's PMC text.

A paper's text carries its citations, figure references, figure and table captions and formulas
between markers, ``[BIB_REF]title, author[/BIB_REF]``. The pubmed stage writes them, the filters
leave them out of the prose they judge, the tokenizer and the trainer treat each as one special
token, and the help and the dataset card name them, all from this module.
"""

from __future__ import annotations

import re

BIB_REF, FIG_REF, FIG, TABLE, FORMULA = "BIB_REF", "FIG_REF", "FIG", "TABLE", "FORMULA"
KINDS = (BIB_REF, FIG_REF, FIG, TABLE, FORMULA)
# References and formulas are removed with their content where prose is judged; captions are prose.
REFERENCE_KINDS = (BIB_REF, FIG_REF, FORMULA)
CAPTION_KINDS = (FIG, TABLE)

END_OF_DOCUMENT = "</s>"


def opening(kind: str) -> str:
    return f"[{kind}]"


def closing(kind: str) -> str:
    return f"[/{kind}]"


def wrap(kind: str, content: str) -> str:
    return f"{opening(kind)}{content}{closing(kind)}"


# Every marker token, each opening tag followed by its closing one.
MARKER_TOKENS = tuple(tag for kind in KINDS for tag in (opening(kind), closing(kind)))
CAPTION_TAGS = tuple(tag for kind in CAPTION_KINDS for tag in (opening(kind), closing(kind)))
# Any marker tag, opening or closing.
MARKER_TAG = re.compile(r"\[/?(?:%s)\]" % "|".join(KINDS))
# A reference or formula span with its content (nested other markers allowed inside).
REFERENCE_SPAN = re.compile(r"\[(%s)\][^\[]*(?:\[(?!/\1\])[^\[]*)*\[/\1\]" % "|".join(REFERENCE_KINDS))


def listing(tags=MARKER_TOKENS, separator: str = ", ") -> str:
    """The markers as text for help and cards: ``[BIB_REF], [/BIB_REF], ...``."""
    return separator.join(tags)
