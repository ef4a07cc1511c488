from collections import Counter

import pytest

from gap_replay.core.ledger import LedgerError, StageLedger, format_summary


def test_invariant_and_round_trip(tmp_path):
    ledger = StageLedger("filter", documents_in=10, kept=7, dropped=Counter(non_english=2, too_short=1)).check()
    ledger.write(str(tmp_path))
    again = StageLedger.read(str(tmp_path))
    assert again.to_dict() == {"stage": "filter", "in": 10, "kept": 7, "dropped": {"non_english": 2, "too_short": 1}}


def test_lost_documents_are_an_error():
    with pytest.raises(LedgerError, match="10 documents in but 7 kept \\+ 2 dropped"):
        StageLedger("filter", documents_in=10, kept=7, dropped=Counter(non_english=2)).check()


def test_summary_lists_reasons_by_count():
    text = format_summary([StageLedger("dedup", 5, 2, Counter(exact_duplicate=1, duplicate_id=2), 1.5)], 3.0)
    lines = text.splitlines()
    assert lines[1].split()[:4] == ["dedup", "5", "2", "3"]
    assert lines[2].split() == ["2", "duplicate_id"] and lines[3].split() == ["1", "exact_duplicate"]
    assert lines[-1] == "total time 3.0s"


def test_summary_says_what_a_stage_redacted():
    details = {"redaction": {"kinds": ["email", "phone"], "by_source": {
        "guidelines": {"documents": 8, "redacted_documents": 1, "email": 3, "phone": 3, "ip": 0},
        "pubmed_abstracts": {"documents": 23, "redacted_documents": 1, "email": 1, "phone": 0, "ip": 0}}}}
    ledger = StageLedger("filter", 31, 31, details=details)
    lines = format_summary([ledger, StageLedger("dedup", 31, 31)]).splitlines()
    assert lines[2].split() == ["redacted:", "email", "4,", "phone", "3"]
    assert len(lines) == 4  # nothing for a stage without redaction
    assert StageLedger.from_dict(ledger.to_dict()).details == details
