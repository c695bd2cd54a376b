"Attacks on real XNLI rows: offline import, segmentation, script-aware edits, code-mixing, wrappers, resuming, metrics."
import json, os, subprocess, sys
from collections import Counter, OrderedDict
from pathlib import Path

import numpy as np
import pytest
import regex
import unicodedata
from fontTools.unicodedata import script as unicode_script

from hybrid_nli.core import HybridNLIError
from hybrid_nli.data import XNLI_LANGS, load_mnli_sample, load_xnli
from hybrid_nli.attack import (CHAR_OPS, CachedNLIWrapper, CodeMixSwap, PlainNLIWrapper, ScriptCharSwap, SegmentedText,
                               _append_row, _muse, attack_row, attack_summary, char_attack, codemix_attack,
                               language_stopwords, read_attack_rows, run_attacks, script_alphabets, segment_words,
                               word_script)
from textattack.attack_results import SuccessfulAttackResult
from textattack.metrics import AttackQueries, AttackSuccessRate, WordsPerturbed


@pytest.fixture(scope='module')
def xnli():
    "The first 10 XNLI test rows of every language."
    ds = load_xnli('test')
    keys = list(zip(ds['lang'], ds['row']))
    return {l: ds.select([i for i, (ll, r) in enumerate(keys) if ll == l and r < 10]) for l in XNLI_LANGS}


@pytest.fixture(scope='module', autouse=True)
def one_thread():
    "Attack queries are small batches: one torch thread (robust when another process holds the second core)."
    import torch
    n = torch.get_num_threads(); torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope='module')
def nli(tiny_classifier):
    "(encode, classify) of a real tiny NLI classifier: bundled e5-small + softmax regression on 400 MultiNLI pairs."
    return tiny_classifier


def example(row):
    return OrderedDict(premise=row['premise'], hypothesis=row['hypothesis'])


def easy_row():
    "English test row 16, which the tiny classifier gets right by a small margin (see nbs/07_attack.ipynb)."
    return load_xnli('test', 'en')[16]


# --- offline import -----------------------------------------------------------------------------------------------

