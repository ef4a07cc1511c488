"""`gap-replay pubmed download`: fetch the NCBI distributions the pubmed stage reads."""

from __future__ import annotations


def register(commands, common) -> None:
    help = ("download PubMed baseline/update files and mirror PMC's open-access papers from the PMC Cloud "
            "Service (also: gap-replay pubmed download)")
    parser = commands.add_parser("pubmed-download", help=help, description=help)
    parser.add_argument("--output", required=True, metavar="DIR",
                        help="PubMed files land in DIR/<collection>/, the PMC mirror in DIR/pmc/ (DIR may be "
                             "s3://bucket/prefix)")
    parser.add_argument("--collections", default="baseline,updatefiles", metavar="NAMES",
                        help="comma-separated: baseline, updatefiles, pmc (default: baseline,updatefiles)")
    parser.add_argument("--base-url", metavar="URL", help="NCBI server or mirror (default: pubmed.ncbi_base_url)")
    parser.add_argument("--pmc-url", metavar="URL", help="PMC Cloud Service address (default: pubmed.pmc_url)")
    parser.add_argument("--limit", type=int, metavar="N", help="only the first N files of each PubMed collection")
    parser.add_argument("--retries", type=int, default=5, help="retries per request on transient errors (default 5)")
    common(parser)
    parser.set_defaults(handler=download)


def download(args, make_context) -> list:
    from gap_replay.core.errors import ConfigError
    from gap_replay.core.progress import progress_bars
    from gap_replay.pubmed_ingest.download import REMOVED_COLLECTIONS, REMOVED_MESSAGE, download_all, list_remote

    context = make_context()
    collections = [name.strip() for name in args.collections.split(",") if name.strip()]
    removed = [name for name in collections if name in REMOVED_COLLECTIONS]
    if removed:
        raise ConfigError(REMOVED_MESSAGE.format(names=", ".join(removed)))
    pubmed = [name for name in collections if name != "pmc"]
    failures = []
    if pubmed:
        base_url = args.base_url or context.config.pubmed.ncbi_base_url
        context.say(f"listing {', '.join(pubmed)} at {base_url}")
        try:
            files = list_remote(base_url, pubmed)
        except ValueError as error:
            raise ConfigError(str(error)) from None
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
            failures.append(f"{len(report.failed)} file(s) failed ({reasons})")
    if "pmc" in collections:
        from gap_replay.pubmed_ingest.pmc_cloud import FETCH_FAILED, sync_pmc

        settings = context.config.pubmed
        sync = sync_pmc(args.output, pmc_url=args.pmc_url or settings.pmc_url, licenses=settings.pmc_licenses,
                        manuscripts=settings.pmc_manuscripts, concurrency=settings.pmc_concurrency,
                        shard_bytes=settings.pmc_shard_mib << 20, retries=args.retries,
                        say=lambda message: context.say(message),
                        progress=progress_bars("syncing", context.stream))
        print(sync.summary())
        if sync.failed:  # transient failures after the retries: a rerun fetches them (nothing else is lost)
            failures.append(f"{sync.failed} PMC version(s) {FETCH_FAILED} after the retries; run the sync again")
    if failures:
        raise RuntimeError("; ".join(failures))
    return []
