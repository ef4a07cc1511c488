"""The mixer's arithmetic, without Spark."""

import random

import pytest

from gap_replay.core.config import ConfigError
from gap_replay.mixer.settings import MixConfig
from gap_replay.mixer import plan as planning


def test_probabilistic_rounding_of_upsampled_papers():
    rng = random.Random(0)
    weight = planning.Plan("weight", weight=1.0)
    counts = [planning.copies(weight, rng.randrange(planning.U_RANGE), "x", base=1 + 1.3) for _ in range(20_000)]
    assert set(counts) == {2, 3}  # 2.3 rounds to 2 or 3 ...
    assert abs(counts.count(3) / len(counts) - 0.3) < 0.015  # ... with probabilities 0.7 / 0.3
    assert planning.copies(weight, 0, "x", base=1.0) == 1
    assert planning.copies(planning.Plan("weight", weight=0.0), 0, "x", base=3.0) == 0


def test_prefix_cut_is_the_closest_prefix():
    shift = planning.BUCKET_SHIFT
    documents = [(5 << shift | 1, "b", 100), (5 << shift | 1, "a", 100), (5 << shift | 9, "c", 50)]
    # 1,000 tokens before this bucket; remainder 1,120: a (1,100) is closer than a+b (1,200).
    assert planning.cut_bucket(documents, 5, 1120, 1000) == (5 << shift | 1, "b")
    # remainder 1,180: a+b (1,200) is closer; the bound is the next document, c.
    assert planning.cut_bucket(documents, 5, 1180, 1000) == (5 << shift | 9, "c")
    # remainder 1,240: everything in the bucket; the bound is the next bucket's start.
    assert planning.cut_bucket(documents, 5, 1240, 1000) == (6 << shift, "")
    assert planning.crossing_bucket({3: 500, 5: 600, 9: 10}, 1000) == (5, 500)


def test_prefix_plans_hit_the_target_within_half_a_document():
    rng = random.Random(1)
    documents = [(rng.randrange(planning.U_RANGE), f"replay:{i}", rng.randint(50, 150)) for i in range(3000)]
    total = sum(tokens for _, _, tokens in documents)
    for target in (1_234, 20_000, total, total + 5_555, 3 * total + 17):
        step = planning.prefix_step(target, total)
        histogram = {}
        for u, _, tokens in documents:
            histogram[u >> planning.BUCKET_SHIFT] = histogram.get(u >> planning.BUCKET_SHIFT, 0) + tokens
        bound = None
        if step.remainder:
            bucket, before = planning.crossing_bucket(histogram, step.remainder)
            bound = planning.cut_bucket([d for d in documents if d[0] >> planning.BUCKET_SHIFT == bucket],
                                        bucket, step.remainder, before)
        plan = planning.prefix_plan(step, target, bound)
        got = sum(planning.copies(plan, u, doc_id) * tokens for u, doc_id, tokens in documents)
        assert abs(got - target) <= 75, (target, got)


def test_replay_target_is_its_share_of_the_final_mixture():
    mix = MixConfig(replay_share=0.01)
    target = planning.replay_target(mix, 99_000)
    assert target == 1000 and target / (99_000 + target) == pytest.approx(0.01)
    assert planning.replay_target(MixConfig(replay_share=0.0), 99_000) == 0
    assert planning.replay_target(MixConfig(target_tokens={"replay": 77}), 99_000) == 77


def test_the_replay_sample_rate_a_plan_needs():
    U = planning.U_RANGE
    prefix = planning.Plan("prefix", full=0, bound=(U // 4, "replay:c4:0a"), target_tokens=10)
    needed = planning.rate_needed(prefix)
    # Rounded up to four digits, and the threshold of that rate keeps the bound's u (ids below it share it).
    assert 0.25 < needed <= 0.2501 and int(needed * U) >= U // 4 + 1
    assert planning.rate_needed(planning.Plan("prefix", full=0, bound=(U // 4, ""), target_tokens=10)) == 0.25
    assert planning.rate_needed(planning.Plan("prefix", full=0, bound=(12_345, "x"), target_tokens=1)) >= 12_346 / U
    assert planning.rate_needed(planning.Plan("prefix", full=1, bound=(5, "x"), target_tokens=10)) == 1.0
    assert planning.rate_needed(planning.Plan("prefix", full=0, bound=None, target_tokens=0)) == 0.0
    assert planning.rate_needed(planning.Plan("prefix", full=0, bound=(U, ""), target_tokens=10)) == 1.0
    # A sample short of the target: the rate that holds it in proportion; none short when read in full.
    assert planning.sample_shortfall(0.1, 1000, 250) == pytest.approx(0.4)
    assert planning.sample_shortfall(0.1, 1000, 0) == 1.0 and planning.sample_shortfall(0.5, 1000, 100) == 1.0
    assert planning.sample_shortfall(0.1, 1000, 1000) is None and planning.sample_shortfall(1.0, 1000, 10) is None


def test_weight_plans_and_papers_targets():
    mix = MixConfig(weights={"guidelines": 2.0}, target_tokens={"pubmed_papers": 3000})
    assert planning.weight_plan("guidelines", mix, 0).weight == 2.0
    assert planning.weight_plan("pubmed_abstracts", mix, 0).weight == 1.0
    papers = planning.weight_plan("pubmed_papers", mix, 1500 * planning.BASE_SCALE)
    assert papers.weight == 2.0 and papers.target_tokens == 3000
    assert planning.needs_prefix("replay", mix) and not planning.needs_prefix("pubmed_papers", mix)
    assert planning.needs_prefix("guidelines", MixConfig(target_tokens={"guidelines": 10}))


def test_shard_counts():
    assert planning.shard_count(0, 0, 100, 1000) == 1
    assert planning.shard_count(250, 10, 100, 1000) == 3
    assert planning.shard_count(250, 10_500, 100, 1000) == 11
    assert planning.shard_count(250, 10_500, 100, 0) == 3


@pytest.mark.parametrize("change, message", [
    ({"weights": {"replay": 1.0}}, "mix.weights.replay"),
    ({"weights": {"guidelines": -1.0}}, "mix.weights.guidelines"),
    ({"target_tokens": {"books": 5}}, "mix.target_tokens.books"),
    ({"replay_share": 1.0}, "mix.replay_share"),
    ({"shard_tokens": -1}, "mix.shard_tokens"),
    ({"tokenizer_vocab_size": 10}, "mix.tokenizer_vocab_size"),
])
def test_invalid_settings_are_named(change, message):
    with pytest.raises(ConfigError, match=message):
        MixConfig(**change).validate()