def test_import_offline_no_network_nothing_in_home(tmp_path):
    probe = '''
import json, os, socket, time
tried = []
def deny(*a, **k): tried.append(repr(a)[:80]); raise OSError("network disabled for this test")
socket.socket.connect = deny; socket.create_connection = deny; socket.getaddrinfo = deny
t = time.time()
import hybrid_nli.attack as A
A.segment_words("ฉันไม่ได้คุยกับเขา 我们谈得很好")   # PyThaiNLP and jieba load their data too
print(json.dumps(dict(tried=tried, seconds=time.time() - t, xdg=os.environ.get("XDG_CACHE_HOME"))))
'''
    home, cache = tmp_path/'home', tmp_path/'cache'; home.mkdir()
    drop = {'TA_CACHE_DIR', 'NLTK_DATA', 'XDG_CACHE_HOME', 'HF_HOME', 'MPLCONFIGDIR', 'PYTHAINLP_DATA',
            'XDG_CONFIG_HOME', 'HF_HUB_OFFLINE', 'TRANSFORMERS_OFFLINE', 'HF_DATASETS_OFFLINE'}
    env = {k: v for k, v in os.environ.items() if k not in drop} | {'HOME': str(home), 'HYBRID_NLI_CACHE': str(cache)}
    r = subprocess.run([sys.executable, '-c', probe], env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out['tried'] == [] and out['xdg'] is None and out['seconds'] < 120
    assert list(home.rglob('*')) == []
    assert (cache/'textattack'/'ta'/'post_install_check_3').exists()


# --- segmentation ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('lang', XNLI_LANGS)
def test_segmentation_real_sentences(xnli, lang):
    for text in list(xnli[lang]['premise']) + list(xnli[lang]['hypothesis']):
        words = segment_words(text)
        # nothing lost or invented
        assert ''.join(regex.findall(r'\w', ''.join(words))) == ''.join(regex.findall(r'\w', text))
        assert not any(unicodedata.category(w[0]).startswith('M') for w in words)  # marks stay in words
        if lang not in ('th', 'zh'):
            assert all(t in words for t in text.split() if regex.fullmatch(r'\w+', t))
            plain = [t for t in text.split() if regex.fullmatch(r'\w+', t)]
            if len(plain) == len(text.split()): assert ' '.join(words) == text  # joining gives the text back
    if lang in ('th', 'zh'):
        n = [len(segment_words(h)) for h in xnli[lang]['hypothesis']]
        assert min(n) >= 2 and np.mean(n) >= 3*np.mean([len(h.split()) for h in xnli[lang]['hypothesis']])


@pytest.mark.parametrize('text, words', [
    ('आदमी ने कहा।', ['आदमी', 'ने', 'कहा']),
    ('मैंने उससे दोबारा बात नहीं की है।', ['मैंने', 'उससे', 'दोबारा', 'बात', 'नहीं', 'की', 'है']),
    ('لَمْ أَتَحَدَّثْ مَعَهُ', ['لَمْ', 'أَتَحَدَّثْ', 'مَعَهُ']),
    ('ہماری بات چیت بہت اچھی رہی۔', ['ہماری', 'بات', 'چیت', 'بہت', 'اچھی', 'رہی']),
    ('می\u200cخواهم', ['می\u200cخواهم']),
    ('我们谈得很好。', ['我们', '谈得', '很', '好']),
    ("Don't say \"well-known\" -- l'homme, 1990!", ["Don't", 'say', 'well-known', "l'homme", '1990']),
])
def test_segmentation_examples(text, words):
    assert segment_words(text) == words


def test_thai_is_segmented():
    assert segment_words('ฉันไม่ได้คุยกับเขาอีกเลย') == ['ฉัน', 'ไม่', 'ได้', 'คุย', 'กับ', 'เขา', 'อีก', 'เลย']


def test_segmented_text_carries_words_through_swaps(xnli):
    row = xnli['zh'][0]
    t = SegmentedText(example(row))
    n_p = len(t.words_per_input[0])
    for i in range(n_p, t.num_words):
        s = t.replace_word_at_index(i, 'X' + t.words[i])
        assert type(s) is SegmentedText and s.num_words == t.num_words and s.words[i] == 'X' + t.words[i]
        assert s._text_input['premise'] == row['premise'] and s.words_per_input[0] == t.words_per_input[0]
    assert t.delete_word_at_index(n_p).num_words == t.num_words - 1


# --- character edits ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize('lang, word', [('ru', 'человек'), ('bg', 'разговаряли'), ('el', 'αναστατωμένος'),
                                        ('hi', 'आदमी'), ('ur', 'دوبارہ'), ('ar', 'أَتَحَدَّثْ'), ('th', 'โรงเรียน'),
                                        ('de', 'Gespräch'), ('zh', '谈论')])
def test_inserted_and_substituted_letters_come_from_the_words_script(lang, word):
    script = word_script(word)
    alphabet = script_alphabets(lang)[script]
    for op in ('insert', 'substitute'):
        cands = ScriptCharSwap(op, lang, n=20)._get_replacement_words(word)
        assert len(cands) >= 5
        for c in cands:
            added = Counter(c) - Counter(word)
            assert added and all(ch in alphabet and unicode_script(ch) == script for ch in added), (op, c)
    for op in CHAR_OPS:
        cands = ScriptCharSwap(op, lang, n=5)._get_replacement_words(word)
        assert cands == ScriptCharSwap(op, lang, n=5)._get_replacement_words(word)   # reproducible
        assert all(not unicodedata.category(c[0]).startswith('M') for c in cands)


def test_alphabets_are_the_languages_own():
    assert script_alphabets('ru')['Cyrl'] == 'абвгдежзийклмнопрстуфхцчшщъыьэюяё'
    assert set('ٹڈڑںے') <= set(script_alphabets('ur')['Arab']) and not set('ٹڈڑ') & set(script_alphabets('ar')['Arab'])


def test_char_attack_in_russian_adds_only_cyrillic(xnli, nli):
    wrapper = CachedNLIWrapper(*nli)
    for row in xnli['ru'].select(range(3)):
        r = char_attack(wrapper, 'ru', query_budget=40).attack(example(row), row['label'])
        before, after = r.original_result.attacked_text, r.perturbed_result.attacked_text
        assert after._text_input['premise'] == row['premise']
        for i in before.all_words_diff(after):
            if word_script(before.words[i]) == 'Cyrl':
                assert all(unicode_script(c) == 'Cyrl' for c in Counter(after.words[i]) - Counter(before.words[i]))


