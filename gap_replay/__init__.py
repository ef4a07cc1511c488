"""gap-replay: what every stage shares (schema, ledger, shards, Spark session, configuration, CLI)."""

__version__ = "0.1.0"
