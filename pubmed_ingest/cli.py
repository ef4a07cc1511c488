"""`gap-replay pubmed download`: fetch the NCBI distributions the pubmed stage reads."""

from __future__ import annotations


def register(commands, common) -> None:
    help = "download PubMed baseline/update files and PMC OA packages (also: gap-replay pubmed download)"
    parser = commands.add_parser("pubmed-download", help=help, description=help)
    parser.add_argument("--output", required=True, metavar="DIR", help="files land in DIR/<collection>/ (DIR may be s3://bucket/prefix: staged locally, then copied up)")
    parser.add_argument("--collections", default="baseline,updatefiles", metavar="NAMES",
                        help="comma-separated: baseline, updatefiles, oa_comm, oa_noncomm, oa_other "
                             "(default: baseline,updatefiles)")
    parser.add_argument("--base-url", metavar="URL", help="NCBI server or mirror (default: pubmed.ncbi_base_url)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N files of each collection")
    parser.add_argument("--retries", type=int, default=5, help="retries per request on transient errors (default 5)")
    common(parser)
    parser.set_defaults(handler=download)


def download(args, make_context) -> list:
    from gap_replay.core.progress import progress_bars
    from gap_replay.pubmed_ingest.download import list_remote, download_all

    context = make_context()
    base_url = args.base_url or context.config.pubmed.ncbi_base_url
    collections = [name.strip() for name in args.collections.split(",") if name.strip()]
    context.say(f"listing {', '.join(collections)} at {base_url}")
    files = list_remote(base_url, collections)
    if args.limit is not None:
        by_collection: dict[str, list] = {}
        for remote in files:
            by_collection.setdefault(remote.collection, []).append(remote)
        files = [remote for group in by_collection.values() for remote in group[: args.limit]]
    report = download_all(files, args.output, retries=args.retries,
                          progress=progress_bars("downloading", context.stream),
                          say=lambda message: context.say(message))
    print(report.summary())
    if report.failed:
        reasons = "; ".join(f"{failure.name}: {failure.reason}" for failure in report.failed[:3])
        raise RuntimeError(f"{len(report.failed)} file(s) failed ({reasons})")
    return []
