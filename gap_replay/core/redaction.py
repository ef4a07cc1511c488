"""Personal data redaction: e-mail addresses, phone numbers and IP addresses replaced by fixed placeholders.

A foundation module, so that every stage that writes documents can call it. The filter stage runs it on
every document it keeps (guidelines, PubMed abstracts, PMC papers), after its checks and before dedup, so
the text the rules judged is the text the corpus holds less the replaced spans; :func:`redact_documents`
(on a parser's outcomes) and :func:`redact_partition` (on Arrow batches) are the same step for a stage
whose documents do not pass the filter (replay). Each kind has its own
setting (``filter.redact_emails``, ``redact_phones``, ``redact_ips``, all on by default). A document where
something was replaced carries the counts in its ``extra`` JSON (``"redacted": {"email": 2, "phone": 1}``,
kinds with none left out); a stage's ledger sums them by part in ``details.redaction`` (:func:`summarise`),
and the dataset card shows them.

Placeholders are fixed values from ranges reserved for documentation or fiction, so the text keeps the
shape of an address or a number (as datatrove's replacements do) and no real person or host is named:

========  ======================  =========================================================================
kind      placeholder             reserved by
========  ======================  =========================================================================
email     ``email@example.com``   RFC 2606 (example.com)
phone     ``+1 202 555 0100``     NANP: 555-0100 to 555-0199 are set aside for fictional use
ip        ``192.0.2.1``           RFC 5737 (TEST-NET-1); IPv6: ``2001:db8::1``, RFC 3849
========  ======================  =========================================================================

A placeholder already in a text is left as it is and not counted, so redacting twice changes nothing.

What is matched. Each search starts from a literal character (``@``, ``+``, ``:``, ``-``, ``.``), which
Python's regular expressions find fast; a pattern that must start with a class of characters is tried only
where such a literal was found, once. A text costs about 4 ns a character (bench/redaction.py).

- e-mail: ``local@domain.tld`` (ASCII local part and domain labels, a TLD of letters); obfuscated forms
  (``name [at] example.org``) are not.
- phone: three shapes, chosen so that the numbers of medical text (doses, dates, years, page ranges,
  citations like ``2019;12:345-67``, DOIs, PMIDs, NCT and EudraCT ids, ISBNs, lab values, counts with digit
  groups) never match:

  * international, ``+`` and a country code: ``+41 22 555 01 23``, ``+44 (0)20 7946 0321``: 8 to 15 digits
    in groups; a signed count in groups of three (``+12 345 678``) is not a phone number;
  * North American with separators: ``(202) 555-0147``, ``202-555-0147``, ``1-800-555-0199``,
    ``202.555.0147`` (area code and exchange starting with 2-9);
  * any number of 7 to 15 digits after a label ended by a colon or a dot: ``Tel``, ``Telephone``,
    ``Téléphone``, ``Phone``, ``Fax``, ``Mobile``, ``Cellphone``, ``Hotline``, ``Helpline``, ``Freephone``,
    any case, optionally with ``no``/``number`` (``Tel.: 0161 496 0742``, ``Phone no. 020 7946 0000``);
    the label stays.

  National numbers in spaced groups with no such label (``020 7946 0321``, ``Tel 0161 496 0742``) are left
  alone: in text they cannot be told from the digit groups of a flattened table, and a label without its
  colon or dot would cost a search per label in every text.
- IP: IPv4 dotted quads that :mod:`ipaddress` accepts (each number 0-255, no leading zeros), not part of a
  longer dotted number, and IPv6 addresses of at least three groups that it accepts. A dotted quad whose
  numbers are all below 100 is taken for a section, outline or version number (``1.4.2.3``,
  ``10.2.1.4 Dosing``, ``Python 3.11.4.1``) unless the 24 characters before it say address, IP, host,
  server or ``://``; one after a word such as version, release, section, chapter, table, figure, step,
  appendix or annex is never an address.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

EMAIL, PHONE, IP = "email", "phone", "ip"
KINDS = (EMAIL, PHONE, IP)
EXTRA_KEY = "redacted"

EMAIL_PLACEHOLDER = "email@example.com"
PHONE_PLACEHOLDER = "+1 202 555 0100"
IPV4_PLACEHOLDER = "192.0.2.1"
IPV6_PLACEHOLDER = "2001:db8::1"
PLACEHOLDERS = {EMAIL: EMAIL_PLACEHOLDER, PHONE: PHONE_PLACEHOLDER, IP: f"{IPV4_PLACEHOLDER} / {IPV6_PLACEHOLDER}"}

# --- e-mail -----------------------------------------------------------------------------------------
_EMAIL = re.compile(
    r"(?<![\w.%+\-])[A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}@"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w\-@]|\.[A-Za-z0-9])")

_AT = re.compile("@")
_LOCAL_PART = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-")

# --- phone ------------------------------------------------------------------------------------------
_SEP = r"[ .\-/\u00a0\u202f]"  # space, dot, hyphen, slash, no-break spaces
# A pattern that starts with a literal is searched for that literal first (fast); a lookbehind goes after it.
_INTERNATIONAL = re.compile(
    rf"\+(?<![\w+]\+)\d{{1,3}}(?:{_SEP}?\(\d{{1,4}}\)|{_SEP}?\d{{1,5}})(?:{_SEP}?\d{{1,5}}){{1,6}}(?!\d|[.\-/]\d)")
_SIGNED_COUNT = re.compile(r"\+\d{1,3}(?: \d{3})+")  # +12 345 678: a count in groups of three, not a number
# North American: searched for the hyphen or dot before the last four digits (a literal first), then whole.
_NORTH_AMERICAN_GATES = (re.compile(r"-(?<=[2-9]\d\d-)\d{4}(?!\d)"), re.compile(r"\.(?<=[2-9]\d\d\.)\d{4}(?!\d)"))
_NORTH_AMERICAN = re.compile(
    r"(?<![\w.\-/+(])(?:1[ .\-])?(?:\([2-9]\d{2}\) ?|[2-9]\d{2}[.\-])[2-9]\d{2}[.\-]\d{4}(?![\w\-/]|\.\d)")
# After a label: searched for the colon or dot that ends the label ("Tel:", "Tel.", "Phone no."), then the
# label is looked for before it. The label is kept, the number replaced.
_NUMBER = r"(\+?\(?\d[\d \t().\-/\u00a0\u202f]{5,24}\d)(?!\d)"
_AFTER_LABEL = (re.compile(r":[ \t\u00a0]*" + _NUMBER), re.compile(r"\.[ \t\u00a0]+" + _NUMBER))  # not a decimal point
_LABEL_BEFORE = re.compile(
    r"(?<!\w)(?i:tel(?:ephone)?|t[ée]l(?:[ée]phone)?|phone|fax|mobile|cell ?phone|hotline|helpline|freephone)"
    r"(?:[ \t]*(?:no|number|nr)\.?)?[ \t]*\.?[ \t]*$")

# --- IP ---------------------------------------------------------------------------------------------
_IPV4_GATE = re.compile(r"\.\d{1,3}\.\d{1,3}\.\d")
_IPV4 = re.compile(r"(?<![\w.])\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(?!\w|\.\d)")
_IPV6_GATE = re.compile(r":[0-9A-Fa-f]{0,4}:")
_DIGITS = frozenset("0123456789")
_HEX_GROUPS = frozenset("0123456789abcdefABCDEF:")
_IPV6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:]|\.\d)")
_NOT_AN_ADDRESS_BEFORE = re.compile(
    r"(?i:(?:§|\b(?:version|ver|v|release|rel|build|section|sections|sect|sec|§|chapter|ch|table|tables|figure|"
    r"figures|fig|figs|step|steps|appendix|annex|item|paragraph|para|clause|article|art|rule|criterion|"
    r"criteria|recommendation|recommendations|no|number|icd|code))\.?)[ \t]*$")
_ADDRESS_CONTEXT = re.compile(r"(?i:\bIP(?:v4)?\b|address|\bhost|server|://)")


@dataclass(frozen=True)
class Redactor:
    """Replaces the enabled kinds in a text; :meth:`redact` gives the new text and the counts by kind."""

    emails: bool = True
    phones: bool = True
    ips: bool = True

    @classmethod
    def from_config(cls, config) -> Redactor:
        """From a section with ``redact_emails``, ``redact_phones`` and ``redact_ips`` (the [filter] section)."""
        return cls(config.redact_emails, config.redact_phones, config.redact_ips)

    @property
    def kinds(self) -> tuple[str, ...]:
        return tuple(kind for kind, on in zip(KINDS, (self.emails, self.phones, self.ips)) if on)

    def redact(self, text: str) -> tuple[str, dict[str, int]]:
        counts: dict[str, int] = {}
        if self.emails and "@" in text:
            text = _replace_at(_AT, _EMAIL, _LOCAL_PART, 64, text, counts, EMAIL, _email)
        if self.ips:
            text = _replace_at(_IPV4_GATE, _IPV4, _DIGITS, 3, text, counts, IP, _ipv4)
            text = _replace_at(_IPV6_GATE, _IPV6, _HEX_GROUPS, 39, text, counts, IP, _ipv6)
        if self.phones:
            if "+" in text:
                text = _replace(_INTERNATIONAL, text, counts, PHONE, _international)
            if any(gate.search(text) for gate in _NORTH_AMERICAN_GATES):
                text = _replace(_NORTH_AMERICAN, text, counts, PHONE, _north_american)
            for pattern in _AFTER_LABEL:
                text = _replace(pattern, text, counts, PHONE, _labelled)
        return text, counts


def _replace(pattern: re.Pattern, text: str, counts: dict[str, int], kind: str,
             replacement: Callable[[re.Match], str | None]) -> str:
    """`text` with each match of `pattern` for which `replacement` gives a string replaced by it (None: kept)."""
    found = 0

    def substitute(match: re.Match) -> str:
        nonlocal found
        new = replacement(match)
        if new is None:
            return match.group(0)
        found += 1
        return new

    text = pattern.sub(substitute, text)
    if found:
        counts[kind] = counts.get(kind, 0) + found
    return text


def _replace_at(gate: re.Pattern, pattern: re.Pattern, before: frozenset[str], reach: int, text: str,
                counts: dict[str, int], kind: str, replacement: Callable[[re.Match], str | None]) -> str:
    """:func:`_replace` for a pattern that starts with a character class (slow to search for): each match
    of `gate` (which starts with a literal, fast to search for) is taken back over up to `reach` characters
    of `before`, and `pattern` is tried there, once."""
    pieces: list[str] = []
    last = found = 0
    for hit in gate.finditer(text):
        if hit.start() < last:
            continue  # inside the previous replacement
        start, stop = hit.start(), max(last, hit.start() - reach)
        while start > stop and text[start - 1] in before:
            start -= 1
        match = pattern.match(text, start)
        if match is None or match.end() <= hit.start():
            continue
        new = replacement(match)
        if new is None:
            continue
        pieces += [text[last:match.start()], new]
        last = match.end()
        found += 1
    if not found:
        return text
    counts[kind] = counts.get(kind, 0) + found
    pieces.append(text[last:])
    return "".join(pieces)


def _email(match: re.Match) -> str | None:
    return None if match.group(0) == EMAIL_PLACEHOLDER else EMAIL_PLACEHOLDER


def _digits(value: str) -> int:
    return sum(character.isdigit() for character in value)


def _international(match: re.Match) -> str | None:
    number = match.group(0)
    if number == PHONE_PLACEHOLDER or not 8 <= _digits(number) <= 15 or _SIGNED_COUNT.fullmatch(number):
        return None
    return PHONE_PLACEHOLDER


def _north_american(match: re.Match) -> str | None:
    return PHONE_PLACEHOLDER


def _labelled(match: re.Match) -> str | None:
    number = match.group(1)
    if number == PHONE_PLACEHOLDER or not 7 <= _digits(number) <= 15:
        return None
    start = match.start()
    if not _LABEL_BEFORE.search(match.string, max(0, start - 24), start):
        return None
    return match.group(0)[:match.start(1) - start] + PHONE_PLACEHOLDER + match.group(0)[match.end(1) - start:]


def _ipv4(match: re.Match) -> str | None:
    value = match.group(0)
    if value == IPV4_PLACEHOLDER:
        return None
    try:
        ipaddress.IPv4Address(value)  # each number 0-255, no leading zeros
    except ValueError:
        return None
    text, start = match.string, match.start()
    before = text[max(0, start - 24):start]
    if _NOT_AN_ADDRESS_BEFORE.search(before):
        return None
    if max(int(number) for number in value.split(".")) < 100 and not _ADDRESS_CONTEXT.search(before):
        return None  # outline, section and version numbers: 1.4.2.3, "10.2.1.4 Dosing", Python 3.11.4.1
    return IPV4_PLACEHOLDER


def _ipv6(match: re.Match) -> str | None:
    value = match.group(0)
    if value == IPV6_PLACEHOLDER or sum(1 for group in value.split(":") if group) < 3:
        return None
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return None
    return IPV6_PLACEHOLDER


def with_counts(extra: str | None, counts: Mapping[str, int]) -> str:
    """The ``extra`` JSON with `counts` added under ``"redacted"`` (to any counts already there)."""
    data = json.loads(extra) if extra else {}
    if not isinstance(data, dict):  # not ours to reshape: keep it whole under a key
        data = {"value": data}
    previous = data.get(EXTRA_KEY) or {}
    merged = {kind: int(previous.get(kind, 0)) + int(counts.get(kind, 0)) for kind in KINDS
              if previous.get(kind) or counts.get(kind)}
    data[EXTRA_KEY] = merged
    return json.dumps(data, sort_keys=True, ensure_ascii=False)


def redact_rows(redactor: Redactor, texts: list[str],
                rows: Iterable[int]) -> dict[int, tuple[str, dict[str, int]]]:
    """Redact ``texts[i]`` for each i in `rows`: (new text, counts by kind) of the rows where something was
    replaced."""
    changed: dict[int, tuple[str, dict[str, int]]] = {}
    if not redactor.kinds:
        return changed
    redact = redactor.redact
    for i in rows:
        text, counts = redact(texts[i])
        if counts:
            changed[i] = (text, counts)
    return changed


def redact_documents(outcomes: Iterable, redactor: Redactor) -> Iterator:
    """Outcomes of a parser (document dicts and drops) with each document's text redacted and its counts in
    its ``extra``; drops pass as they are. For a stage whose documents do not pass the filter: wrap its
    parser's outcomes in this before they become batches."""
    for outcome in outcomes:
        if isinstance(outcome, dict) and redactor.kinds and outcome.get("text"):
            text, counts = redactor.redact(outcome["text"])
            if counts:
                outcome = {**outcome, "text": text, "extra": with_counts(outcome.get("extra"), counts)}
        yield outcome


