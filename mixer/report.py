"""`gap-replay report DIR`: a self-contained HTML page with PNG plots of a build.

Reads ``DIR/manifest.json`` and the drop tables (``DIR/stages/*/drops``, ``DIR/drops``) and writes
``DIR/report.html`` with its images in ``DIR/report/`` (relative links, no network):

- tokens per part before and after mixing, against the targets;
- document length distributions per part (tokens);
- drops per stage and reason;
- language distribution per part;
- the papers' upsampling scores and copies.
"""

from __future__ import annotations

import html
import io
import json
from collections import Counter
from typing import Any

from gap_replay.core import storage

REPORT_HTML = "report.html"
REPORT_DIR = "report"
PLOTS = ("tokens_per_part", "length_distribution", "drops", "languages", "upsampling")
PART_COLOURS = {"guidelines": "#2a9d8f", "pubmed_abstracts": "#e9c46a", "pubmed_papers": "#e76f51", "replay": "#6c757d"}


def _subdirectories(uri: str) -> list[str]:
    import pyarrow.fs as pafs

    fs, path = storage.resolve(uri)
    if fs.get_file_info(path).type != pafs.FileType.Directory:
        return []
    return sorted(info.base_name for info in fs.get_file_info(pafs.FileSelector(path))
                  if info.type == pafs.FileType.Directory)


def drop_counts(build: str, manifest: dict[str, Any]) -> Counter:
    """(stage, reason) -> documents, from the drop tables; the manifest's ledgers fill in stages
    whose tables are absent, and drops a ledger counts without listing them (replay's ``not_sampled``:
    documents outside its read-time sample)."""
    import pyarrow.dataset as ds

    counts: Counter = Counter()
    seen: set[str] = set()
    directories = [storage.join(build, "stages", name, "drops") for name in _subdirectories(storage.join(build, "stages"))]
    for directory in [*directories, storage.join(build, "drops")]:
        files = storage.list_files(directory)
        if not files:
            continue
        fs, _ = storage.resolve(files[0])
        table = ds.dataset([storage.resolve(file)[1] for file in files], format="parquet",
                           filesystem=fs).to_table(columns=["stage", "reason"])
        for row in table.group_by(["stage", "reason"]).aggregate([("reason", "count")]).to_pylist():
            counts[(row["stage"], row["reason"])] += row["reason_count"]
            seen.add(row["stage"])
    for ledger in manifest.get("stages", []):
        for reason, count in ledger.get("dropped", {}).items():
            key = (ledger["stage"], reason)
            if ledger["stage"] not in seen or key not in counts:
                counts[key] += count
    return counts


def _figure(width: float = 8.0, height: float = 4.0, columns: int = 1):
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, columns, figsize=(width, height), dpi=100)
    return plt, figure, axes


def _png(plt, figure) -> bytes:
    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", metadata={"Software": None})
    plt.close(figure)
    return buffer.getvalue()


def _empty(axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes)
    axes.set_axis_off()


def _empty_plot(message: str, width: float = 8.0, height: float = 4.0) -> bytes:
    """A plot with nothing to draw: the message in place of the axes."""
    plt, figure, axes = _figure(width, height)
    _empty(axes, message)
    return _png(plt, figure)


def plot_tokens(manifest: dict[str, Any]) -> bytes:
    parts = list(manifest["parts"])
    if not parts:
        return _empty_plot("no documents")
    plt, figure, axes = _figure()
    before = [manifest["parts"][p]["before"]["train"]["tokens"] for p in parts]
    after = [manifest["parts"][p]["after"]["train"]["tokens"] for p in parts]
    x = range(len(parts))
    axes.bar([i - 0.2 for i in x], before, width=0.4, label="before mixing (train split)", color="#adb5bd")
    axes.bar([i + 0.2 for i in x], after, width=0.4, label="after mixing (train)",
             color=[PART_COLOURS.get(p, "#495057") for p in parts])
    targets = [(i, (manifest["parts"][p].get("plan") or {}).get("target_tokens")) for i, p in enumerate(parts)]
    targets = [(i, t) for i, t in targets if t is not None]
    if targets:
        axes.scatter([i + 0.2 for i, _ in targets], [t for _, t in targets], marker="_", s=900, color="black",
                     linewidths=2, label="target", zorder=3)
    axes.set_xticks(list(x), parts)
    axes.set_ylabel("tokens")
    axes.set_title("Training tokens per part")
    axes.legend(fontsize=8, loc="upper left")
    return _png(plt, figure)


