"Bad input to `hybrid_nli.data`: each malformed file gives one `HybridNLIError` line naming file, row/record and field."
import json

import pytest
from hypothesis import given, strategies as st

from hybrid_nli.core import HybridNLIError
from hybrid_nli.data import (NLI_FEATURES, answer_span, check_zero_shot, load_mnli_sample, load_muse, load_retrieval,
                             load_squad_pairs, load_xnli, sentence_spans, training_pairs)

DEV = ('A man sleeps.\tA person rests.\tentailment\nA man sleeps.\tA man runs.\tcontradiction\n'
       'A man sleeps.\tHe is tired.\tneutral\n')


def write(root, rel, text):
    p = root/rel; p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text, encoding='utf-8')
    return p


def fails(fn, *parts):
    "Assert `fn` raises a one-line HybridNLIError containing every string in `parts`."
    with pytest.raises(HybridNLIError) as e: fn()
    msg = str(e.value)
    assert '\n' not in msg, msg
    for p in parts: assert p in msg, (p, msg)
    return msg


def squad(*qas, context='Paris is big. It is the capital of France.', **par):
    return json.dumps({'version': '1.1',
                       'data': [{'title': 't', 'paragraphs': [dict(context=context, qas=list(qas), **par)]}]})


def qa(qid='q1', question='What is the capital?', text='capital of France', start=24):
    return {'id': qid, 'question': question, 'answers': [{'text': text, 'answer_start': start}]}


# --- XNLI -----------------------------------------------------------------------------------------------------------

def test_xnli_good_small(root):
    for l in ('en', 'de'): write(root, f'xnli/dev/dev-{l}.tsv', DEV)
    ds = load_xnli('dev', ['en', 'de'], data_dir=root)
    assert ds.features == NLI_FEATURES
    assert list(ds['lang']) == ['en']*3 + ['de']*3 and list(ds['row']) == [0, 1, 2]*2
    assert ds.features['label'].int2str(ds[1]['label']) == 'contradiction'


def test_cache_invalidated_when_file_changes(root):
    p = write(root, 'xnli/dev/dev-en.tsv', DEV)
    assert len(load_xnli('dev', 'en', data_dir=root)) == 3
    p.write_text(DEV + 'P.\tH.\tneutral\n', encoding='utf-8')
    assert len(load_xnli('dev', 'en', data_dir=root)) == 4


def test_missing_folder(root):
    fails(lambda: load_xnli('dev', 'en', data_dir=root), 'xnli/dev', 'not found')


def test_missing_file(root):
    write(root, 'xnli/dev/dev-en.tsv', DEV)
    fails(lambda: load_xnli('dev', ['en', 'de'], data_dir=root), 'dev-de.tsv', 'not found')


def test_missing_data_dir(tmp_path):
    fails(lambda: load_xnli('dev', 'en', data_dir=tmp_path/'nope'), 'does not exist')


def test_wrong_column_count(root):
    write(root, 'xnli/dev/dev-en.tsv', DEV + 'only premise\tand hypothesis\n')
    fails(lambda: load_xnli('dev', 'en', data_dir=root), 'dev-en.tsv', 'line 4', "field 'hypothesis'",
          '2 tab-separated columns, expected 3')


def test_extra_column(root):
    write(root, 'xnli/dev/dev-en.tsv', 'p\th\tneutral\textra\n')
    fails(lambda: load_xnli('dev', 'en', data_dir=root), 'dev-en.tsv', 'line 1', '4 tab-separated columns')


def test_blank_line_is_not_skipped(root):
    write(root, 'xnli/dev/dev-en.tsv', 'p\th\tneutral\n\np\th\tneutral\n')
    fails(lambda: load_xnli('dev', 'en', data_dir=root), 'dev-en.tsv', 'line 2', '1 tab-separated columns')


def test_empty_premise(root):
    write(root, 'xnli/dev/dev-en.tsv', DEV + ' \tH.\tneutral\n')
    fails(lambda: load_xnli('dev', 'en', data_dir=root), 'dev-en.tsv', 'line 4', "field 'premise'", 'empty')


def test_unknown_label(root):
    write(root, 'xnli/dev/dev-en.tsv', DEV.replace('neutral', 'neutrall'))
    fails(lambda: load_xnli('dev', 'en', data_dir=root), 'dev-en.tsv', 'line 3', "field 'label'", "'neutrall'")


@pytest.mark.parametrize('tsv, labels, where', [
    ('P.\tH.\nP.\t\n', 'neutral\nneutral\n', ('test-en.tsv', 'line 2', "field 'hypothesis'", 'empty')),
    ('P.\tH.\nP.\tH2.\n', 'neutral\nmaybe\n', ('test-labels.txt', 'line 2', "field 'label'", "'maybe'")),
    ('P.\tH.\nP.\tH2.\nP.\tH3.\n', 'neutral\nentailment\n',
     ('test-labels.txt', 'line 3', "field 'label'", '2 labels but test-en.tsv has 3 rows'))])
