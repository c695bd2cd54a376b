"Retrieval metrics against plain-Python references, the embedding cache, bad retrieval sets and the bootstrap."
import math

import numpy as np
import pytest
import torch
from datasets import Dataset, DatasetDict
from hypothesis import given, settings, strategies as st

from hybrid_nli.core import HybridNLIError, text_hash
from hybrid_nli.embeddings import EmbeddingCache, encode_cached, encoder_fingerprint
from hybrid_nli.retrieval import (RetrievalResult, ap_reference, check_retrieval, claims_table, evaluate_rankings,
                                  ranking_stats, retrieval_problems, retrieval_subset)
from hybrid_nli.stats import bootstrap_ci, paired_bootstrap


def toy(questions, candidates):
    "Retrieval DatasetDict from (lang, qid) questions and (lang, sentence, qids) candidates."
    return DatasetDict(
        questions=Dataset.from_dict(dict(lang=[l for l, _ in questions], qid=[q for _, q in questions],
                                         question=[f'{l}:{q}?' for l, q in questions])),
        candidates=Dataset.from_dict(dict(lang=[c[0] for c in candidates], sentence=[c[1] for c in candidates],
                                          context=[f'ctx {c[1]}' for c in candidates],
                                          qids=[list(c[2]) for c in candidates])))


def ref_order(scores, relevant):
    "Pessimistic order by the definition: score descending, irrelevant first among ties, then pool order."
    return sorted(range(len(scores)), key=lambda j: (-scores[j], j in relevant, j))


def same(a, b, tol=1e-9):
    a, b = np.asarray(a, float), np.asarray(b, float)
    assert a.shape == b.shape
    assert (np.isnan(a) == np.isnan(b)).all(), (a, b)
    assert np.nanmax(np.abs(a - b), initial=0) <= tol, (a, b)


# --- hand-computed rankings ---------------------------------------------------------------------------------------

@pytest.mark.parametrize('scores, rel, ap', [
    ([0.9, 0.5, 0.1], [0], 1.0),                    # relevant first
    ([0.9, 0.5, 0.1], [2], 1/3),                    # relevant last
    ([0.9, 0.5, 0.1, 0.0], [0, 2], (1 + 2/3)/2),    # two relevant at ranks 1 and 3
    ([0.1, 0.5, 0.9, 0.7], [0, 1], (1/3 + 2/4)/2),  # two relevant at ranks 3 and 4
    ([0.5, 0.5, 0.5], [0], 1/3),                    # three-way tie: the relevant one ranks last (pessimistic)
    ([0.5, 0.5, 0.5], [2], 1/3),                    # ... whatever its pool position
    ([0.5, 0.5, 0.5], [0, 1], (1/2 + 2/3)/2),       # two relevant in a tie with one irrelevant: ranks 2 and 3
    ([0.5, 0.5, 0.1], [0, 1], 1.0),                 # tie between relevant ones only: no penalty
    ([0.3, 0.8], [], math.nan),                     # nothing relevant: undefined
])
def test_hand_rankings(scores, rel, ap):
    R = torch.zeros(1, len(scores), dtype=torch.bool); R[0, rel] = True
    got = ranking_stats(torch.tensor([scores]), R)['ap'][0]
    same([got], [ap], 1e-12)
    same([ap_reference(scores, set(rel))], [ap], 1e-12)


def test_no_relevant_ranks_and_best():
    st_ = ranking_stats(torch.tensor([[0.3, 0.8], [0.3, 0.8]]), torch.tensor([[False, False], [True, False]]))
    assert st_['first'].tolist() == [0, 2] and st_['last'].tolist() == [0, 2] and st_['best'].tolist() == [-1, 0]


# --- the vectorised ranking against the plain-Python definition ---------------------------------------------------

@settings(max_examples=60, deadline=None)
@given(st.integers(1, 8), st.integers(1, 30), st.integers(0, 2**31 - 1), st.integers(1, 10))
def test_ranking_stats_matches_reference(nq, nc, seed, levels):
    rng = np.random.default_rng(seed)
    S = rng.integers(0, levels, (nq, nc)).astype(np.float32)/levels  # few distinct values: many ties
    R = rng.random((nq, nc)) < rng.random((nq, 1))*0.4
    out = ranking_stats(torch.from_numpy(S), torch.from_numpy(R))
    for i in range(nq):
        rel = set(np.flatnonzero(R[i]).tolist())
        same([out['ap'][i]], [ap_reference(S[i].tolist(), rel)])
        order = ref_order(S[i].tolist(), rel)
        ranks = [k for k, j in enumerate(order, 1) if j in rel]
        assert out['n_rel'][i] == len(rel)
        assert (out['first'][i], out['last'][i]) == ((ranks[0], ranks[-1]) if ranks else (0, 0))
        assert out['best'][i] == (order[ranks[0] - 1] if ranks else -1)