def changed_columns(batch: pa.RecordBatch,
                    changed: Mapping[int, tuple[str, dict[str, int]]]) -> tuple[pa.Array, pa.Array]:
    """The batch's text and extra columns (as ``string``) with the rows of :func:`redact_rows` replaced: only
    those rows go through Python, the others stay Arrow data."""
    rows = sorted(changed)
    mask = np.zeros(batch.num_rows, dtype=bool)
    mask[rows] = True
    mask = pa.array(mask)
    extra = batch.column("extra")
    texts = pa.array([changed[i][0] for i in rows], pa.string())
    extras = pa.array([with_counts(extra[i].as_py(), changed[i][1]) for i in rows], pa.string())

    def replace(column: pa.Array, values: pa.Array) -> pa.Array:
        return pc.replace_with_mask(column if column.type == pa.string() else column.cast(pa.string()), mask, values)

    return replace(batch.column("text"), texts), replace(extra, extras)


def redact_batch(batch: pa.RecordBatch, redactor: Redactor, reason_column: str = "drop_reason") -> pa.RecordBatch:
    """Redact the `text` of a batch's rows (only the kept ones when it has `reason_column`), with the counts
    in their `extra`; every other column, and the schema, stay as they are. For a stage other than the
    filter that writes documents of its own: a mapInArrow step before its writer (:func:`redact_partition`)."""
    if not redactor.kinds or not batch.num_rows:
        return batch
    texts = batch.column("text").to_pylist()
    if reason_column in batch.schema.names:
        rows: Iterable[int] = [i for i, reason in enumerate(batch.column(reason_column).to_pylist()) if reason is None]
    else:
        rows = range(batch.num_rows)
    changed = redact_rows(redactor, texts, rows)
    if not changed:
        return batch
    text, extra = changed_columns(batch, changed)
    arrays = [text.cast(field.type) if field.name == "text" else extra.cast(field.type) if field.name == "extra"
              else batch.column(field.name) for field in batch.schema]
    return pa.RecordBatch.from_arrays(arrays, schema=batch.schema)