def plot_lengths(manifest: dict[str, Any]) -> bytes:
    histogram = manifest.get("statistics", {}).get("length_histogram", {})
    if not histogram:
        return _empty_plot("no documents")
    plt, figure, axes = _figure()
    for part, buckets in histogram.items():
        points = sorted((int(b), n) for b, n in buckets.items())
        total = sum(n for _, n in points) or 1
        xs = [2 ** ((b + 0.5) / 4) - 1 for b, _ in points]
        axes.plot(xs, [n / total for _, n in points], marker="o", markersize=3, label=f"{part} ({total:,})",
                  color=PART_COLOURS.get(part))
    axes.set_xscale("log")
    axes.set_xlabel("document length (tokens)")
    axes.set_ylabel("share of the part's documents")
    axes.set_title("Document length distribution per part")
    axes.legend(fontsize=8)
    return _png(plt, figure)


def plot_drops(counts: Counter) -> bytes:
    items = sorted(counts.items(), key=lambda item: (item[0][0], -item[1], item[0][1]))
    if not items:
        return _empty_plot("no document was dropped", height=2.5)
    plt, figure, axes = _figure(8.0, max(2.5, 0.35 * len(items) + 1.2))
    labels = [f"{stage}: {reason}" for (stage, reason), _ in items]
    values = [count for _, count in items]
    axes.barh(range(len(items)), values, color="#e76f51")
    axes.set_yticks(range(len(items)), labels, fontsize=8)
    axes.invert_yaxis()
    if max(values) / max(1, min(values)) > 1000:
        axes.set_xscale("log")
    else:
        from matplotlib.ticker import MaxNLocator

        axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set_xlabel("documents dropped")
    axes.set_title("Drops per stage and reason")
    return _png(plt, figure)


def plot_languages(manifest: dict[str, Any]) -> bytes:
    languages = manifest.get("statistics", {}).get("languages", {})
    if not languages:
        return _empty_plot("no documents")
    plt, figure, axes = _figure()
    totals: Counter = Counter()
    for counts in languages.values():
        totals.update(counts)
    top = [language for language, _ in totals.most_common(8)]
    parts = list(languages)
    bottoms = [0.0] * len(parts)
    colours = ["#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8ab17d", "#6d597a", "#b56576", "#adb5bd"]
    for index, language in enumerate([*top, "other"]):
        values = []
        for part in parts:
            counts = languages[part]
            share_total = sum(counts.values()) or 1
            value = counts.get(language, 0) if language != "other" else sum(
                n for lang, n in counts.items() if lang not in top)
            values.append(value / share_total)
        if any(values):
            axes.bar(parts, values, bottom=bottoms, label=language, color=colours[index % len(colours)])
            bottoms = [b + v for b, v in zip(bottoms, values)]
    axes.set_ylabel("share of the part's documents")
    axes.set_title("Language (fastText; und = not identified, e.g. replay)")
    axes.legend(fontsize=8, ncol=3)
    return _png(plt, figure)


def plot_upsampling(manifest: dict[str, Any]) -> bytes:
    plt, figure, (left, right) = _figure(8.0, 3.5, columns=2)
    upsampling = manifest.get("statistics", {}).get("upsampling", {})
    scores, copies = upsampling.get("score", {}), upsampling.get("copies", {})
    if scores:
        left.bar(list(scores), list(scores.values()), color="#e76f51")
        left.set_xlabel("upsampling score")
        left.set_ylabel("papers")
        left.tick_params(axis="x", labelrotation=45, labelsize=7)
    else:
        _empty(left, "no papers")
    left.set_title("Papers by upsampling score")
    if copies:
        right.bar(list(copies), list(copies.values()), color="#264653")
        right.set_xlabel("copies in the mixture (1 + score, rounded)")
        right.set_ylabel("papers")
    else:
        _empty(right, "no papers")
    right.set_title("Papers by number of copies")
    from matplotlib.ticker import MaxNLocator

    for axes in (left, right):
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    return _png(plt, figure)


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        if isinstance(value, bool) or value is None:
            return html.escape(str(value if value is not None else ""))
        if isinstance(value, int):
            return f"{value:,}"
        if isinstance(value, float):
            return f"{value:.4g}"
        return html.escape(str(value))

    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 60em; color: #212529; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #dee2e6; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
