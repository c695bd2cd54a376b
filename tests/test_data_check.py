"`hybrid-nli data` and `hybrid-nli data check`: the record of the data directory (sha256 and the loaders' counts)."
import json, shutil, subprocess
from pathlib import Path

import pytest

from hybrid_nli.cli import main
from hybrid_nli.core import HybridNLIError
from hybrid_nli.data import (DATA_SOURCES, MANIFEST_PATH, check_data, data_guide, data_notes,
                             read_data_manifest, recorded_files, write_data_manifest)

RECORD = read_data_manifest()


@pytest.fixture
def copy(tmp_path, data):
    "A copy of the real data directory made of symlinks to the real files (replace one to change it)."
    root = tmp_path/'data'
    for rel in RECORD['files']:
        (root/rel).parent.mkdir(parents=True, exist_ok=True); (root/rel).symlink_to(data/rel)
    return root


def replace(root, rel, content: bytes):
    "Swap the symlink `root/rel` for a real file holding `content`."
    (root/rel).unlink(); (root/rel).write_bytes(content)


def cli(argv, capsys):
    "Exit status, stdout lines and stderr of `hybrid-nli ARGV`."
    rc = main(argv); out, err = capsys.readouterr()
    return rc, out.splitlines(), err


def test_record_is_shipped_with_the_package():
    "The record is a package data file (MANIFEST.in and setup.py) and holds checksums and counts, never data."
    root = Path(__file__).parents[1]
    assert MANIFEST_PATH == root/'hybrid_nli'/'data_manifest.json'
    assert 'include hybrid_nli/data_manifest.json' in (root/'MANIFEST.in').read_text()
    assert "'data_manifest.json'" in (root/'setup.py').read_text()
    assert MANIFEST_PATH.stat().st_size < 100_000
    for rel, f in RECORD['files'].items():
        assert set(f) <= {'bytes', 'sha256', 'counts', 'optional'}, rel
        assert len(f['sha256']) == 64 and all(isinstance(v, int) for v in f['counts'].values()), rel


def test_record_covers_every_folder_and_mnli_extra():
    folders = {r.split('/')[0] for r in RECORD['files'] if '/' in r}
    assert folders == set(DATA_SOURCES) and 'mnli_extra' in folders
    mnli = {r: f['counts']['pairs'] for r, f in RECORD['files'].items() if r.startswith('mnli_extra/mnli_')}
    snli = {r: f['counts']['pairs'] for r, f in RECORD['files'].items() if r.startswith('mnli_extra/snli_')}
    assert sum(mnli.values()) == 10_528 + 9_805
    assert sum(snli.values()) == 31_763   # the per-file rows of mnli_extra/SOURCE.md (its total line says 31,663)
    assert RECORD['files']['xnli/dev/dev-sw.tsv']['counts'] == {'rows': 2490}
    assert RECORD['files']['xnli/test/test-ur.tsv']['counts'] == {'rows': 5010}
    assert RECORD['files']['xnli/hkunlp_en/train.jsonl']['counts'] == {'pairs': 9000}
    assert RECORD['files']['mlqa_r/en.json']['counts'] == {'questions': 1148, 'candidates': 6264}
    assert RECORD['files']['xquad_r/th.json']['counts'] == {'questions': 1190, 'candidates': 852}
    assert RECORD['files']['muse_dictionaries/en-de.txt']['counts'] == {'entries': 101931, 'source_words': 74655}


def test_real_directory_passes(data, capsys):
    "Every checksum and every count of the real data directory is as recorded; the CLI says so and exits 0."
    assert check_data(data) == {} and data_notes(data) == []
    rc, out, err = cli(['data', 'check', str(data)], capsys)
    n = len(RECORD['files'])
    assert (rc, err) == (0, '') and out == [f'{data}: all {n} files as recorded (size, sha256 and counts)']


