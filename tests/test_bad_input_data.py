"Bad copies of the REAL data files: each damage is refused with one `HybridNLIError` line naming file and row/field."
import json
import re
import shutil

import pytest

from hybrid_nli.core import HybridNLIError
from hybrid_nli.data import (load_mnli_sample, load_muse, load_nli_set, load_nli_train, load_retrieval,
                             load_squad_pairs, load_xnli)

BOM = '\ufeff'


def copy(data, root, rel):
    "Copy the real file `rel` into the same place under `root`; its path there."
    dst = root/rel; dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data/rel, dst)
    return dst


def rewrite(path, fn):
    "Replace the text of `path` by `fn(text)`, byte for byte (no newline translation)."
    path.write_bytes(fn(path.read_bytes().decode('utf-8')).encode('utf-8'))


def refused(fn, *patterns):
    "Assert `fn` raises a one-line HybridNLIError matching every regex in `patterns`; the message."
    with pytest.raises(HybridNLIError, match=patterns[0]) as e: fn()
    msg = str(e.value)
    assert '\n' not in msg, msg
    for p in patterns[1:]: assert re.search(p, msg), (p, msg)
    return msg


def where(path, record, field):
    "Regex for the `bad_input` prefix: file, row/record and field."
    return re.escape(f"{path}: {record}, field '{field}'")


# --- encodings and line endings -----------------------------------------------------------------------------------

def test_bom_not_in_first_xnli_premise(data, root):
    p = copy(data, root, 'xnli/dev/dev-en.tsv')
    rewrite(p, lambda t: BOM + t)
    bad, real = load_xnli('dev', 'en', data_dir=root), load_xnli('dev', 'en', data_dir=data)
    assert not bad[0]['premise'].startswith(BOM)
    assert bad.to_dict() == real.to_dict()


def test_bom_not_in_first_mnli_premise(data, root):
    p = copy(data, root, 'xnli/hkunlp_en/train.jsonl')
    rewrite(p, lambda t: BOM + t)
    bad, real = load_mnli_sample(root), load_mnli_sample(data)
    assert bad[0]['premise'] == real[0]['premise'] and len(bad) == len(real) == 9000


def test_bom_not_in_first_muse_key(data, root):
    p = copy(data, root, 'muse_dictionaries/en-de.txt')
    rewrite(p, lambda t: BOM + t)
    bad, real = load_muse('en', 'de', root), load_muse('en', 'de', data)
    assert next(iter(bad)) == 'the' and BOM + 'the' not in bad
    assert bad == real


def test_crlf_still_loads(data, root):
    for rel in ('xnli/test/test-en.tsv', 'xnli/test/test-labels.txt'):
        rewrite(copy(data, root, rel), lambda t: t.replace('\n', '\r\n'))
    assert load_xnli('test', 'en', data_dir=root).to_dict() == load_xnli('test', 'en', data_dir=data).to_dict()


def test_cr_only_still_loads(data, root):
    rewrite(copy(data, root, 'xnli/dev/dev-en.tsv'), lambda t: t.replace('\n', '\r'))
    rewrite(copy(data, root, 'muse_dictionaries/en-de.txt'), lambda t: t.replace('\n', '\r'))
    assert load_xnli('dev', 'en', data_dir=root).to_dict() == load_xnli('dev', 'en', data_dir=data).to_dict()
    assert load_muse('en', 'de', root) == load_muse('en', 'de', data)


# --- labels and empty files ---------------------------------------------------------------------------------------

def test_mnli_label_true_is_not_neutral(data, root):
    p = copy(data, root, 'xnli/hkunlp_en/train.jsonl')
    lines = p.read_text(encoding='utf-8').split('\n')
    rec = json.loads(lines[4]); rec['label'] = True; lines[4] = json.dumps(rec)
    p.write_text('\n'.join(lines), encoding='utf-8')
    refused(lambda: load_mnli_sample(root), where(p, 'line 5', 'label'), 'unknown label true')