def test_bad_test_split(root, tsv, labels, where):
    "The test split's two files: an empty hypothesis, an unknown label, a label file one row short; each named."
    write(root, 'xnli/test/test-en.tsv', tsv)
    write(root, 'xnli/test/test-labels.txt', labels)
    fails(lambda: load_xnli('test', 'en', data_dir=root), *where)


def test_unknown_language_code(root):
    fails(lambda: load_xnli('dev', ['en', 'xx'], data_dir=root), "unknown language code 'xx'")
    fails(lambda: load_squad_pairs('xquad', ['sw'], data_dir=root), "unknown language code 'sw'", 'xquad')
    fails(lambda: load_retrieval('mlqa_r', ['ro'], data_dir=root), "unknown language code 'ro'")


def test_unknown_split_and_source(root):
    fails(lambda: load_xnli('train', data_dir=root), "unknown XNLI split 'train'")
    fails(lambda: load_xnli('dev', source='web', data_dir=root), "unknown source 'web'")


def test_parallel_files_row_count(root):
    write(root, 'xnli/dev/dev-en.tsv', DEV)
    write(root, 'xnli/dev/dev-de.tsv', DEV.split('\n', 1)[1])
    fails(lambda: load_xnli('dev', ['en', 'de'], data_dir=root), 'dev-de.tsv', "field 'row'",
          '2 rows but dev-en.tsv has 3')


def test_parallel_files_label_mismatch(root):
    write(root, 'xnli/dev/dev-en.tsv', DEV)
    write(root, 'xnli/dev/dev-de.tsv', DEV.replace('contradiction', 'neutral'))
    fails(lambda: load_xnli('dev', ['en', 'de'], data_dir=root), 'dev-de.tsv', 'line 2', "field 'label'")


def test_not_utf8(root):
    (root/'xnli'/'dev').mkdir(parents=True)
    (root/'xnli'/'dev'/'dev-en.tsv').write_bytes(b'p\th\tneutral\n\xff\n')
    fails(lambda: load_xnli('dev', 'en', data_dir=root), 'dev-en.tsv', 'not valid UTF-8')


# --- MultiNLI sample ------------------------------------------------------------------------------------------------

def test_mnli_good_and_invalid_json(root):
    good = '{"premise": "P.", "hypothesis": "H.", "label": 1}\n'
    write(root, 'xnli/hkunlp_en/train.jsonl', good)
    assert load_mnli_sample(root)[0]['label'] == 1
    write(root, 'xnli/hkunlp_en/train.jsonl', good + '{"premise": "P.", "hypothesis": \n')
    fails(lambda: load_mnli_sample(root), 'train.jsonl', 'line 2', 'invalid JSON')


def test_mnli_missing_field_and_bad_label(root):
    write(root, 'xnli/hkunlp_en/train.jsonl', '{"premise": "P.", "label": 1}\n')
    fails(lambda: load_mnli_sample(root), 'train.jsonl', 'line 1', "field 'hypothesis'", 'missing')
    write(root, 'xnli/hkunlp_en/train.jsonl', '{"premise": "P.", "hypothesis": "H.", "label": 5}\n')
    fails(lambda: load_mnli_sample(root), 'train.jsonl', 'line 1', "field 'label'")


# --- SQuAD-format QA ------------------------------------------------------------------------------------------------

def test_squad_good_small(root):
    write(root, 'xquad/xquad.en.json', squad(qa()))
    write(root, 'xquad/xquad.de.json', squad(qa(), context='Paris is big. It is the capital of France.'))
    ds = load_squad_pairs('xquad', ['en', 'de'], data_dir=root)
    assert ds[0]['passage'] == 'It is the capital of France.' and ds[0]['qid'] == 'q1'
    assert load_squad_pairs('xquad', ['en'], passage='paragraph', data_dir=root)[0]['passage'].startswith('Paris')
    pairs = training_pairs('xquad', ['en', 'de'], data_dir=root)
    assert sorted(pairs) == ['xx_de', 'xx_en', 'xy_de_en', 'xy_en_de']
    assert pairs['xy_en_de'][0] == dict(anchor='What is the capital?', positive='It is the capital of France.',
                                        qid='q1', lang='en', passage_lang='de')


def test_squad_invalid_json(root):
    write(root, 'xquad/xquad.en.json', squad(qa())[:-5])
    fails(lambda: load_squad_pairs('xquad', ['en'], data_dir=root), 'xquad.en.json', 'line 1 column', 'invalid JSON')


def test_squad_answer_offset_outside_context(root):
    write(root, 'xquad/xquad.en.json', squad(qa(start=500)))
    fails(lambda: load_squad_pairs('xquad', ['en'], data_dir=root), 'xquad.en.json', 'qid q1', "field 'answer_start'",
          'outside the context')


def test_squad_answer_text_mismatch(root):
    write(root, 'xquad/xquad.en.json', squad(qa(start=3)))
    fails(lambda: load_squad_pairs('xquad', ['en'], data_dir=root), 'xquad.en.json', 'qid q1', "field 'answers.text'")