def random_set(rng, langs=('en', 'de', 'zh'), n_q=12, n_noise=5, dim=4, levels=None, drop=0.0):
    "A random parallel retrieval set with shared answers, distractors and (optionally) missing translations."
    qs, cs = [], []
    for l in langs:
        ids = [f'q{i}' for i in range(n_q) if rng.random() >= drop or l == langs[0]]
        qs += [(l, q) for q in ids]
        pos = 0
        while pos < len(ids):  # answer sentences shared by 1-3 consecutive questions
            k = int(rng.integers(1, 4)); cs.append((l, f'{l}{pos}', ids[pos:pos + k])); pos += k
        cs += [(l, f'{l}-noise{j}', []) for j in range(n_noise)]
    ds = toy(qs, cs)
    Q, C = rng.normal(size=(len(qs), dim)), rng.normal(size=(len(cs), dim))
    if levels: Q, C = np.round(Q*levels)/levels, np.round(C*levels)/levels  # exact ties
    return ds, Q.astype(np.float32), C.astype(np.float32)


def reference_evaluation(ds, Q, C):
    "Brute force: every setting and bias value by loops over the definition."
    S = (torch.from_numpy(Q) @ torch.from_numpy(C).T).tolist()  # the same float32 scores the fast path ranks
    ql, qid = list(ds['questions']['lang']), list(ds['questions']['qid'])
    cl, cq = list(ds['candidates']['lang']), list(ds['candidates']['qids'])
    langs = list(dict.fromkeys(cl + ql))
    multi, cross, rd, own = [], [], [], []
    for i in range(len(ql)):
        rel = {j for j in range(len(cl)) if qid[i] in cq[j]}
        multi.append(ap_reference(S[i], rel))
        row = []
        for y in langs:
            pool = [j for j in range(len(cl)) if cl[j] == y]
            row.append(ap_reference([S[i][j] for j in pool], {k for k, j in enumerate(pool) if j in rel}))
        cross.append(row)
        order = ref_order(S[i], rel)
        ranks = [k for k, j in enumerate(order, 1) if j in rel]
        rd.append(ranks[-1] - ranks[0] if len(ranks) >= 2 else math.nan)
        own.append(float(cl[order[ranks[0] - 1]] == ql[i]) if ranks else math.nan)
    return langs, np.array(multi), np.array(cross), np.array(rd), np.array(own)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**31 - 1), st.sampled_from([None, 2]), st.sampled_from([0.0, 0.3]), st.sampled_from([3, 1000]))
def test_evaluate_rankings_matches_brute_force(seed, levels, drop, block):
    ds, Q, C = random_set(np.random.default_rng(seed), levels=levels, drop=drop)
    res = evaluate_rankings(Q, C, ds, block=block)
    langs, multi, cross, rd, own = reference_evaluation(ds, Q, C)
    assert res.langs == langs
    same(res.multi, multi); same(res.cross, cross); same(res.rank_distance, rd); same(res.own_first, own)
    m = res.matrix().to_numpy()
    ql = np.array(ds['questions']['lang'])
    for x, lx in enumerate(langs):
        for y in range(len(langs)):
            vals = cross[ql == lx, y]
            same([m[x, y]], [np.nanmean(vals) if np.isfinite(vals).any() else np.nan])
    s = res.summary()
    same([s['multilingual'], s['monolingual'], s['rank_distance_norm']],
         [np.nanmean(multi), np.nanmean([cross[i, langs.index(l)] for i, l in enumerate(ql)]), np.nanmean(rd)/len(C)])
    same([s['cross-lingual']], [np.nanmean(m[~np.eye(len(langs), dtype=bool)])])
    assert s['undefined_ap'] == int(np.isnan(cross).sum())


def test_undefined_ap_is_left_out():
    ds = toy([('en', 'a'), ('de', 'c')], [('en', 'A', ['a']), ('de', 'x', []), ('en', 'C', ['c'])])
    res = evaluate_rankings(np.eye(3, dtype=np.float32)[:2], np.eye(3, dtype=np.float32), ds)
    assert np.isnan(res.cross[1, res.langs.index('de')])        # de:c has no German answer
    assert res.summary()['undefined_ap'] == 2                   # en:a in de too
    assert not np.isnan(res.summary()['monolingual'])


# --- bad input ----------------------------------------------------------------------------------------------------