def test_mnli_extra_second_file_bad_label_named(data, root):
    "A bad row in the second file of a two-file set is named by that file and its own line, not the set's row."
    copy(data, root, 'mnli_extra/mnli_train_pcp.jsonl')
    p = copy(data, root, 'mnli_extra/mnli_train_fewshot.jsonl')
    lines = p.read_text(encoding='utf-8').split('\n')
    rec = json.loads(lines[9]); rec['label'] = 3; lines[9] = json.dumps(rec)
    p.write_text('\n'.join(lines), encoding='utf-8')
    refused(lambda: load_nli_set('mnli_train', root), where(p, 'line 10', 'label'), 'unknown label 3')


def test_mnli_extra_missing_hypothesis_and_missing_file(data, root):
    p = copy(data, root, 'mnli_extra/mnli_dev_matched.jsonl')
    lines = p.read_text(encoding='utf-8').split('\n')
    rec = json.loads(lines[2]); del rec['hypothesis']; lines[2] = json.dumps(rec)
    p.write_text('\n'.join(lines), encoding='utf-8')
    refused(lambda: load_nli_train(['mnli_dev_matched'], root), where(p, 'line 3', 'hypothesis'), 'missing')
    refused(lambda: load_nli_train(['snli_dev', 'mnli_dev_matched'], root),
            re.escape(str(root/'mnli_extra/snli_dev.jsonl')), 'not found')


def test_empty_muse_dictionary(data, root):
    p = copy(data, root, 'muse_dictionaries/en-de.txt')
    p.write_bytes(b'')
    refused(lambda: load_muse('en', 'de', root), re.escape(str(p)), 'empty')


def test_empty_xnli_dev_file(data, root):
    for l in ('en', 'de'): copy(data, root, f'xnli/dev/dev-{l}.tsv')
    p = root/'xnli/dev/dev-en.tsv'; p.write_bytes(b'')
    refused(lambda: load_xnli('dev', ['en', 'de'], data_dir=root), re.escape(str(p)), 'empty')


def test_empty_mnli_file(data, root):
    p = copy(data, root, 'xnli/hkunlp_en/train.jsonl')
    p.write_bytes(b'')
    refused(lambda: load_mnli_sample(root), re.escape(str(p)), 'empty')


def test_lareqa_data_empty_list(data, root):
    p = copy(data, root, 'xquad_r/en.json')
    rewrite(p, lambda t: json.dumps(dict(json.loads(t), data=[])))
    refused(lambda: load_retrieval('xquad_r', 'en', data_dir=root), where(p, 'top level', 'data'), 'empty')


def test_squad_data_empty_list(data, root):
    p = copy(data, root, 'xquad/xquad.en.json')
    rewrite(p, lambda t: json.dumps(dict(json.loads(t), data=[])))
    refused(lambda: load_squad_pairs('xquad', ['en'], data_dir=root), where(p, 'top level', 'data'), 'empty')


# --- LAReQA sentence_breaks -----------------------------------------------------------------------------------------

def damage(data, root, fn, dataset='xquad_r', lang='en', a=2, p=1):
    "Copy the real LAReQA file and apply `fn(paragraph)` to `data[a].paragraphs[p]`; the copy's path."
    path = copy(data, root, f'{dataset}/{lang}.json')
    squad = json.loads(path.read_text(encoding='utf-8'))
    par = squad['data'][a]['paragraphs'][p]
    assert len(par['sentence_breaks']) >= 3, 'pick a paragraph with several sentences'
    fn(par)
    path.write_text(json.dumps(squad, ensure_ascii=False), encoding='utf-8')
    return path


def test_overlapping_breaks(data, root):
    def overlap(par):
        (s0, e0), (_, e1) = par['sentence_breaks'][:2]
        par['sentence_breaks'][1] = [e0 - 5, e1]; par['sentences'][1] = par['context'][e0 - 5:e1]  # text still a slice
    p = damage(data, root, overlap)
    refused(lambda: load_retrieval('xquad_r', 'en', data_dir=root),
            where(p, 'data[2].paragraphs[1]', 'sentence_breaks[1]'),
            'before the previous sentence ends')


