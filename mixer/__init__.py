"""The mixer: tokenizers and the final GAP-Replay mixture (replay text is read by the replay stage).

- ``tokens``: loading a tokenizer to count tokens, training a byte-level BPE one (`gap-replay tokenizer train`);
- ``plan``: how many copies of each document the mixture takes (weights, token targets, replay share);
- ``job``: the Spark stage (`gap-replay mix`): shards, manifest, dataset card (``card``), drops;
- ``report``: `gap-replay report DIR`, an HTML page with PNG plots of a build;
- ``reader``: opening a build by split and part from other projects;
- ``synthetic``: synthetic documents for tests and benchmarks.
"""