def test_question_without_candidate_is_reported():
    ds = toy([('en', 'a'), ('de', 'b')], [('en', 'A', ['a'])])
    assert retrieval_problems(ds, 'xquad_r') == ['xquad_r: question lang=de qid=b: no candidate answers it']
    with pytest.raises(HybridNLIError, match=r'1 relevance problem\(s\) in xquad_r, e.g. question lang=de qid=b'):
        check_retrieval(ds, 'xquad_r')
    with pytest.raises(HybridNLIError, match='qid=b'):
        evaluate_rankings(np.ones((2, 2), np.float32), np.ones((1, 2), np.float32), ds, name='xquad_r')


def test_candidate_naming_absent_question_is_reported():
    ds = toy([('en', 'a')], [('en', 'A', ['a']), ('zh', 'Z', ['a', 'ghost'])])
    with pytest.raises(HybridNLIError) as e: check_retrieval(ds, 'mlqa_r')
    assert 'mlqa_r' in str(e.value) and 'candidate #1 lang=zh: qid=ghost names no question' in str(e.value)
    assert '\n' not in str(e.value)
    with pytest.warns(UserWarning, match='ghost'):
        res = evaluate_rankings(np.ones((1, 2), np.float32), np.ones((2, 2), np.float32), ds, strict=False)
    assert res.multi.tolist() == [1.0]


def test_embedding_count_mismatch():
    ds = toy([('en', 'a')], [('en', 'A', ['a'])])
    with pytest.raises(HybridNLIError, match='embeddings'):
        evaluate_rankings(np.ones((2, 2), np.float32), np.ones((1, 2), np.float32), ds)


def test_subset_of_real_data_is_consistent(data):
    from hybrid_nli.data import load_retrieval
    for name, langs in (('xquad_r', ['en', 'de']), ('mlqa_r', ['en', 'zh'])):
        sub = retrieval_subset(load_retrieval(name, langs=langs), 30)
        assert check_retrieval(sub, name) == []
        assert set(sub['questions']['lang']) == set(langs)


# --- embedding cache ----------------------------------------------------------------------------------------------

class FakeEncoder(torch.nn.Module):
    "Deterministic 'encoder': a vector from the hash of prompt + text; counts what it encodes."
    prompts = {'query': 'query: ', 'passage': 'passage: '}
    def __init__(self):
        super().__init__(); self.lin = torch.nn.Linear(3, 3); self.seen = []
    def get_embedding_dimension(self): return 8
    def encode(self, texts, prompt_name=None, batch_size=32, convert_to_numpy=True, show_progress_bar=False):
        self.seen += list(texts)
        p = self.prompts.get(prompt_name, '')
        return np.stack([np.random.default_rng(int(text_hash(p, t)[:8], 16)).normal(size=8)
                         for t in texts]).astype(np.float32)


def test_encode_cached_encodes_once(tmp_path):
    m = FakeEncoder()
    texts = ['a', 'b', 'a', 'c']
    out = encode_cached(m, texts, 'passage', cache=tmp_path)
    assert sorted(m.seen) == ['a', 'b', 'c'] and out.shape == (4, 8) and out.dtype == np.float32
    np.testing.assert_array_equal(out, m.encode(texts, 'passage'))
    m.seen = []
    again = encode_cached(m, ['c', 'a', 'd'], 'passage', cache=tmp_path)
    assert m.seen == ['d']
    np.testing.assert_array_equal(again[:2], out[[3, 0]])
    encode_cached(m, ['a'], 'query', cache=tmp_path)
    assert m.seen == ['d', 'a']                                  # another prompt is another key
    assert encode_cached(m, [], 'query', cache=tmp_path).shape == (0, 8)
    with pytest.raises(HybridNLIError, match="no prompt 'title'"): encode_cached(m, ['a'], 'title', cache=tmp_path)
    folder = tmp_path/'embeddings'/encoder_fingerprint(m)
    assert all(p.suffix == '.npz' for p in folder.iterdir()), 'no temporary leftovers'
    assert len(EmbeddingCache(encoder_fingerprint(m), tmp_path)) == 5


def test_fingerprint_follows_weights_and_prompts():
    m = FakeEncoder(); fp = encoder_fingerprint(m)
    assert encoder_fingerprint(m) == fp
    with torch.no_grad(): m.lin.bias[0] += 1e-7
    assert encoder_fingerprint(m) != fp
    m2 = FakeEncoder(); m2.load_state_dict(m.state_dict()); m2.prompts = {'query': 'q: '}
    assert encoder_fingerprint(m2) != encoder_fingerprint(m)


