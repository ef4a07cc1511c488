"""The foundation every stage shares: the document schema, outcomes, ledger, storage, shards,
Spark session, configuration loader, HTTP client and stage interface. It imports no stage."""
