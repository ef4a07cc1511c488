"""The [pubmed] configuration section: its fields, defaults and rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from gap_replay.core.errors import ConfigError

SUPERSEDE_RULES = ("always", "if_paper_kept")  # pubmed.supersede_abstracts


@dataclass
class PubmedConfig:
    # Input files, directories or globs: PubMed XML (.xml/.xml.gz), JATS (.nxml/.xml), PMC OA .tar.gz.
    inputs: list[str] = field(default_factory=list)
    # Spark tasks for parsing; 0 means one task per input file (read from the PMC service: 2,000 versions a task).
    partitions: int = 0
    # PMC upsampling (DESIGN.md): date the recency row counts from, a text file of clinically reviewed
    # journals (one title per line), and an optional citation table (CSV or Parquet, columns
    # `id` as `pmid:<n>`/`pmcid:PMC<n>` and `citations`).
    reference_date: str = "2023-08-01"
    # `gap-replay pubmed download`: where NCBI's distributions are served from (a mirror works too).
    ncbi_base_url: str = "https://ftp.ncbi.nlm.nih.gov"
    # `gap-replay pubmed download --collections pmc`: the PMC Cloud Service (objects at <pmc_url>/<key>; a
    # stand-in such as http://127.0.0.1:PORT/<bucket> works), which licences to take ("all": every
    # open-access article, as MEDITRON took the open-access subset; "commercial": CC0, CC BY, CC BY-SA,
    # CC BY-ND only), whether author manuscripts are taken, requests in flight, and the XML per packed shard.
    pmc_url: str = "https://pmc-oa-opendata.s3.amazonaws.com"
    pmc_licenses: str = "all"
    pmc_manuscripts: bool = True
    pmc_concurrency: int = 32
    pmc_shard_mib: int = 128
    clinical_journals: str = ""
    citations: str = ""
    # Retracted publications (PubMed's Retracted Publication type or RetractionIn notice; a paper takes its
    # citation's flag) are dropped as `retracted`; true keeps them, flagged by the `retracted` column.
    keep_retracted: bool = False
    # The stage fails, naming them, when more than this share of its input files fail as a whole (their own
    # `file:<name>` drop: unreadable content, malformed, not PubMed/JATS, over the size cap). NCBI's data holds
    # the odd bad file, which a run of thousands of files should survive; a share above 1% is systematic (a
    # wrong or half-downloaded folder, a broken mirror, a format the parser no longer reads). 1: never fail.
    max_failed_share: float = 0.01
    # When a paper's full text supersedes its abstract (the abstract is dropped as `superseded_by_fulltext`,
    # detail = the paper's id): "always" (MEDITRON: abstracts only of papers whose full text is not open)
    # when the stage reads the paper's current version as a document, whatever becomes of the paper after;
    # "if_paper_kept" only when the paper also leaves this stage kept (not dropped as `retracted` or
    # `upsampling_excluded`). Later stages' drops of the paper (language, quality, dedup) never restore it.
    supersede_abstracts: str = "always"

    def validate(self) -> None:
        try:
            date.fromisoformat(self.reference_date)
        except ValueError:
            raise ConfigError(f"pubmed.reference_date: expected YYYY-MM-DD, got {self.reference_date!r}") from None
        if self.pmc_licenses not in ("all", "commercial"):
            raise ConfigError(f"pubmed.pmc_licenses: 'all' or 'commercial', got {self.pmc_licenses!r}")
        if self.pmc_concurrency < 1 or self.pmc_shard_mib < 1:
            raise ConfigError("pubmed.pmc_concurrency and pubmed.pmc_shard_mib must be at least 1")
        if not 0.0 <= self.max_failed_share <= 1.0:
            raise ConfigError(f"pubmed.max_failed_share: a share from 0 to 1, got {self.max_failed_share}")
        if self.supersede_abstracts not in SUPERSEDE_RULES:
            raise ConfigError(f"pubmed.supersede_abstracts: 'always' or 'if_paper_kept', got {self.supersede_abstracts!r}")
        if self.partitions < 0:
            raise ConfigError(f"pubmed.partitions: must be >= 0 (0: one task per file), got {self.partitions}")
