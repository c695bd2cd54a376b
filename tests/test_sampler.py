"Property-based tests of the hybrid batch sampler on random parallel datasets, and the two-process distributed check."
import json, os, subprocess, sys
from pathlib import Path

import pytest
from datasets import Dataset, DatasetDict
from hypothesis import HealthCheck, given, settings, strategies as st
from scipy.stats import binom

from hybrid_nli.core import HybridNLIError
from hybrid_nli.sampler import build_sampler, select_strategy, strategy_alpha

LANGS = ['en', 'de', 'ru', 'zh']


@st.composite
def parallel_pairs(draw):
    "Random `training_pairs`-shaped data: one row per qid per sub-dataset, texts that sometimes repeat."
    langs = draw(st.lists(st.sampled_from(LANGS), min_size=2, max_size=4, unique=True))
    n_q = draw(st.integers(4, 40))
    vocab = draw(st.integers(2, 60))  # small vocabularies force duplicate texts
    text = st.integers(0, vocab).map(lambda i: f't{i}')
    out = {}
    for x in langs:
        for y in langs:
            qids = draw(st.lists(st.integers(0, n_q), unique=True, max_size=n_q))
            name = f'xx_{x}' if x == y else f'xy_{x}_{y}'
            out[name] = Dataset.from_dict(dict(anchor=[f'{x}:' + draw(text) for _ in qids],
                                               positive=[f'{y}:' + draw(text) for _ in qids],
                                               qid=[str(q) for q in qids], lang=[x]*len(qids),
                                               passage_lang=[y]*len(qids)))
    return DatasetDict(out)


def batches_of(pairs, alpha, bs, seed):
    rows = [r for k in pairs for r in pairs[k].select_columns(['qid', 'lang', 'passage_lang']).to_list()]
    return rows, list(build_sampler(pairs, alpha, bs, seed))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=parallel_pairs(), alpha=st.sampled_from([0.0, 0.25, 0.5, 0.75, 1.0, None]), bs=st.integers(1, 4),
       seed=st.integers(0, 2**16))
def test_batch_invariants(pairs, alpha, bs, seed):
    rows, batches = batches_of(pairs, alpha, bs, seed)
    seen = set()
    for b in batches:
        assert len(b) == bs
        kinds = {(rows[i]['lang'], rows[i]['passage_lang']) for i in b}
        assert len(kinds) == 1, 'one language (X-X) or one ordered pair (X-Y) per batch'
        assert len({rows[i]['qid'] for i in b}) == len(b), 'no two rows share a parallel group'
        assert seen.isdisjoint(b), 'no sample repeats within an epoch'
        seen.update(b)
        x, y = kinds.pop()
        if alpha == 1.0: assert x == y
        if alpha == 0.0: assert x != y
    assert batches == batches_of(pairs, alpha, bs, seed)[1], 'same seed => same batches'


@pytest.mark.parametrize('alpha', [0.1, 0.25, 0.5, 0.75, 0.9])
def test_xx_share_within_binomial_interval(alpha):
    n = 400
    pairs = DatasetDict({name: Dataset.from_dict(dict(anchor=[f'{name}a{i}' for i in range(n)],
                                                      positive=[f'{name}p{i}' for i in range(n)]))
                         for name in ['xx_en', 'xx_de', 'xy_en_de', 'xy_de_en']})
    batches = list(build_sampler(pairs, alpha, batch_size=4, seed=3))
    xx = sum(b[0] < 2*n for b in batches)
    lo, hi = binom.interval(0.99, len(batches), alpha)
    assert lo <= xx <= hi, (xx, len(batches), alpha)


def test_alpha_one_is_xx_and_zero_is_xy():
    pairs = DatasetDict({name: Dataset.from_dict(dict(anchor=[f'{name}a{i}' for i in range(50)],
                                                      positive=[f'{name}p{i}' for i in range(50)]))
                         for name in ['xx_en', 'xx_de', 'xy_en_de', 'xy_de_en']})
    def texts(p, alpha):
        flat = [r['anchor'] for k in p for r in p[k]]
        return [[flat[i] for i in b] for b in build_sampler(p, alpha, 5, seed=7)]
    assert texts(pairs, 1.0) == texts(select_strategy(pairs, 'xx'), strategy_alpha('xx'))
    assert texts(pairs, 0.0) == texts(select_strategy(pairs, 'xy'), strategy_alpha('xy'))


def test_bad_strategy_values():
    with pytest.raises(HybridNLIError, match='alpha must be a probability'): strategy_alpha('hybrid', -0.1)
    with pytest.raises(HybridNLIError, match='unknown strategy'): strategy_alpha('both')


def test_two_processes_draw_the_same_sub_dataset(tmp_path):
    "Under torchrun (2 CPU processes, gloo) every rank's batch at every step comes from the same sub-dataset."
    torchrun = Path(sys.executable).with_name('torchrun')
    out = tmp_path/'steps.json'
    env = {**os.environ, 'OMP_NUM_THREADS': '1'}
    subprocess.run([str(torchrun), '--nproc_per_node', '2', '--master_port', '29517',
                    str(Path(__file__).with_name('dist_sampler.py')), str(out)],
                   check=True, env=env, timeout=300)
    steps = json.loads(out.read_text())
    assert len(steps['0']) == len(steps['1']) > 10
    assert steps['0'] == steps['1']
    assert len(set(steps['0'])) > 2, 'several sub-datasets were drawn'
