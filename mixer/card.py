"""The dataset card (``OUT/README.md``), Hugging Face style, rendered from the manifest alone."""

from __future__ import annotations

import json

from gap_replay.core import markers
from gap_replay.core.markers import listing
from gap_replay.mixer.settings import departures_from_defaults
from typing import Any

PART_NAMES = {
    "guidelines": "Clinical practice guidelines",
    "pubmed_abstracts": "PubMed abstracts",
    "pubmed_papers": "PubMed Central full-text papers",
    "replay": "General-domain replay text",
}


def _yaml_string(value: str) -> str:
    return json.dumps(value)  # a JSON string is a valid YAML double-quoted scalar


def size_category(rows: int) -> str:
    bounds = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
              (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B")]
    for bound, name in bounds:
        if rows < bound:
            return name
    return "1B<n<10B"


def guideline_rows(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per guideline source of the build, with its name, address and redistribution status."""
    statistics = manifest.get("statistics", {})
    in_build = statistics.get("guideline_sources", {})
    registry = statistics.get("guideline_registry", {})
    # Each source's health as the guidelines stage of this build found it (absent for a mix of
    # shards built elsewhere).
    health = next((stage.get("details", {}).get("sources", {}) for stage in manifest.get("stages", [])
                   if stage.get("stage") == "guidelines"), {})
    rows = []
    for tag in sorted(set(in_build) | set(registry)):
        built = in_build.get(tag, {})
        known = registry.get(tag)
        if known is not None:
            is_open = bool(known.get("open"))
        elif built.get("license") in ("open", "closed"):
            is_open = built["license"] == "open"
        else:
            is_open = None
        rows.append({"tag": tag, "name": (known or {}).get("name", tag), "url": (known or {}).get("url", ""),
                     "documents": built.get("documents", 0), "rows": built.get("rows", 0),
                     "tokens": built.get("tokens", 0), "open": is_open,
                     "fixture": bool(health.get(tag, {}).get("fixture")),
                     "verdict": health.get(tag, {}).get("verdict")})
    return rows


def card_languages(manifest: dict[str, Any]) -> list[str]:
    """The languages the documents were identified in (the filter stage's `language`), most documents
    first; "und" (undetermined: text that was not identified, such as replay) is left out."""
    totals: dict[str, int] = {}
    for counts in manifest.get("statistics", {}).get("languages", {}).values():
        for language, count in counts.items():
            if language and language != "und":
                totals[language] = totals.get(language, 0) + count
    return sorted(totals, key=lambda language: (-totals[language], language)) or ["und"]


REDACTED_KINDS = {"email": "e-mail addresses", "phone": "phone numbers", "ip": "IP addresses"}


def redaction_rows(manifest: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Personal data replaced, by part, from the ledgers' ``details.redaction`` (the filter stage's, and any
    other stage that redacts): documents checked, documents with something replaced, and the count of each
    kind (None where the stage had that kind turned off)."""
    rows: dict[str, dict[str, Any]] = {}
    for stage in manifest.get("stages", []):
        redaction = stage.get("details", {}).get("redaction")
        if not redaction:
            continue
        kinds = set(redaction.get("kinds", []))
        for part, counts in redaction.get("by_source", {}).items():
            row = rows.setdefault(part, {"stages": [], "documents": 0, "redacted_documents": 0,
                                         **{kind: 0 for kind in REDACTED_KINDS}})
            row["stages"].append(stage["stage"])
            row["documents"] += counts.get("documents", 0)
            row["redacted_documents"] += counts.get("redacted_documents", 0)
            for kind in REDACTED_KINDS:
                if kind not in kinds or row[kind] is None:
                    row[kind] = None
                else:
                    row[kind] += counts.get(kind, 0)
    return rows


def redaction_lines(manifest: dict[str, Any]) -> list[str]:
    """The card's paragraph and table on personal data; nothing when no stage of the manifest redacted."""
    stages = [stage for stage in manifest.get("stages", []) if stage.get("details", {}).get("redaction")]
    if not stages:
        return []
    rows = redaction_rows(manifest)
    placeholders: dict[str, str] = {}
    for stage in stages:
        placeholders.update(stage["details"]["redaction"].get("placeholders", {}))
    redacted = [kind for kind in REDACTED_KINDS if kind in placeholders]
    names = listing([f"`{stage['stage']}`" for stage in stages]) + (" stages" if len(stages) > 1 else " stage")
    if redacted:
        said = listing([f"{REDACTED_KINDS[kind]} by `{placeholders[kind]}`" for kind in redacted])
        lines = ["", f"Personal data: the {names} replaced {said} (fixed values reserved for documentation or "
                     "fiction); a document's counts are in its `extra` JSON under `redacted`."]
    else:
        lines = ["", f"Personal data: the {names} redacted nothing (every kind turned off)."]
    off = [kind for kind in REDACTED_KINDS if any(row[kind] is None for row in rows.values())]
    if off:
        lines.append("Not redacted, turned off in this build: "
                     + listing([f"{REDACTED_KINDS[kind]} (`filter.redact_{kind}s = false`)" for kind in off]) + ".")
    lines += ["", "| part | documents checked | with personal data | "
              + " | ".join(REDACTED_KINDS.values()) + " |", "|---|---:|---:|" + "---:|" * len(REDACTED_KINDS)]

    def cell(value: int | None) -> str:
        return "off" if value is None else f"{value:,}"

    for part in sorted(rows, key=lambda part: (list(PART_NAMES).index(part) if part in PART_NAMES else 99, part)):
        row = rows[part]
        counts = " | ".join(cell(row[kind]) for kind in REDACTED_KINDS)
        lines.append(f"| {PART_NAMES.get(part, part)} (`{part}`) | {row['documents']:,} | "
                     f"{row['redacted_documents']:,} | {counts} |")
    totals = {kind: sum(row[kind] or 0 for row in rows.values()) for kind in REDACTED_KINDS}
    lines.append(f"| **total** | {sum(row['documents'] for row in rows.values()):,} | "
                 f"{sum(row['redacted_documents'] for row in rows.values()):,} | "
                 + " | ".join(f"{totals[kind]:,}" for kind in REDACTED_KINDS) + " |")
    unchecked = [part for part in manifest.get("parts", {}) if part not in rows]
    if unchecked:
        lines += ["", "Not checked for personal data: "
                  + listing([f"{PART_NAMES.get(part, part)} (`{part}`)" for part in unchecked])
                  + ", which no redacting stage reads: "
                  + ("its" if len(unchecked) == 1 else "their") + " text is as read."]
    return lines


def dataset_card(manifest: dict[str, Any]) -> str:
    splits = manifest["splits"]
    parts = manifest["parts"]
    settings = manifest["settings"]
    tokenizer = manifest["tokenizer"]
    replay = manifest["replay"]
    total_rows = sum(splits[s]["rows"] for s in splits)
    header = [
        "---",
        "pretty_name: GAP-Replay",
        "language:",
        *[f"- {language}" for language in card_languages(manifest)],
        "license: other",
        "license_name: mixed-per-source",
        "task_categories:",
        "- text-generation",
        "tags:",
        "- medical",
        "- clinical-guidelines",
        "- pubmed",
        "- pretraining",
        "size_categories:",
        f"- {size_category(total_rows)}",
        "configs:",
        "- config_name: default",
        "  data_files:",
    ]
    for split in splits:
        header += [f"  - split: {split}", f"    path: {_yaml_string(f'{split}/{split}-*.parquet')}"]
    header += ["dataset_info:", "  splits:"]
    for split, info in splits.items():
        header += [f"  - name: {split}", f"    num_examples: {info['rows']}",
                   f"    num_bytes: {sum(shard['bytes'] for shard in info['shards'])}"]
    header.append("---")

    lines = [
        "# GAP-Replay",
        "",
        "The medical pretraining corpus of MEDITRON (Chen et al., 2023, \"MEDITRON-70B: Scaling Medical Pretraining "
        "for Large Language Models\"), regenerated from its public sources by "
        f"`gap-replay` {manifest.get('code_version', '')} with seed {manifest['seed']}: clinical practice **G**uidelines, "
        "PubMed **A**bstracts, PubMed Central full-text **P**apers and general-domain **Replay** text.",
        "",
        "## Loading",
        "",
        "```python",
        "from datasets import load_dataset",
        "corpus = load_dataset(\"parquet\", data_files={\"train\": \"train/*.parquet\", \"validation\": \"validation/*.parquet\"})",
        "```",
        "",
        "Every shard is a Parquet (zstd) file of one schema; `manifest.json` lists each shard's rows, tokens and "
        "SHA-256. Rows are shuffled with the seed across all shards of a split.",
        "",
        "## Mixture",
        "",
        f"Tokens are counted with {'a byte-level BPE tokenizer trained on this corpus (`tokenizer/`)' if tokenizer['trained'] else '`' + str(tokenizer['spec']) + '`'} "
        f"(vocabulary {tokenizer['vocab_size']:,}); a count is the tokens of `text` with no special token added.",
        "",
        "| part | documents in | train documents | train rows | train tokens | validation rows | validation tokens | sizing |",
        "|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for part, entry in parts.items():
        plan = entry.get("plan") or {}
        if plan.get("method") == "weight":
            sizing = f"weight {plan['weight']:.4g}" + (" x (1 + upsampling score)" if part == "pubmed_papers" else "")
            if plan.get("target_tokens") is not None:
                sizing += f" (target {plan['target_tokens']:,} tokens)"
        elif plan:
            sizing = f"{plan['full_passes']} full pass(es) + seeded sample, target {plan['target_tokens']:,} tokens"
        else:
            sizing = ""
        before, train, validation = entry["before"]["total"], entry["after"]["train"], entry["after"]["validation"]
        lines.append(f"| {PART_NAMES.get(part, part)} (`{part}`) | {before['documents']:,} | {train['documents']:,} | "
                     f"{train['rows']:,} | {train['tokens']:,} | {validation['rows']:,} | {validation['tokens']:,} | {sizing} |")
    lines += [
        f"| **total** | {sum(e['before']['total']['documents'] for e in parts.values()):,} | "
        f"{splits['train']['documents']:,} | {splits['train']['rows']:,} | {splits['train']['tokens']:,} | "
        f"{splits['validation']['rows']:,} | {splits['validation']['tokens']:,} | |",
        "",
    ]
    if replay.get("target_tokens"):
        lines += [f"Replay makes up {replay['actual_share']:.3%} of the training tokens "
                  f"(target {replay['target_tokens']:,} tokens"
                  + (f", a share of {replay['share']:.2%}" if replay.get("share") is not None else "")
                  + f"; relative error {replay['relative_error']:.3%}).", ""]
    sample = replay.get("sample")
    if sample:
        lines += [f"Replay was sampled as it was read: {sample['kept']:,} of {sample['read']:,} documents "
                  f"(rate {sample['rate']:g}, seed {sample['seed']}: the first of the order in which the mix "
                  f"takes replay; this mixture needs a rate of at least {replay['sample_rate_needed']:.4g}).", ""]
    departures = departures_from_defaults(settings)
    if departures:
        note = settings.get("settings_note") or "set in this build's configuration"
        lines += [f"**Not the default mixture**: {'; '.join(departures)}. Why: {note}.", ""]
    fractions = settings.get("validation_fraction", {})
    lines += [
        "Validation: a document goes to validation by a seeded hash of its id ("
        + ", ".join(f"`{part}` {fraction:.0%}" for part, fraction in sorted(fractions.items())) + ") "
        "and is held there once: weights and upsampling shape the training split only. In training, papers "
        "are repeated `1 + upsampling_score` times (rounded probabilistically with the seed); copy k >= 1 of "
        "a document keeps its `id` and carries `\"mix_copy\": k` in `extra`.",
        "",
        "## Guideline sources and licences",
        "",
        "Guideline texts keep their publishers' terms. Sources marked *no* allow no redistribution: a build "
        "holding their documents is for local use only; filter on `subset` (or leave them out of "
        "`guidelines.sources`) before sharing it.",
        "",
        "| source | name | documents | tokens | redistributable | crawl health |",
        "|---|---|---:|---:|---|---|",
    ]
    rows = guideline_rows(manifest)
    for row in rows:
        status = {True: "yes", False: "no", None: "unknown"}[row["open"]]
        name = f"[{row['name']}]({row['url']})" if row["url"] else row["name"]
        health = "fixture site" if row["fixture"] else row["verdict"] or "-"
        lines.append(f"| `{row['tag']}` | {name} | {row['documents']:,} | {row['tokens']:,} | {status} | {health} |")
    if any(row["fixture"] for row in rows):
        lines += [
            "",
            "Sources marked *fixture site* were crawled from the embedded sample's own site, served on 127.0.0.1: "
            "pages written for this project in the real sites' formats, not the publishers' documents. Their "
            "sizes say nothing of the real sources', and no comparison with the paper's yields is made.",
        ]
    elif any(row["verdict"] for row in rows):
        lines += [
            "",
            "Crawl health is the guidelines stage's verdict on each source (`gap-replay guidelines check` "
            "explains it): *degraded* where the yield or length is far from the paper's, or the extraction "
            "fell back; the manifest's guidelines ledger holds the figures.",
        ]
    lines += [
        "",
        "Other parts: PubMed abstracts are distributed by the U.S. National Library of Medicine under its terms "
        "for MEDLINE/PubMed data; PMC papers come from the PMC Open Access Subset, each under its own licence "
        "(the `license` column); replay text keeps the terms of its RedPajama source set (`subset`).",
        "",
        "## Processing",
        "",
        "1. `pubmed`: MEDLINE/PubMed XML and PMC JATS parsed; metadata, authors, affiliations, bibliography and "
        "table bodies dropped; `#`/`##` headers; in-text markers "
        f"{listing([f'`{markers.opening(kind)}`' for kind in markers.KINDS])}; PMC upsampling scores (MEDITRON table 10).",
        "2. `guidelines`: guideline sources crawled politely (robots.txt, rate limits), text extracted and cleaned.",
        "3. `filter`: fastText language identification, quality rules, and personal data (e-mail addresses, "
        "phone numbers, IP addresses) replaced by placeholders.",
        "4. `replay`: RedPajama-style replay text read into the same schema.",
        "5. `dedup`: duplicates by id and text removed; a paper's full text supersedes its abstract.",
        "6. `mix`: token counts, weights and targets, replay share, train/validation split, seeded shuffle, shards.",
        "",
        "| stage | in | kept | dropped | reasons |",
        "|---|---:|---:|---:|---|",
    ]
    for stage in manifest.get("stages", []):
        dropped = sum(stage["dropped"].values())
        reasons = ", ".join(f"{reason} {count:,}" for reason, count in
                            sorted(stage["dropped"].items(), key=lambda item: (-item[1], item[0])))
        lines.append(f"| {stage['stage']} | {stage['in']:,} | {stage['kept']:,} | {dropped:,} | {reasons} |")
    lines += redaction_lines(manifest)
    languages = manifest.get("statistics", {}).get("languages", {})
    lines += ["", "## Statistics", "", "Languages (documents in the mixture):", ""]
    for part, counts in languages.items():
        lines.append(f"- `{part}`: " + ", ".join(f"{language} {count:,}" for language, count in counts.items()))
    upsampling = manifest.get("statistics", {}).get("upsampling", {})
    if upsampling.get("copies"):
        lines += ["", "Papers by number of copies: "
                  + ", ".join(f"{copies} cop{'y' if copies == '1' else 'ies'}: {count:,}"
                            for copies, count in upsampling["copies"].items()) + "."]
    lines += [
        "",
        "Shards: " + "; ".join(f"{split}: {len(info['shards'])} file(s), {info['rows']:,} rows, {info['tokens']:,} tokens"
                                for split, info in splits.items()) + ".",
        "",
        "`manifest.json` holds the full settings, per-shard checksums and every stage's ledger; "
        "`report.html` (when built) plots these statistics.",
        "",
    ]
    return "\n".join(header + lines)
