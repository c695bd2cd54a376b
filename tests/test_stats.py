"The hierarchical bootstrap's coverage on a fast simulation (the notebook's `#| slow` cell runs 1000 experiments)."
import numpy as np
import pytest
from hybrid_nli.stats import coverage, hierarchical_bootstrap, simulate_paired


def test_coverage_when_seeds_dominate():
    "Three seeds whose spread dominates: the hierarchical interval covers; the plain two-level percentile does not."
    c = coverage(200, n=300, seed=7, sd_seed=0.03)
    assert 0.90 <= c['hierarchical'] <= 0.99, c
    assert c['plain two-level percentile'] < 0.90, c   # why the corrections are there
    assert c['question level'] < 0.75, c                 # and why resampling questions alone is not enough


def test_coverage_binary():
    "0/1 outcomes like the XNLI comparisons (seed effects on the logit scale)."
    c = coverage(150, n=300, seed=3, binary=True, sd_seed=0.05, sd_cluster=1.5, mean=0.05, clusters=300)
    assert 0.90 <= c['hierarchical'] <= 0.995, c


def test_seed_level_needs_two_seeds():
    d, s, g = simulate_paired(np.random.default_rng(0), seeds=1)
    h = hierarchical_bootstrap(d, s, g)
    assert np.isnan(h['lo']) and np.isnan(h['p']) and h['q_lo'] < h['diff'] < h['q_hi']


@pytest.mark.parametrize('shift', [0.0, 0.01, 0.03])
def test_p_agrees_with_interval(shift):
    d, s, g = simulate_paired(np.random.default_rng(1), sd_seed=0.01, mean=shift)
    h = hierarchical_bootstrap(d, s, g)
    assert (h['p'] < 0.05) == (not h['lo'] <= 0 <= h['hi'])
    assert h['lo'] < h['diff'] < h['hi']
