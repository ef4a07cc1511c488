"""Documents per second of personal data redaction (gap_replay.core.redaction) against a maintained library,
and what it adds to the filter stage's core. Prints one JSON line.

Texts: the real abstracts and PMC papers of ../shared/data, parsed with our parsers and replicated as
``bench/langid.py`` does (``--abstract-copies``, ``--paper-copies``), plus, for recall, a guideline
development group's member list of 12 people (e-mail addresses and phone numbers in 12 national styles,
from tests/gap_replay/test_redaction.py).

- ``ours``: :meth:`Redactor.redact` over every text (all three kinds; each pattern runs only on texts that
  pass its cheap gate), and phones alone.
- ``library``: Google's libphonenumber as the ``phonenumbers`` package (``PhoneNumberMatcher`` over each
  text, region ``--region``, leniency VALID, each match replaced by our placeholder): the maintained
  library for finding phone numbers in text. Not a dependency: install it to measure it
  (``pip install phonenumbers``); without it this part says so.
- ``ungated``: our patterns with no gate (every regex over every text), to show what the gates save.
- ``stage_core``: :func:`filters.core.filter_batch` (rules, language ID, outcome batch) over batches of 1,024
  documents with redaction on (the default) and with the three kinds off, interleaved in the same process;
  overhead = on / off - 1, the target at most 10%.

Each timing is the CPU time of this process (``time.process_time``), the best of ``--repeat`` runs.

    python bench/redaction.py [--abstract-copies 4] [--paper-copies 20] [--repeat 3] [--region US]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from langid import BATCH, SHARED, best_of, real_documents  # noqa: E402  (bench/langid.py, beside this file)

from gap_replay.core import redaction  # noqa: E402
from gap_replay.core.redaction import PHONE_PLACEHOLDER, Redactor  # noqa: E402
from gap_replay.core.schema import documents_to_batch  # noqa: E402
from gap_replay.filters.core import DocumentFilter, filter_batch  # noqa: E402
from gap_replay.filters.langid import LanguageIdentifier  # noqa: E402
from gap_replay.filters.settings import FilterConfig  # noqa: E402
from tests.gap_replay.test_redaction import MEMBERS, member_list  # noqa: E402

TARGET_OVERHEAD = 0.10


def ungated(text: str) -> tuple[str, dict]:
    """Our patterns and checks, every regex run over the whole text (no gate)."""
    counts: dict[str, int] = {}
    text = redaction._replace(redaction._EMAIL, text, counts, "email", redaction._email)
    text = redaction._replace(redaction._IPV4, text, counts, "ip", redaction._ipv4)
    text = redaction._replace(redaction._IPV6, text, counts, "ip", redaction._ipv6)
    text = redaction._replace(redaction._INTERNATIONAL, text, counts, "phone", redaction._international)
    text = redaction._replace(redaction._NORTH_AMERICAN, text, counts, "phone", redaction._north_american)
    for pattern in redaction._AFTER_LABEL:
        text = redaction._replace(pattern, text, counts, "phone", redaction._labelled)
    return text, counts


def library_phones(region: str):
    """A function replacing the phone numbers libphonenumber finds, or None when it is not installed."""
    try:
        import phonenumbers
    except ImportError:
        return None, None

    def redact(text: str) -> tuple[str, int]:
        spans = [(match.start, match.end) for match in
                 phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID)]
        for start, end in reversed(spans):
            text = text[:start] + PHONE_PLACEHOLDER + text[end:]
        return text, len(spans)

    return redact, phonenumbers.__version__


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--abstract-copies", type=int, default=4)
    parser.add_argument("--paper-copies", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--region", default="US", help="libphonenumber's default region for national numbers")
    args = parser.parse_args()

    documents, abstracts, papers = real_documents(args.abstract_copies, args.paper_copies)
    texts = [document["text"] for document in documents]
    count, chars = len(texts), sum(map(len, texts))
    ours, phones_only = Redactor(), Redactor(emails=False, ips=False)
    library, library_version = library_phones(args.region)

    runs = [("ours", lambda: [ours.redact(text) for text in texts]),
            ("ours_phones", lambda: [phones_only.redact(text) for text in texts]),
            ("ungated", lambda: [ungated(text) for text in texts])]
    if library is not None:
        runs.append(("library_phones", lambda: [library(text) for text in texts]))
    times = best_of(runs, args.repeat)

    def rate(seconds: float) -> float:
        return round(count / seconds, 1)

    found = {"ours": sum(sum(ours.redact(text)[1].values()) for text in texts)}
    members = member_list()
    recall = {"ours_phones": ours.redact(members)[1].get("phone", 0)}
    if library is not None:
        found["library_phones"] = sum(library(text)[1] for text in texts)
        recall["library_phones"] = library(members)[1]

    model_path = os.environ.get("GAP_REPLAY_LID_MODEL") or str(SHARED / "models" / "lid.176.ftz")
    identifier = LanguageIdentifier(model_path)
    batches = [documents_to_batch(documents[i:i + BATCH]) for i in range(0, len(documents), BATCH)]
    with_redaction = DocumentFilter(identifier, FilterConfig())
    without = DocumentFilter(identifier, FilterConfig(redact_emails=False, redact_phones=False, redact_ips=False))
    core = best_of([("on", lambda: [filter_batch(batch, with_redaction) for batch in batches]),
                    ("off", lambda: [filter_batch(batch, without) for batch in batches])], args.repeat)
    overhead = core["on"] / core["off"] - 1

    result = {
        "bench": "redaction", "documents": count, "abstracts": abstracts, "papers": papers,
        "mean_chars": round(chars / count),
        "ours_docs_per_s": rate(times["ours"]), "ours_mb_per_s": round(chars / times["ours"] / 1e6, 1),
        "ours_phones_docs_per_s": rate(times["ours_phones"]),
        "ungated_docs_per_s": rate(times["ungated"]),
        "library": f"phonenumbers {library_version} (PhoneNumberMatcher, region {args.region}, VALID)"
        if library is not None else "phonenumbers not installed: pip install phonenumbers",
        "library_phones_docs_per_s": rate(times["library_phones"]) if library is not None else None,
        "ours_phones_vs_library": round(times["library_phones"] / times["ours_phones"], 1)
        if library is not None else None,
        "replaced_in_real_texts": found,
        "member_list_phones_found": {**recall, "planted": len(MEMBERS) + 2},
        "stage_core": {"redaction_on_docs_per_s": rate(core["on"]), "redaction_off_docs_per_s": rate(core["off"]),
                       "overhead": round(overhead, 4), "within_target": overhead <= TARGET_OVERHEAD},
        "target_overhead": TARGET_OVERHEAD, "repeat": args.repeat, "cpus": os.cpu_count(),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