def test_squad_answer_start_wrong_type(root):
    write(root, 'xquad/xquad.en.json', squad(qa(start='24')))
    fails(lambda: load_squad_pairs('xquad', ['en'], data_dir=root), 'xquad.en.json', 'qid q1', "field 'answer_start'",
          'expected int')


def test_squad_empty_question(root):
    write(root, 'mlqa/dev/dev-context-en-question-en.json', squad(qa(question='  ')))
    fails(lambda: load_squad_pairs('mlqa', ['en'], data_dir=root), 'dev-context-en-question-en.json', 'qid q1',
          "field 'question'", 'empty')


def test_squad_missing_field(root):
    bad = qa(); del bad['answers']
    write(root, 'xquad/xquad.en.json', squad(bad))
    fails(lambda: load_squad_pairs('xquad', ['en'], data_dir=root), 'xquad.en.json', 'qid q1', "field 'answers'",
          'missing')
    write(root, 'xquad/xquad.en.json', json.dumps({'version': '1.1'}))
    fails(lambda: load_squad_pairs('xquad', ['en'], data_dir=root), 'xquad.en.json', 'top level', "field 'data'",
          'missing')


def test_squad_duplicate_ids(root):
    write(root, 'xquad/xquad.en.json', squad(qa(), qa()))
    fails(lambda: load_squad_pairs('xquad', ['en'], data_dir=root), 'xquad.en.json', 'qid q1', "field 'id'",
          'duplicate')


def test_xquad_parallel_files_differ(root):
    write(root, 'xquad/xquad.en.json', squad(qa(), qa('q2')))
    write(root, 'xquad/xquad.de.json', squad(qa()))
    fails(lambda: load_squad_pairs('xquad', ['en', 'de'], data_dir=root), 'xquad.de.json', 'qid q2', "field 'id'",
          'missing here but in xquad.en.json')


def test_retrieval_needs_sentence_breaks(root):
    write(root, 'xquad_r/en.json', squad(qa()))
    fails(lambda: load_retrieval('xquad_r', ['en'], data_dir=root), 'en.json', 'qid q1', "field 'sentence_breaks'",
          'missing')


def test_retrieval_good_small(root):
    ctx = 'Paris is big. It is the capital of France.'
    write(root, 'xquad_r/en.json', squad(qa(), qa('q2', 'How big?', 'big', 9), context=ctx,
                                          sentences=['Paris is big.', 'It is the capital of France.'],
                                          sentence_breaks=[[0, 13], [14, 42]]))
    dd = load_retrieval('xquad_r', ['en'], data_dir=root)
    assert list(dd['questions']['qid']) == ['q1', 'q2']
    assert list(dd['candidates']['qids']) == [['q2'], ['q1']]


def test_retrieval_sentences_breaks_mismatch(root):
    write(root, 'xquad_r/en.json', squad(qa(), sentences=['Paris is big.'], sentence_breaks=[[0, 13], [14, 42]]))
    fails(lambda: load_retrieval('xquad_r', ['en'], data_dir=root), 'en.json', "field 'sentences'",
          '1 sentences but 2 sentence_breaks')


# --- MUSE and protocol ----------------------------------------------------------------------------------------------

def test_muse(root):
    write(root, 'muse_dictionaries/en-de.txt', 'house haus\nhouse gebäude\n')
    assert load_muse('en', 'de', root) == {'house': ['haus', 'gebäude']}
    write(root, 'muse_dictionaries/en-de.txt', 'house haus\nlonely\n')
    fails(lambda: load_muse('en', 'de', root), 'en-de.txt', 'line 2', "field 'target'")
    fails(lambda: load_muse('en', 'fr', root), 'en-fr.txt', 'not found')
    fails(lambda: load_muse('de', 'fr', root), 'no MUSE dictionary de-fr')


def test_zero_shot_guard():
    assert check_zero_shot('xquad', 'mlqa_r')
    msg = fails(lambda: check_zero_shot('mlqa', 'mlqa_r'), 'refusing', 'not zero-shot', 'override=True')
    assert 'xquad_r' in msg
    fails(lambda: check_zero_shot('xquad', 'squad'), "unknown dataset 'squad'")
    with pytest.warns(UserWarning, match='not zero-shot'):
        assert check_zero_shot('xquad', 'xquad_r', override=True) is False


# --- sentence splitter ----------------------------------------------------------------------------------------------

@given(st.text(alphabet=st.sampled_from(list('ab .!?。।؟ \n')), max_size=60), st.sampled_from(['en', 'zh', 'th', 'hi']))
def test_sentence_spans_property(text, lang):
    spans = sentence_spans(text, lang)
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert all(e1 <= s2 for (_, e1), (s2, _) in zip(spans, spans[1:]))
    covered = {i for s, e in spans for i in range(s, e)}
    assert all(i in covered for i, c in enumerate(text) if not c.isspace())
    if spans:
        s, e = answer_span(spans, spans[-1][0], spans[-1][1])
        assert (s, e) == spans[-1]
