"The runner's guarantees (issue 13): done means complete, workers share an output directory, identity by content."
import json, os, re, shutil, stat, subprocess, sys
from pathlib import Path
import pandas as pd, pytest
from hybrid_nli.cli import main
from hybrid_nli.experiment import load_experiment, plan, run_experiment, verify_run
from conftest import write_tiny as write

TABLES = ('retrieval', 'nli_accuracy', 'crosslingual', 'attacks')
CLI = str(Path(sys.executable).with_name('hybrid-nli'))


def tables(root):
    return {t: pd.read_csv(root/f'{t}.csv').drop(columns='dir', errors='ignore') for t in TABLES}


def cli_run(cfg, out, cache, *extra):
    "`hybrid-nli run` in a process of its own with one torch thread (so numbers match between processes)."
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'HYBRID_NLI_CACHE': str(cache)}
    return subprocess.Popen([CLI, 'run', '--config', str(cfg), '--out', str(out), *extra], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def finish(worker) -> str:
    log = worker.communicate(timeout=900)[0]
    assert worker.returncode == 0, log
    return log


@pytest.fixture(scope='module')
def sequential(tmp_path_factory):
    "One worker runs the tiny grid (7 stages) in a cache of its own."
    tmp = tmp_path_factory.mktemp('sequential')
    finish(cli_run(write(tmp), tmp/'runs', tmp/'cache'))
    return tmp, tmp/'runs'/'tiny'


def test_tiny_experiment_runs_resumes_and_is_content_addressed(sequential):
    tmp, root = sequential
    for name in ('retrieval', 'nli_accuracy', 'crosslingual', 'attacks', 'timings'):
        assert len(pd.read_csv(root/f'{name}.csv')) > 0, name
    t = pd.read_csv(root/'timings.csv')
    assert sorted(t.stage) == ['attack', 'attack', 'nli', 'nli', 'retrieval', 'retrieval', 'train']
    assert set(pd.read_csv(root/'retrieval.csv').eval_set) == {'mlqa_r'}          # zero-shot: trained on XQuAD
    tdir = root/t.dir[t.stage == 'train'].item()
    assert (tdir/'model'/'modules.json').is_file() and not (tdir/'checkpoints').exists()  # optimizer states dropped
    rows = pd.read_csv(root/'attack_rows.csv.gz')
    assert len(rows) == 4 and (rows.perturbed_premise == rows.premise).all()     # the premise is never touched
    assert json.loads((root/'manifest.json').read_text())['finished'] == 7
    log = []; run_experiment(load_experiment(write(tmp)), tmp/'runs', cache=tmp/'cache', log=log.append)
    assert log == ['tiny: 7 stages, 7 done; estimated 0 min for the rest']     # rerun: nothing left to do
    redo = [s['kind'] for s in plan(load_experiment(write(tmp, query_budget=10)), root)
            if not (s['dir']/'done.json').is_file()]
    assert redo == ['attack', 'attack']                                          # only the attack stages depend on it


def test_done_json_records_every_output_and_files_are_0644(sequential):
    _, root = sequential
    for s in plan(load_experiment(write(root.parent.parent)), root):
        info = json.loads((s['dir']/'done.json').read_text())
        files = sorted(str(p.relative_to(s['dir'])) for p in s['dir'].rglob('*') if p.is_file()
                       and not p.name.startswith('.') and p.name != 'done.json')
        assert sorted(info['outputs']) == files and info['kind'] == s['kind'], s['dir']
    assert stat.S_IMODE((root/'attacks.csv').stat().st_mode) & 0o044 == 0o044     # readable by group and others
    assert verify_run(root) == {}


def test_partial_attack_stage_is_redone_and_verify_names_it(sequential, tmp_path, capsys):
    "The committed-run defect: results.csv cut to its first row while done.json summarises both."
    tmp, root = sequential
    run = shutil.copytree(root, tmp_path/'runs'/'tiny')
    [adir] = (run/'attack').glob('base-*')
    lines = (adir/'results.csv').read_text().splitlines(keepends=True)
    (adir/'results.csv').write_text(''.join(lines[:2]))
    assert main(['verify', str(run)]) == 1
    out = capsys.readouterr().out
    assert f'attack/{adir.name}: results.csv has' in out and 'attacks.csv: differs from its stages' in out
    log = finish(cli_run(write(tmp), tmp_path/'runs', tmp/'cache')).splitlines()
    assert log[0].startswith('redo attack char de base: results.csv has')
    assert re.findall(r'^\[\d+\] (.+) \.\.\.$', '\n'.join(log), re.M) == ['attack char de base']   # only that stage
    assert verify_run(run) == {} and main(['verify', str(run)]) == 0
    for t, df in tables(root).items(): pd.testing.assert_frame_equal(tables(run)[t], df, check_exact=False, rtol=1e-9)


def test_duplicated_rows_are_not_resumed_from(sequential, tmp_path):
    tmp, root = sequential
    run = shutil.copytree(root, tmp_path/'runs'/'tiny')
    [adir] = (run/'attack').glob('base-*')
    lines = (adir/'results.csv').read_text().splitlines(keepends=True)
    (adir/'results.csv').write_text(''.join(lines + lines[1:]))
    assert verify_run(run)[f'attack/{adir.name}'].startswith('results.csv has')
    finish(cli_run(write(tmp), tmp_path/'runs', tmp/'cache'))
    assert len(pd.read_csv(adir/'results.csv')) == 2 and verify_run(run) == {}


def test_orphan_temporaries_are_removed_on_the_next_start(sequential, tmp_path):
    tmp, root = sequential
    run = shutil.copytree(root, tmp_path/'runs'/'tiny')
    [tdir] = (run/'train').iterdir()
    orphans = [run/'.attacks.csv.k2j3.tmp', tdir/'.model.a1b2.tmp'/'model.safetensors']
    for p in orphans: p.parent.mkdir(parents=True, exist_ok=True); p.write_bytes(b'\0'*1000)
    assert verify_run(run) == {}                                   # temporaries are not outputs
    log = []; run_experiment(load_experiment(write(tmp)), tmp_path/'runs', cache=tmp/'cache', log=log.append)
    assert log == ['tiny: 7 stages, 7 done; estimated 0 min for the rest']
    assert not orphans[0].exists() and not orphans[1].parent.exists() and (tdir/'run.json').is_file()


def test_a_run_resumes_with_another_cache_directory(sequential, tmp_path):
    "The fingerprint is the encoder's content: a head trained under one cache is this encoder's head under another."
    tmp, root = sequential
    shutil.copytree(root, tmp_path/'runs'/'tiny')
    log = finish(cli_run(write(tmp, query_budget=10), tmp_path/'runs', tmp_path/'other-cache'))
    assert log.startswith('tiny: 7 stages, 5 done') and len(re.findall(r'^\[\d\] done in', log, re.M)) == 2, log
    assert len(list((tmp_path/'runs'/'tiny'/'attack').iterdir())) == 4          # both heads were found and used


def test_two_workers_on_one_out_split_the_stages(sequential, tmp_path):
    "Two `hybrid-nli run` processes started together on one --out: each stage computed once, the same tables."
    tmp, root = sequential
    cfg, out = write(tmp_path), tmp_path/'runs'
    logs = [finish(w) for w in [cli_run(cfg, out, tmp/'cache') for _ in range(2)]]
    ran = [re.findall(r'^\[\d+\] (.+) \.\.\.$', log, re.M) for log in logs]
    assert len(ran[0] + ran[1]) == len(set(ran[0] + ran[1])) == 7, ran        # every stage once, by one of them
    for t, df in tables(root).items():
        pd.testing.assert_frame_equal(tables(out/'tiny')[t], df, check_exact=False, rtol=1e-9)
    assert verify_run(out/'tiny') == {}