def redact_partition(redactor: Redactor) -> Callable[[Iterator[pa.RecordBatch]], Iterator[pa.RecordBatch]]:
    """:func:`redact_batch` as a mapInArrow function (same schema out as in)."""

    def run(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            yield redact_batch(batch, redactor)

    return run


def summarise(spark, data_dir: str, redactor: Redactor) -> dict:
    """The ledger's ``details.redaction`` of a stage output's kept shards: the kinds redacted and, by part
    (``source``), the documents checked, those with something replaced and the replacements by kind.

    One Spark job reading the ``source`` and ``extra`` columns only."""
    from pyspark.sql import functions as F

    from gap_replay.core import storage
    from gap_replay.core.schema import DOCUMENT_SCHEMA
    from gap_replay.core.shards import read_parquet
    from gap_replay.core.spark import spark_schema

    by_source: dict[str, dict[str, int]] = {}
    files = storage.list_files(data_dir)
    if files:
        documents = read_parquet(spark, files, spark_schema(DOCUMENT_SCHEMA)).select("source", "extra")
        marked = F.coalesce(F.col("extra").contains(f'"{EXTRA_KEY}"'), F.lit(False))
        counts = [F.sum(F.when(marked, F.get_json_object("extra", f"$.{EXTRA_KEY}.{kind}").cast("long"))
                        .otherwise(F.lit(0))).alias(kind) for kind in KINDS]
        rows = documents.groupBy("source").agg(
            F.count(F.lit(1)).alias("documents"),
            F.sum(F.when(marked & F.get_json_object("extra", f"$.{EXTRA_KEY}").isNotNull(), 1).otherwise(0))
            .alias("redacted_documents"),
            *counts).collect()
        for row in sorted(rows, key=lambda row: row["source"]):
            by_source[row["source"]] = {"documents": int(row["documents"]),
                                        "redacted_documents": int(row["redacted_documents"] or 0),
                                        **{kind: int(row[kind] or 0) for kind in KINDS}}
    return {"kinds": list(redactor.kinds), "placeholders": {kind: PLACEHOLDERS[kind] for kind in redactor.kinds},
            "by_source": by_source}