def test_stopwords():
    de = language_stopwords('de')
    assert {'und', 'Die', 'Ich', 'in'} <= de and 'Haus' not in de
    assert all(len(language_stopwords(l)) > 50 for l in XNLI_LANGS)
    with pytest.raises(HybridNLIError, match="no stopwords-iso list"): language_stopwords('xx')


# --- code-mixing ----------------------------------------------------------------------------------------------------

def test_codemix_candidates_come_from_muse():
    mix = CodeMixSwap('de', targets=['en', 'fr', 'zh'], per_lang=2)
    pivots = _muse('de', 'en', None)['haus'][:1]
    tr = mix.translations('haus')
    assert tr['en'] == pivots
    assert tr['fr'] == [w for p in pivots for w in _muse('en', 'fr', None).get(p, [])[:2]]
    assert mix.translations('Haus')['en'] == [pivots[0].capitalize()]
    with pytest.raises(HybridNLIError, match="no MUSE dictionary for 'ur'"): CodeMixSwap('ur')


# --- wrappers and attacks -------------------------------------------------------------------------------------------

def test_cached_wrapper_encodes_each_text_once(xnli, nli):
    en = xnli['en']
    cached, plain = CachedNLIWrapper(*nli), PlainNLIWrapper(*nli)
    q = [(en['premise'][0], h) for h in en['hypothesis'][:3]] * 2
    p = cached(q)
    assert p.shape == (6, 3) and cached.n_encoded == 4 and cached.n_queries == 6
    np.testing.assert_allclose(plain(q), p, atol=1e-4)
    assert plain.n_encoded == 12
    with pytest.raises(HybridNLIError, match='expected'): cached(['one column'])


@pytest.mark.parametrize('build', [char_attack, codemix_attack])
def test_attack_flips_easy_case_and_keeps_premise(xnli, nli, build):
    row = easy_row()
    wrapper = CachedNLIWrapper(*nli)
    assert wrapper([(row['premise'], row['hypothesis'])])[0].argmax() == row['label']
    r = build(wrapper, 'en', query_budget=100).attack(example(row), row['label'])
    assert isinstance(r, SuccessfulAttackResult) and r.perturbed_result.output != row['label']
    after = r.perturbed_result.attacked_text._text_input
    assert after['premise'] == row['premise'] and after['hypothesis'] != row['hypothesis']
    if build is codemix_attack:
        before, at = r.original_result.attacked_text, r.perturbed_result.attacked_text
        mix = CodeMixSwap('en')
        for i in before.all_words_diff(at): assert at.words[i] in mix._get_replacement_words(before.words[i])


def test_textattack_attacker_gets_segmented_words(xnli, nli):
    import textattack
    rows = xnli['th'].select(range(3))
    ds = textattack.datasets.Dataset([((r['premise'], r['hypothesis']), r['label']) for r in rows],
                                     input_columns=['premise', 'hypothesis'])
    atk = char_attack(CachedNLIWrapper(*nli), 'th', query_budget=20)
    results = textattack.Attacker(
        atk, ds, textattack.AttackArgs(num_examples=3, silent=True, disable_stdout=True)).attack_dataset()
    for r, row in zip(results, rows):
        at = r.original_result.attacked_text
        assert type(at) is SegmentedText and at.words_per_input[1] == segment_words(row['hypothesis'])
        assert r.perturbed_result.attacked_text._text_input['premise'] == row['premise']


def test_premise_only_attack_leaves_hypothesis(xnli, nli):
    row = easy_row()
    r = char_attack(CachedNLIWrapper(*nli), 'en', query_budget=60,
                    columns=('premise',)).attack(example(row), row['label'])
    after = r.perturbed_result.attacked_text._text_input
    assert after['hypothesis'] == row['hypothesis']
    with pytest.raises(HybridNLIError, match='non-empty subset'):
        char_attack(CachedNLIWrapper(*nli), 'en', columns=('label',))


# --- resumable runs and metrics -------------------------------------------------------------------------------------

