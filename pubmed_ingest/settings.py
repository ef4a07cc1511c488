"""The [pubmed] configuration section: its fields, defaults and rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from gap_replay.core.errors import ConfigError


@dataclass
class PubmedConfig:
    # Input files, directories or globs: PubMed XML (.xml/.xml.gz), JATS (.nxml/.xml), PMC OA .tar.gz.
    inputs: list[str] = field(default_factory=list)
    # Spark tasks for parsing; 0 means one task per input file.
    partitions: int = 0
    # PMC upsampling (DESIGN.md): date the recency row counts from, a text file of clinically reviewed
    # journals (one title per line), and an optional citation table (CSV or Parquet, columns
    # `id` as `pmid:<n>`/`pmcid:PMC<n>` and `citations`).
    reference_date: str = "2023-08-01"
    # `gap-replay pubmed download`: where NCBI's distributions are served from (a mirror works too).
    ncbi_base_url: str = "https://ftp.ncbi.nlm.nih.gov"
    clinical_journals: str = ""
    citations: str = ""

    def validate(self) -> None:
        try:
            date.fromisoformat(self.reference_date)
        except ValueError:
            raise ConfigError(f"pubmed.reference_date: expected YYYY-MM-DD, got {self.reference_date!r}") from None
        if self.partitions < 0:
            raise ConfigError(f"pubmed.partitions: must be >= 0 (0: one task per file), got {self.partitions}")
