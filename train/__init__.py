"""Continued pretraining on GAP-Replay shards. `train.data` turns shards into packed token sequences."""