def test_run_attacks_resumes(tmp_path, xnli, nli):
    rows5, out = xnli['de'].select(range(5)), tmp_path/'a.csv'
    atk = char_attack(CachedNLIWrapper(*nli), 'de', query_budget=30)
    real, calls = atk.attack, []
    def attack(*a):
        if len(calls) == 2: raise KeyboardInterrupt
        calls.append(1); return real(*a)
    atk.attack = attack
    with pytest.raises(KeyboardInterrupt): run_attacks(atk, rows5, out, 'char')
    first = out.read_text()
    out.write_text(first + 'char,de,2,1,"partial')                        # a write cut short by the kill
    atk.attack = lambda *a: (calls.append(1), real(*a))[1]
    rows = run_attacks(atk, rows5, out, 'char')
    assert len(calls) == 5 and rows['row'].tolist() == [0, 1, 2, 3, 4] and out.read_text().startswith(first)
    assert (rows['perturbed_premise'] == rows['premise']).all() and set(rows['lang']) == {'de'}
    run_attacks(atk, rows5, out, 'char'); assert len(calls) == 5            # nothing left to do
    run_attacks(atk, rows5.select(range(1)), out, 'other'); assert len(calls) == 6  # another attack name is another key


def test_bad_files_and_rows(tmp_path):
    bad = tmp_path/'x.csv'; bad.write_text('a,b\n1,2\n')
    with pytest.raises(HybridNLIError, match='not an attack result file'): read_attack_rows(bad)
    assert read_attack_rows(tmp_path/'none.csv').empty
    with pytest.raises(HybridNLIError, match="field 'premise': contains a line break"):
        _append_row(tmp_path/'y.csv', dict(lang='en', row=3, premise='a\nb'))


def test_summary_equals_textattack_metrics(xnli, nli):
    atk = char_attack(CachedNLIWrapper(*nli), 'en', query_budget=40)
    ex = xnli['en'].select(range(8))
    res = [atk.attack(example(e), e['label']) for e in ex]
    import pandas as pd
    rows = pd.DataFrame([attack_row(r, 'char', e, 0.0, 40) for r, e in zip(res, ex)])
    ta = AttackSuccessRate().calculate(res) | AttackQueries().calculate(res) | WordsPerturbed().calculate(res)
    ours = attack_summary(rows)
    shared = ours.keys() & ta.keys()
    assert len(shared) == 9
    for k in shared: assert ours[k] == ta[k] or (np.isnan(ours[k]) and np.isnan(ta[k])), k
    assert len(set(rows['result'])) >= 2


def test_meaning_constraint_inside_the_attack_and_every_row_judged(tmp_path, xnli, nli):
    "With a judge, both attacks keep only perturbations the judge accepts, and every row records its cosine and judge."
    from hybrid_nli.validity import MeaningJudge, MeaningPreserved, thresholds
    judge = MeaningJudge()
    tau = thresholds()[judge.judge('en')]
    rows5 = xnli['en'].select(range(5)).add_item(dict(easy_row()))
    for build, name in ((char_attack, 'char'), (codemix_attack, 'codemix')):
        atk = build(CachedNLIWrapper(*nli), 'en', query_budget=60, extra=[MeaningPreserved('en', judge=judge)])
        rows = run_attacks(atk, rows5, tmp_path/f'{name}.csv', name, judge=judge)
        assert rows.meaning_cos.notna().all() and set(rows.meaning_judge) == {judge.judge('en')}
        moved = rows[rows.perturbed_hypothesis != rows.hypothesis]
        assert len(moved) and (moved.meaning_cos >= tau - 1e-6).all(), moved[['result', 'meaning_cos']]
        np.testing.assert_allclose(moved.meaning_cos,
                                   judge.cosine(list(moved.hypothesis), list(moved.perturbed_hypothesis), 'en'),
                                   atol=1e-5)
        assert (rows.loc[rows.perturbed_hypothesis == rows.hypothesis, 'meaning_cos'] == 1.0).all()
    with pytest.raises(HybridNLIError, match='rows of both kinds cannot share a file'):
        run_attacks(char_attack(CachedNLIWrapper(*nli), 'en', query_budget=20), xnli['en'].select(range(6, 7)),
                    tmp_path/'char.csv', 'char')