def test_missing_truncated_and_changed_files_are_each_named(copy, data, capsys):
    (copy/'xnli/test/test-de.tsv').unlink()                                   # missing
    raw = (data/'xquad_r/de.json').read_bytes()
    replace(copy, 'xquad_r/de.json', raw[:len(raw)//2])                        # truncated: no longer parses
    raw = bytearray((data/'muse_dictionaries/en-fr.txt').read_bytes())
    raw[1000] = raw[1000] ^ 1                                                 # one byte changed
    replace(copy, 'muse_dictionaries/en-fr.txt', bytes(raw))
    problems = check_data(copy)
    assert set(problems) == {'xnli/test/test-de.tsv', 'xquad_r/de.json', 'muse_dictionaries/en-fr.txt'}
    assert problems['xnli/test/test-de.tsv'] == 'missing'
    size = (data/'xquad_r/de.json').stat().st_size
    assert problems['xquad_r/de.json'].startswith(f'different: {size//2:,} bytes (recorded {size:,}), sha256 ')
    assert 'unreadable:' in problems['xquad_r/de.json'] and 'invalid JSON' in problems['xquad_r/de.json']
    fr = problems['muse_dictionaries/en-fr.txt']
    assert fr.startswith('different: sha256 ') and 'bytes' not in fr           # same size, other checksum
    rc, out, err = cli(['data', 'check', str(copy)], capsys)
    assert rc == 1 and err == ''
    assert out[:3] == [f'{copy/r}: {why}' for r, why in problems.items()]     # one line per file, named by path
    assert out[-1] == f'{copy}: 3 of {len(RECORD["files"])} recorded files missing or different ' \
                      '(`hybrid-nli data` says how to obtain them)'
    assert check_data(copy, recount=False) == problems                        # --quick still names them


def test_lost_rows_are_counted(copy, data):
    "A file cut at a line boundary still parses: its counts say what was lost."
    lines = (data/'xnli/dev/dev-de.tsv').read_bytes().splitlines(keepends=True)
    replace(copy, 'xnli/dev/dev-de.tsv', b''.join(lines[:-3]))
    lines = (data/'mnli_extra/snli_dev.jsonl').read_bytes().splitlines(keepends=True)
    replace(copy, 'mnli_extra/snli_dev.jsonl', b''.join(lines[1:]))
    problems = check_data(copy, recount=False)
    assert problems['xnli/dev/dev-de.tsv'].endswith('rows 2487 (recorded 2490)')
    assert problems['mnli_extra/snli_dev.jsonl'].endswith('pairs 9839 (recorded 9840)')


def test_same_counts_other_bytes(copy, data):
    "A re-encoded file (CRLF) differs in size and checksum, but the loaders read the same rows: said so."
    replace(copy, 'xnli/dev/dev-en.tsv', (data/'xnli/dev/dev-en.tsv').read_bytes().replace(b'\n', b'\r\n'))
    why = check_data(copy, datasets='xnli', recount=False)['xnli/dev/dev-en.tsv']
    assert why.startswith('different: 428,483 bytes (recorded 425,993), sha256 ')
    assert why.endswith('counts as recorded (rows 2490)')


def test_counts_mismatch_is_named(data, tmp_path, capsys):
    "A record whose counts disagree with files of the recorded bytes (the loaders changed): named, exit 1."
    record = json.loads(MANIFEST_PATH.read_text())
    record['files']['xquad/xquad.en.json']['counts']['questions'] = 1191
    record['files']['muse_dictionaries/en-zh.txt']['counts']['source_words'] = 1
    problems = check_data(data, manifest=record)
    assert problems == {
        'xquad/xquad.en.json': 'counts differ from the record (the bytes are as recorded: the record or the loaders '
                               'changed): questions 1190 (recorded 1191)',
        'muse_dictionaries/en-zh.txt': 'counts differ from the record (the bytes are as recorded: the record or the '
                                       'loaders changed): source_words 32495 (recorded 1)'}
    assert check_data(data, manifest=record, recount=False) == {}             # --quick trusts the checksums


def test_partial_copies_and_notes(copy, tmp_path):
    "A newcomer with part of the data checks only those folders; absent docs and unknown files are notes."
    for rel in RECORD['files']:
        if rel.startswith(('xnli/', 'mlqa/')): (copy/rel).unlink()
    assert set(check_data(copy)) == {r for r, f in recorded_files(['xnli', 'mlqa']).items() if not f.get('optional')}
    assert check_data(copy, ['xquad', 'xquad_r', 'mlqa_r', 'muse_dictionaries', 'mnli_extra']) == {}
    (copy/'xquad'/'SOURCE.md').unlink(); (copy/'xquad'/'extra.json').write_text('{}')
    assert check_data(copy, 'xquad') == {}
    assert data_notes(copy, 'xquad') == ['1 documentation file(s) absent (not read by any loader): xquad/SOURCE.md',
                                         '1 file(s) not in the record, not checked: xquad/extra.json']
    empty = tmp_path/'empty'; empty.mkdir()
    with pytest.raises(HybridNLIError, match='holds none of the .* recorded data files: give the folder that holds'):
        check_data(empty)


def test_bad_arguments_are_one_line_errors(capsys, tmp_path):
    for argv, msg in ((['data', 'check', str(tmp_path/'nope')], 'does not exist'),
                      (['data', 'check', str(tmp_path)], 'holds none of the'),
                      (['data', 'check', '--dataset', 'xnlii'], "unknown dataset 'xnlii'"),
                      (['data', '--dataset', 'xnlii'], "unknown dataset 'xnlii'"),
                      (['data', 'xnli'], "invalid choice: 'xnli'")):
        rc, out, err = cli(argv, capsys)
        assert rc == 2 and err.startswith('hybrid-nli: error: ') and err.count('\n') == 1 and msg in err, (argv, err)


def test_guide_names_source_version_licence_hub_layout_and_checksums(capsys):
    rc, out, err = cli(['data'], capsys)
    text = '\n'.join(out)
    assert rc == 0 and err == ''
    for name, s in DATA_SOURCES.items():
        assert f'\n{name}/  {s["title"][:30]}' in text
    for s in ("source='hub'", 'facebook/xnli', 'google/xquad', 'facebook/mlqa', 'CC BY-NC 4.0', 'CC BY-SA 3.0',
              '9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c', '354d67d', 'mnli_extra/{mnli,snli}_*.jsonl',
              '$HYBRID_NLI_DATA'):
        assert s in text, s
    assert all(f'{r} ' in text and f['sha256'] in text for r, f in RECORD['files'].items())
    assert max(map(len, out)) <= 120


def test_sha256sum_lines_check_the_real_directory(data):
    "`hybrid-nli data --sha256sum` is the input of `sha256sum -c` in the data directory."
    if shutil.which('sha256sum') is None: pytest.skip('no sha256sum')
    sums = data_guide(sha256sum=True) + '\n'
    r = subprocess.run(['sha256sum', '-c', '--quiet', '-'], input=sums, text=True, cwd=data, capture_output=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_record_is_current(data, tmp_path):
    "Regenerating the record from the real directory (`write_data_manifest`) gives the committed file byte for byte."
    out = write_data_manifest(data, tmp_path/'record.json')
    assert out.read_text() == MANIFEST_PATH.read_text()                       # one line per file, deterministic
    assert read_data_manifest(out)['files'] == RECORD['files']