def test_cache_float16_and_bad_shard(tmp_path):
    c = EmbeddingCache('fp', tmp_path, dtype='float16')
    v = np.random.default_rng(0).normal(size=(3, 5)).astype(np.float32)
    c.put(['k1', 'k2', 'k3'], v)
    assert c.put(['k1'], v[:1]) is None                          # nothing new, nothing written
    got = EmbeddingCache('fp', tmp_path).get(['k3', 'k1'])
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, v[[2, 0]], rtol=1e-3, atol=1e-3)
    with pytest.raises(KeyError): c.get(['nope'])
    with pytest.raises(HybridNLIError, match="unknown embedding dtype"): EmbeddingCache('fp', tmp_path, dtype='int8')
    (tmp_path/'embeddings'/'fp'/'broken.npz').write_bytes(b'not a zip')
    with pytest.raises(HybridNLIError, match='broken.npz: unreadable embedding shard'): EmbeddingCache('fp', tmp_path)


def test_real_encoder_cache_matches_direct_encoding(encoder, tmp_path):
    texts = ['Wo liegt Paris?', 'Paris liegt in Frankreich.', '巴黎在法国。']
    cached = encode_cached(encoder, texts, 'query', cache=tmp_path)
    np.testing.assert_allclose(cached, encoder.encode(texts, prompt_name='query'), atol=1e-5)
    np.testing.assert_array_equal(encode_cached(encoder, texts, 'query', cache=tmp_path), cached)


# --- bootstrap ----------------------------------------------------------------------------------------------------

def test_bootstrap_reproducible_and_covers_mean():
    x = np.random.default_rng(3).random(200)
    a, b = bootstrap_ci(x, seed=7), bootstrap_ci(x, seed=7)
    assert a == b and a['lo'] < a['mean'] < a['hi'] and a['n'] == 200
    assert math.isnan(bootstrap_ci([np.nan, np.nan])['mean'])


def test_paired_bootstrap_uses_common_questions_and_clusters():
    rng = np.random.default_rng(4)
    base = rng.random(400); groups = np.repeat(np.arange(100), 4)
    a, b = base + 0.05 + rng.normal(0, 0.01, 400), base.copy()
    b[0] = np.nan                                                 # left out of both
    d = paired_bootstrap(a, b, groups)
    assert d['n'] == 399 and d['lo'] < d['diff'] < d['hi'] and d['p'] < 0.01
    assert abs(d['diff'] - np.mean((a - b)[1:])) < 1e-12
    # unpaired intervals overlap while the paired difference is clearly positive
    ca, cb = bootstrap_ci(a, groups), bootstrap_ci(b, groups)
    assert ca['lo'] < cb['hi'] and d['lo'] > 0


def test_full_sets_have_no_relevance_problems(data):
    from hybrid_nli.data import load_retrieval
    for name in ('xquad_r', 'mlqa_r'): assert retrieval_problems(load_retrieval(name), name) == []


# --- claims table -------------------------------------------------------------------------------------------------

def fake_result(multi, mono, cross, rd, seed, n=200, langs=('en', 'de')):
    "A RetrievalResult with the given means plus question noise (independent per model when seeds differ)."
    rng = np.random.default_rng(seed)
    noise = lambda: rng.normal(0, 0.02, n)
    k = len(langs); own = np.arange(n) % k
    cross_m = np.full((n, k), cross) + noise()[:, None]; cross_m[np.arange(n), own] = mono + noise()
    return RetrievalResult(list(langs), np.array(langs)[own], np.array([f'q{i//k}' for i in range(n)]), multi + noise(),
                           cross_m, rd + 100*noise(), np.ones(n), np.full(n, 1/k), 500)


def test_claims_table_verdicts():
    res = {'xx': fake_result(0.40, 0.80, 0.60, 50, 1), 'xy': fake_result(0.45, 0.70, 0.70, 40, 2),
           'hybrid': fake_result(0.50, 0.80, 0.70, 60, 3)}
    t = claims_table(res, n=500)
    assert t.verdict.tolist() == ['holds']*6 + ['contradicted']   # hybrid has *more* rank distance here
    row = t.iloc[0]
    assert row.lo < row['diff'] < row.hi and abs(row.a_value - row.b_value - row['diff']) < 1e-9
    t2 = claims_table(res, [('xx equals xy multilingually', 'multilingual', 'xx', 'xy', '≈')], margin=0.001, n=500)
    assert t2.verdict.tolist() == ['contradicted']
    with pytest.raises(HybridNLIError, match='unknown setting'):
        claims_table(res, [('bad', 'recall', 'xx', 'xy', '>')])
    with pytest.raises(HybridNLIError, match='unknown relation'):
        claims_table(res, [('bad', 'multilingual', 'xx', 'xy', '>=')])
