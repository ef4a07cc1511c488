"""Identity rules shared by the stages that see abstracts and papers together.

A PubMed abstract whose paper is present in full text (same PMID, or same PMCID) is superseded:
the paper carries the abstract and the body. Used by the pubmed stage (abstracts and papers parsed
in one run) and by the dedup stage (parts produced by separate runs).
"""

from __future__ import annotations

from gap_replay.schema import DROP_DETAIL, DROP_REASON

SUPERSEDED = "superseded_by_fulltext"


def supersede_abstracts(outcomes):
    """Mark kept abstracts of kept papers as dropped (`SUPERSEDED`, detail = the paper's id).

    `outcomes` has the document columns plus drop_reason/drop_detail; the result has the same columns.
    """
    from pyspark.sql import functions as F

    alive_papers = outcomes.where(F.col(DROP_REASON).isNull() & (F.col("source") == "pubmed_papers"))
    by_pmid = (alive_papers.where(F.col("pmid").isNotNull()).groupBy(F.col("pmid").alias("_paper_pmid"))
               .agg(F.min("id").alias("_by_pmid")))
    by_pmcid = (alive_papers.where(F.col("pmcid").isNotNull()).groupBy(F.col("pmcid").alias("_paper_pmcid"))
                .agg(F.min("id").alias("_by_pmcid")))
    is_abstract = F.col("source") == "pubmed_abstracts"
    joined = (outcomes.join(by_pmid,
                            is_abstract & (F.col("pmid") == F.col("_paper_pmid")), "left")
                      .join(by_pmcid, is_abstract & (F.col("pmcid") == F.col("_paper_pmcid")), "left"))
    paper = F.coalesce("_by_pmid", "_by_pmcid")
    superseded = F.col(DROP_REASON).isNull() & paper.isNotNull()
    return joined.select(
        *[name for name in outcomes.columns if name not in (DROP_REASON, DROP_DETAIL)],
        F.when(superseded, F.lit(SUPERSEDED)).otherwise(F.col(DROP_REASON)).alias(DROP_REASON),
        F.when(superseded, paper).otherwise(F.col(DROP_DETAIL)).alias(DROP_DETAIL),
    )