def test_break_past_end_of_context(data, root):
    def past(par):
        s, _ = par['sentence_breaks'][-1]
        par['sentence_breaks'][-1] = [s, len(par['context']) + 10]; par['sentences'][-1] = par['context'][s:]
    p = damage(data, root, past, 'mlqa_r', 'de', a=0, p=0)
    refused(lambda: load_retrieval('mlqa_r', 'de', data_dir=root),
            where(p, 'data[0].paragraphs[0]', 'sentence_breaks[12]'),
            'past the end of the context')


def test_sentence_is_not_context_slice(data, root):
    def edit(par): par['sentences'][1] = par['sentences'][1].replace(' ', '  ', 1)
    p = damage(data, root, edit)
    refused(lambda: load_retrieval('xquad_r', 'en', data_dir=root), where(p, 'data[2].paragraphs[1]', 'sentences[1]'),
            r'is not context\[')


def test_reversed_breaks(data, root):
    "Both lists reversed: every text is still its slice, but the answer would go to the wrong sentence."
    def reverse(par): par['sentence_breaks'].reverse(); par['sentences'].reverse()
    p = damage(data, root, reverse)
    refused(lambda: load_retrieval('xquad_r', 'en', data_dir=root),
            where(p, 'data[2].paragraphs[1]', 'sentence_breaks[1]'),
            'before the previous sentence ends')


def test_reversed_break_pair(data, root):
    def swap(par): par['sentence_breaks'][0].reverse()
    p = damage(data, root, swap)
    refused(lambda: load_retrieval('xquad_r', 'en', data_dir=root),
            where(p, 'data[2].paragraphs[1]', 'sentence_breaks[0]'),
            'end before its start')


def test_break_is_a_number(data, root):
    def five(par): par['sentence_breaks'][0] = 5
    p = damage(data, root, five)
    refused(lambda: load_retrieval('xquad_r', 'en', data_dir=root),
            where(p, 'data[2].paragraphs[1]', 'sentence_breaks[0]'),
            r'expected a \[start, end\] pair of ints, got 5$')


def test_break_has_three_ints(data, root):
    def three(par): par['sentence_breaks'][2] = [0, 10, 20]
    p = damage(data, root, three, 'mlqa_r', 'zh', a=3, p=2)
    refused(lambda: load_retrieval('mlqa_r', 'zh', data_dir=root),
            where(p, 'data[3].paragraphs[2]', 'sentence_breaks[2]'),
            r'expected a \[start, end\] pair of ints, got \[0, 10, 20\]$')


def test_break_is_strings(data, root):
    def strings(par): par['sentence_breaks'][1] = ['a', 'b']
    p = damage(data, root, strings)
    refused(lambda: load_retrieval('xquad_r', 'en', data_dir=root),
            where(p, 'data[2].paragraphs[1]', 'sentence_breaks[1]'),
            r'expected a \[start, end\] pair of ints, got \["a", "b"\]$')


def test_sentence_not_a_string(data, root):
    def num(par): par['sentences'][0] = 7
    p = damage(data, root, num)
    refused(lambda: load_retrieval('xquad_r', 'en', data_dir=root), where(p, 'data[2].paragraphs[1]', 'sentences[0]'),
            'expected str, got int')


def test_real_mojibake_paragraph_tolerated_only_after_the_mojibake(data, root):
    "xquad_r/tr.json data[9].paragraphs[3] has mojibake; its offsets drift after it, but text before it must match."
    p = copy(data, root, 'xquad_r/tr.json')
    assert len(load_retrieval('xquad_r', 'tr', data_dir=root)['candidates']) == 1167
    squad = json.loads(p.read_text(encoding='utf-8'))
    par = squad['data'][9]['paragraphs'][3]
    assert '\x81' in par['context'] and par['sentences'][2] != par['context'][slice(*par['sentence_breaks'][2])]
    par['sentences'][1] = par['sentences'][1][::-1]
    p.write_text(json.dumps(squad, ensure_ascii=False), encoding='utf-8')
    refused(lambda: load_retrieval('xquad_r', 'tr', data_dir=root), where(p, 'data[9].paragraphs[3]', 'sentences[1]'),
            r'is not context\[')
