"""The pubmed stage: PubMed XML and PMC JATS files into abstracts and papers."""

from gap_replay.core.stage import InBuild, Inputs, Stage
from gap_replay.pubmed_ingest.settings import PubmedConfig

STAGE = Stage(
    name="pubmed",
    help="parse PubMed XML and PMC JATS files into document shards",
    settings=PubmedConfig,
    job="gap_replay.pubmed_ingest.job:run_pubmed",
    inputs=Inputs("PATH", "files, directories or globs (.xml, .xml.gz, .nxml, PMC OA .tar.gz); "
                          "a build reads pubmed.inputs"),
    commands="gap_replay.pubmed_ingest.cli:register",
    build=InBuild(inputs_setting="inputs"),
)
