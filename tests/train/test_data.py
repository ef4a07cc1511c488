import itertools

import pyarrow as pa
import pytest

from gap_replay.schema import DOCUMENT_SCHEMA, documents_to_batch, make_document
from gap_replay.shards import ShardWriter
from train.data import PackedSequences, iter_texts, shard_files

EOD = 0


def byte_tokens(texts):
    return [list(text.encode()) for text in texts]


@pytest.fixture
def shards(tmp_path):
    texts = [f"document {i} " + "x" * (i * 7 % 23) for i in range(30)]
    for shard in range(3):
        writer = ShardWriter(str(tmp_path / f"part-{shard:05d}-of-00003.parquet"), DOCUMENT_SCHEMA)
        batch = documents_to_batch(make_document(id=f"replay:t:{i}", source="replay", text=texts[i])
                                   for i in range(shard * 10, shard * 10 + 10))
        writer.write(pa.Table.from_batches([batch]))
        writer.close()
    return shard_files(tmp_path), texts


def test_ranks_read_disjoint_slices_covering_everything(shards):
    files, texts = shards
    seen = [dict(iter_texts(files, rank, 3)) for rank in range(3)]
    assert sorted(itertools.chain.from_iterable(seen)) == list(range(30))
    assert seen[1][4] == texts[4]


def test_packing_joins_documents_with_eod(shards):
    files, texts = shards
    sequences = list(PackedSequences(files, byte_tokens, seq_len=16, eod_id=EOD))
    stream = [token for text in texts for token in list(text.encode()) + [EOD]]
    assert all(len(sequence) == 16 for sequence in sequences)
    assert list(itertools.chain.from_iterable(sequences)) == stream[: len(sequences) * 16]
    assert len(stream) - len(sequences) * 16 < 16


@pytest.mark.parametrize("stop_after", [1, 5, 17])
def test_resume_continues_exactly(shards, stop_after):
    files, _ = shards
    full = list(PackedSequences(files, byte_tokens, seq_len=16, eod_id=EOD, rank=1, world_size=2))
    first = PackedSequences(files, byte_tokens, seq_len=16, eod_id=EOD, rank=1, world_size=2)
    head = list(itertools.islice(iter(first), stop_after))
    resumed = PackedSequences(files, byte_tokens, seq_len=16, eod_id=EOD, rank=1, world_size=2)
    resumed.load_state_dict(first.state_dict())
    assert head + list(resumed) == full


def test_missing_shards_and_bad_rank(tmp_path):
    with pytest.raises(FileNotFoundError):
        shard_files(tmp_path)
    with pytest.raises(ValueError):
        list(iter_texts([], rank=2, world_size=2))
