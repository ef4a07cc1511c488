"""The replay stage: general-domain replay text (RedPajama-style JSONL or Parquet) as documents.

- ``reader``: the pure reader of one file;
- ``job``: the Spark stage (`gap-replay replay`);
- ``settings``: the ``[replay]`` configuration section.
"""
