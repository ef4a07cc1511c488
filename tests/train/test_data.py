import itertools

import pyarrow as pa
import pytest

from gap_replay.core.schema import DOCUMENT_SCHEMA, documents_to_batch, make_document
from gap_replay.core.shards import ShardWriter
from gap_replay.train.data import PackedSequences, iter_texts, shard_files

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


BOS = 1


def test_every_packed_document_starts_with_bos(shards):
    files, texts = shards
    sequences = list(PackedSequences(files, byte_tokens, seq_len=16, eod_id=EOD, bos_id=BOS))
    stream = [token for text in texts for token in [BOS] + list(text.encode()) + [EOD]]
    flat = list(itertools.chain.from_iterable(sequences))
    assert flat == stream[: len(flat)] and len(stream) - len(flat) < 16
    # Every document start (the first token, and each token after an end-of-document) is BOS.
    assert flat[0] == BOS
    assert all(flat[i + 1] == BOS for i, token in enumerate(flat[:-1]) if token == EOD)
    assert flat.count(BOS) == flat.count(EOD) + (flat[-1] != EOD)


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


# --- parts, batching, epochs, prefetch -----------------------------------------------------------------

from gap_replay.train.data import BatchStream, DataExhausted, parts, validation_sequences


@pytest.fixture
def mixed(tmp_path):
    """Two shards of documents from two parts, interleaved."""
    texts = [f"{'guideline' if i % 3 == 0 else 'abstract'} {i} " + "y" * (i * 5 % 17) for i in range(24)]
    for shard in range(2):
        writer = ShardWriter(str(tmp_path / f"train-{shard:05d}-of-00002.parquet"), DOCUMENT_SCHEMA)
        batch = documents_to_batch(
            make_document(id=f"replay:t:{i}", source="guidelines" if i % 3 == 0 else "pubmed_abstracts",
                          text=texts[i]) for i in range(shard * 12, shard * 12 + 12))
        writer.write(pa.Table.from_batches([batch]))
        writer.close()
    return shard_files(tmp_path), texts


def test_tokenizing_in_batches_packs_the_same_sequences(shards):
    files, _ = shards
    one = list(PackedSequences(files, byte_tokens, seq_len=16, eod_id=EOD, rank=1, world_size=2))
    batched = list(PackedSequences(files, byte_tokens, seq_len=16, eod_id=EOD, rank=1, world_size=2,
                                   tokenize_batch=7))
    assert one == batched


def test_parts_and_reading_one_part(mixed):
    files, texts = mixed
    assert parts(files) == ["guidelines", "pubmed_abstracts"]
    guidelines = [text for i, text in enumerate(texts) if i % 3 == 0]
    assert [text for _, text in iter_texts(files, sources=["guidelines"])] == guidelines
    # Indexes count the selected documents, so ranks split a part evenly.
    rank1 = list(iter_texts(files, rank=1, world_size=2, sources=["guidelines"]))
    assert [index for index, _ in rank1] == [1, 3, 5, 7] and rank1[0][1] == guidelines[1]


def test_batch_stream_resumes_exactly_with_bos(shards):
    files, _ = shards
    make = lambda: BatchStream(files, byte_tokens, 16, EOD, micro_batch_size=2, rank=1, world_size=2, bos_id=BOS)
    reference = _batches(make(), 9)
    first = make()
    head = _batches(first, 4)
    resumed = make()
    resumed.load_state_dict(first.state_dict())
    assert head + _batches(resumed, 5) == reference
    assert reference[0][0][0] == BOS


def test_validation_sequences_keep_the_partial_tail_and_honour_the_limit(mixed):
    files, texts = mixed
    stream = [token for i, text in enumerate(texts) if i % 3 == 0 for token in list(text.encode()) + [EOD]]
    everything = validation_sequences(files, "guidelines", byte_tokens, 16, EOD)
    assert [token for sequence in everything for token in sequence] == stream
    assert len(everything[-1]) == len(stream) % 16 or len(everything[-1]) == 16
    limited = validation_sequences(files, "guidelines", byte_tokens, 16, EOD, limit=3)
    assert limited == everything[:3]  # the first sequences of the part, whatever the number of processes


def _batches(stream, count):
    return [batch.tolist() for batch in itertools.islice(stream, count)]


def test_batch_stream_runs_epoch_after_epoch(shards):
    files, _ = shards
    per_epoch = list(PackedSequences(files, byte_tokens, seq_len=16, eod_id=EOD, rank=0, world_size=2))
    stream = BatchStream(files, byte_tokens, 16, EOD, micro_batch_size=3, rank=0, world_size=2)
    rows = [row for batch in _batches(stream, 2 * len(per_epoch)) for row in batch]
    # Three epochs' worth of rows (a batch may straddle two epochs), each epoch the same sequences.
    assert rows == (per_epoch * 7)[: len(rows)]
    assert stream.state_dict()["epoch"] >= 5


