"""The pubmed stage: PubMed XML and PMC JATS files into abstracts and papers."""

from gap_replay.stage import InBuild, Inputs, Stage
from pubmed_ingest.settings import PubmedConfig

STAGE = Stage(
    name="pubmed",
    help="parse PubMed XML and PMC JATS files into document shards",
    settings=PubmedConfig,
    job="pubmed_ingest.job:run_pubmed",
    inputs=Inputs("PATH", "files, directories or globs (.xml, .xml.gz, .nxml, PMC OA .tar.gz); "
                          "a build reads pubmed.inputs"),
    commands="pubmed_ingest.cli:register",
    build=InBuild(inputs_setting="inputs"),
)