figure { margin: 1.5em 0; }
img { max-width: 100%; border: 1px solid #dee2e6; }
figcaption { font-size: 0.9em; color: #495057; }
.totals { font-size: 1.1em; }
"""


def render_html(manifest: dict[str, Any], counts: Counter, images: dict[str, str]) -> str:
    splits = manifest["splits"]
    total_tokens = sum(info["tokens"] for info in splits.values())
    total_rows = sum(info["rows"] for info in splits.values())
    replay = manifest.get("replay", {})
    sections = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        "<title>GAP-Replay build report</title>",
        f"<style>{CSS}</style></head><body>",
        "<h1>GAP-Replay build report</h1>",
        f'<p class="totals" id="totals">{total_rows:,} rows, {total_tokens:,} tokens: '
        + "; ".join(f'<span id="{split}-totals">{split} {info["rows"]:,} rows ({info["documents"]:,} documents), '
                    f'{info["tokens"]:,} tokens in {len(info["shards"])} shard(s)</span>'
                    for split, info in splits.items()) + ".</p>",
        f"<p>gap-replay {html.escape(str(manifest.get('code_version', '')))}, seed {manifest.get('seed')}, "
        f"tokenizer {html.escape(str(manifest['tokenizer']['spec']))} (vocabulary {manifest['tokenizer']['vocab_size']:,}).</p>",
    ]
    if replay.get("target_tokens"):
        sections.append(f"<p>Replay: {replay['train_tokens']:,} training tokens, {replay['actual_share']:.3%} of the "
                        f"training mixture (target {replay['target_tokens']:,} tokens; relative error "
                        f"{replay['relative_error']:.3%}).</p>")
    part_rows = []
    for part, entry in manifest["parts"].items():
        plan = entry.get("plan") or {}
        part_rows.append([part, entry["before"]["total"]["documents"], entry["before"]["total"]["tokens"],
                          entry["after"]["train"]["rows"], entry["after"]["train"]["tokens"],
                          plan.get("target_tokens"), entry["after"]["validation"]["rows"],
                          entry["after"]["validation"]["tokens"]])
    sections += ["<h2>Parts</h2>", _table(["part", "documents in", "tokens in", "train rows", "train tokens",
                                           "target tokens", "validation rows", "validation tokens"], part_rows)]
    stage_rows = [[s["stage"], s["in"], s["kept"], sum(s["dropped"].values())] for s in manifest.get("stages", [])]
    sections += ["<h2>Stages</h2>", _table(["stage", "in", "kept", "dropped"], stage_rows)]
    captions = {
        "tokens_per_part": "Training tokens per part: the train split before mixing, after mixing, and the targets.",
        "length_distribution": "Document length (tokens) per part, documents in the mixture.",
        "drops": f"Documents dropped per stage and reason ({sum(counts.values()):,} in all).",
        "languages": "Language distribution per part.",
        "upsampling": "Papers: upsampling scores and copies in the mixture.",
    }
    sections.append("<h2>Plots</h2>")
    for name in PLOTS:
        sections.append(f'<figure><img src="{html.escape(images[name])}" alt="{html.escape(captions[name])}">'
                        f"<figcaption>{html.escape(captions[name])}</figcaption></figure>")
    drop_rows = [[stage, reason, count] for (stage, reason), count in sorted(counts.items())]
    sections += ["<h2>Drops</h2>", _table(["stage", "reason", "documents"], drop_rows), "</body></html>", ""]
    return "\n".join(sections)


def write_report(build: str) -> str:
    """Write ``report.html`` and ``report/*.png`` into the build directory; return the page's URI."""
    build = storage.absolute_uri(build)
    manifest_uri = storage.join(build, "manifest.json")
    if not storage.exists(manifest_uri):
        from gap_replay.core.shards import InputError

        raise InputError(f"{build} has no manifest.json: not a finished build or mix output")
    manifest = json.loads(storage.read_text(manifest_uri))
    counts = drop_counts(build, manifest)
    plots = {
        "tokens_per_part": plot_tokens(manifest),
        "length_distribution": plot_lengths(manifest),
        "drops": plot_drops(counts),
        "languages": plot_languages(manifest),
        "upsampling": plot_upsampling(manifest),
    }
    fs, path = storage.resolve(storage.join(build, REPORT_DIR))
    fs.create_dir(path, recursive=True)
    images = {}
    for name, data in plots.items():
        relative = f"{REPORT_DIR}/{name}.png"
        _write_bytes(storage.join(build, relative), data)
        images[name] = relative
    page = storage.join(build, REPORT_HTML)
    _write_bytes(page, render_html(manifest, counts, images).encode("utf-8"))
    return page


def _write_bytes(uri: str, data: bytes) -> None:
    """Write through a temporary name, so a reader never sees half a file."""
    fs, path = storage.resolve(uri)
    temporary = f"{path}.tmp"
    with fs.open_output_stream(temporary) as stream:
        stream.write(data)
    fs.move(temporary, path)


def build_report(output: str) -> str:
    """The build's last step: the report of its output (a line for the log)."""
    return f"report: {write_report(output)}"