@pytest.mark.parametrize("prefetch", [0, 3])
@pytest.mark.parametrize("stop_after", [1, 4, 9, 14])
def test_batch_stream_resumes_exactly(shards, prefetch, stop_after):
    files, _ = shards
    make = lambda: BatchStream(files, byte_tokens, 16, EOD, micro_batch_size=2, rank=1, world_size=2,
                               tokenize_batch=4, prefetch=prefetch)
    reference = _batches(make(), stop_after + 6)
    first = make()
    head = _batches(first, stop_after)
    state = first.state_dict()
    first.close()
    resumed = make()
    resumed.load_state_dict(state)
    assert head + _batches(resumed, 6) == reference
    resumed.close()


def test_batch_stream_reports_a_slice_too_small(shards):
    files, _ = shards
    stream = BatchStream(files, byte_tokens, 10_000, EOD, micro_batch_size=1, prefetch=2)
    with pytest.raises(DataExhausted):
        next(stream)


def test_shards_on_object_storage_read_as_local_ones(shards, bucket):
    """A split directory on S3 (moto's server on 127.0.0.1): the same files, texts and packing."""
    import pyarrow.fs as pafs

    from gap_replay.core import storage

    files, texts = shards
    fs, root = storage.resolve(f"{bucket}/build/train")
    for path in files:
        pafs.copy_files(str(path), f"{root}/{path.rsplit('/', 1)[-1]}", source_filesystem=pafs.LocalFileSystem(),
                        destination_filesystem=fs)
    remote = shard_files(f"{bucket}/build/train")
    assert [uri.rsplit("/", 1)[-1] for uri in remote] == [str(path).rsplit("/", 1)[-1] for path in files]
    assert all(uri.startswith("s3://") for uri in remote)
    assert dict(iter_texts(remote)) == dict(iter_texts(files)) == dict(enumerate(texts))
    assert list(PackedSequences(remote, byte_tokens, seq_len=16, eod_id=EOD)) == \
        list(PackedSequences(files, byte_tokens, seq_len=16, eod_id=EOD))


# --- ranks read their own row groups; resume opens the row group of the position ------------------------

import pyarrow.parquet as pq

from gap_replay.train import data as data_module
from gap_replay.train.data import rank_range, row_groups


@pytest.fixture
def grouped(tmp_path):
    """3 shards of 20 documents each, in row groups of 4 (5 per shard)."""
    texts = [f"doc {i} " + "y" * (i * 5 % 17) for i in range(60)]
    for shard in range(3):
        batch = documents_to_batch(make_document(id=f"replay:g:{i}", source="replay", text=texts[i])
                                   for i in range(shard * 20, shard * 20 + 20))
        pq.write_table(pa.Table.from_batches([batch]), tmp_path / f"part-{shard:05d}-of-00003.parquet",
                       row_group_size=4)
    files = shard_files(tmp_path)
    assert [group.rows for group in row_groups(files)] == [4] * 15
    return files, texts


@pytest.fixture
def read_log(monkeypatch):
    log: list[tuple[str, int]] = []
    monkeypatch.setattr(data_module, "READ_LOG", log)
    return log


def test_each_rank_reads_only_the_row_groups_of_its_contiguous_range(grouped, read_log):
    files, texts = grouped
    covered = []
    for rank in range(4):
        read_log.clear()
        start, stop = rank_range(60, rank, 4)
        assert (start, stop) == (rank * 15, rank * 15 + 15)
        packed = list(PackedSequences(files, byte_tokens, seq_len=16, eod_id=EOD, bos_id=BOS, rank=rank,
                                      world_size=4, keep_partial=True))
        mine = [token for text in texts[start:stop] for token in [BOS] + list(text.encode()) + [EOD]]
        assert [token for sequence in packed for token in sequence] == mine
        # Row groups g hold documents [4g, 4g + 4): the rank reads those overlapping [start, stop), each once.
        assert [(files.index(path), group) for path, group in read_log] == \
            [(g // 5, g % 5) for g in range(start // 4, (stop - 1) // 4 + 1)]
        covered += texts[start:stop]
    assert covered == texts


def test_resume_opens_the_row_group_of_the_position_and_nothing_before(grouped, read_log):
    files, _ = grouped
    make = lambda: BatchStream(files, byte_tokens, 16, EOD, micro_batch_size=2, rank=1, world_size=2,
                               tokenize_batch=3, bos_id=BOS)
    reference = _batches(make(), 12)
    first = make()
    head = _batches(first, 7)
    state = first.state_dict()
    assert state["document"] > 34  # well inside rank 1's range [30, 60)
    read_log.clear()
    resumed = make()
    resumed.load_state_dict(state)
    assert head + _batches(resumed, 5) == reference
    groups = row_groups(files)
    holding = next(g for g in groups if g.first <= state["document"] < g.first + g.rows)
    assert read_log[0] == (holding.file, holding.group)  # the first row group read holds the position


def test_a_position_from_the_strided_layout_is_refused(shards):
    files, _ = shards
    stream = BatchStream(files, byte_tokens, 16, EOD, micro_batch_size=2)
    with pytest.raises(ValueError, match="every n-th document"):
        stream.load_state_dict({"epoch": 0, "document": 3, "offset": 0})
