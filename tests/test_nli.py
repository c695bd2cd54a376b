"NLI stage on the real bundled encoder and real MultiNLI / XNLI data (issue 6 acceptance)."
import copy
import numpy as np, pytest, torch
from scipy.stats import binomtest
from hybrid_nli.core import HybridNLIError
from hybrid_nli.data import load_mnli_sample, load_xnli
from hybrid_nli.encoder import load_encoder
from hybrid_nli.nli import (NLIClassifier, accuracy_table, compare_nli, crosslingual_matrix, crosslingual_nli,
                            evaluate_nli, fit_nli_head, load_head, predict_proba)
from hybrid_nli.embeddings import encoder_fingerprint


@pytest.fixture(scope='module')
def encoder(): return load_encoder()


@pytest.fixture(scope='module')
def fitted(encoder, tmp_path_factory):
    out = tmp_path_factory.mktemp('nli')/'head'
    clf, log = fit_nli_head(encoder, load_mnli_sample(), load_xnli('dev', 'en'), out, epochs=10, seed=0)
    return clf, log, out


def test_head_learns_mnli_and_transfers_to_en_dev(fitted):
    _, log, _ = fitted
    assert log.train_acc.max() > 0.65      # 3-class chance is 1/3
    assert log.dev_acc.max() > 0.55        # XNLI English dev, never trained on


def test_saved_head_reloads_to_identical_predictions(encoder, fitted):
    clf, _, out = fitted
    dev = load_xnli('dev', 'en').select(range(200))
    head, _ = load_head(out, encoder_fingerprint(encoder))
    again = NLIClassifier(encoder, head, clf.cache)
    np.testing.assert_array_equal(again.predict_proba(dev['premise'], dev['hypothesis']),
                                  clf.predict_proba(dev['premise'], dev['hypothesis']))
    # fit_nli_head on an existing directory loads instead of retraining
    clf2, _ = fit_nli_head(encoder, load_mnli_sample(), load_xnli('dev', 'en'), out, clf.cache)
    np.testing.assert_array_equal(predict_proba(clf2.head, *[clf.embed(dev[c]) for c in ('premise', 'hypothesis')]),
                                  clf.predict_proba(dev['premise'], dev['hypothesis']))


def test_head_of_another_encoder_is_refused(encoder, fitted):
    _, _, out = fitted
    with pytest.raises(HybridNLIError, match='trained on encoder'):
        load_head(out, 'f'*24)
    other = copy.deepcopy(encoder)                      # the same encoder after one tiny update
    with torch.no_grad(): next(other.parameters()).add_(1e-3)
    with pytest.raises(HybridNLIError, match='trained on encoder'):
        fit_nli_head(other, load_mnli_sample(), load_xnli('dev', 'en'), out)


def test_zero_shot_xnli_and_crosslingual_pairs(fitted):
    clf, _, _ = fitted
    test = load_xnli('test', ['en', 'ru', 'sw']).filter(lambda r: r < 200, input_columns='row')
    preds = evaluate_nli(clf, test)
    acc = accuracy_table(preds)
    assert acc.loc['en', 'accuracy'] > acc.loc['sw', 'accuracy'] > 0.4, acc   # transfer degrades, stays above chance
    assert acc.loc['mean', 'lo'] <= acc.loc['mean', 'accuracy'] <= acc.loc['mean', 'hi']
    matrix, off = crosslingual_matrix(crosslingual_nli(clf, test))
    np.testing.assert_allclose(np.diag(matrix), acc.accuracy[matrix.index].to_numpy())
    assert 0.4 < off < np.diag(matrix).max()


def test_paired_comparison_of_two_heads(encoder, fitted):
    clf, _, _ = fitted
    test = load_xnli('test', 'en').select(range(300))
    other, _ = fit_nli_head(encoder, load_mnli_sample().shuffle(seed=0).select(range(300)),
                            load_xnli('dev', 'en').select(range(100)), cache=clf.cache, epochs=2, hidden=0, seed=1)
    r = compare_nli(evaluate_nli(clf, test), evaluate_nli(other, test))
    assert r['n'] == 300 and r['lo'] <= r['diff'] <= r['hi']
    a, b = evaluate_nli(clf, test).correct.to_numpy(), evaluate_nli(other, test).correct.to_numpy()
    assert (r['only_a'], r['only_b']) == (int((a & ~b).sum()), int((~a & b).sum()))
    assert r['mcnemar_p'] == pytest.approx(binomtest(r['only_a'], r['only_a'] + r['only_b']).pvalue)  # exact McNemar
    assert r['diff'] > 0                   # the full head beats one trained on 300 pairs for 2 epochs
