"The experiment runner end to end at the smallest size, on real data and the real bundled encoder (issue 8)."
import json, os, subprocess, sys
from pathlib import Path
import pandas as pd, pytest, yaml
from hybrid_nli.core import HybridNLIError
from hybrid_nli.experiment import collect, load_experiment, plan, run_experiment

TINY = dict(name='tiny', strategies=['base', 'xx'], seeds=[0], sources=['xquad'],
            train=dict(langs=['en', 'de'], batch_size=4, max_length=32, max_steps=2, save_steps=1, freeze_embeddings=True),
            retrieval_questions=5, nli_train_rows=300, nli_dev_rows=60, nli_test_rows=8, nli_langs=['en', 'de'],
            nli_head=dict(epochs=2), attacks=['char'], attack_langs=['de'], attack_examples=2, query_budget=20)


def write(tmp_path, **changes):
    p = tmp_path/'exp.yaml'; p.write_text(yaml.safe_dump({**TINY, **changes})); return p


@pytest.mark.parametrize('changes, msg', [
    (dict(strategies=['xx', 'nope']), 'unknown strategies'), (dict(alphas=[1.5]), r'alphas must lie in \[0, 1\]'),
    (dict(sources=['squad']), 'unknown sources'), (dict(attacks=['homoglyph']), 'unknown attacks'),
    (dict(robustness_sources=['mlqa']), r"robustness_sources \['mlqa'\] are not among"),
    (dict(seeds=[]), "'seeds' must be a non-empty list"), (dict(train=dict(batch_size=1)), 'at least 2'),
    (dict(train=dict(lr_max=1)), 'unknown train field'), (dict(colour='red'), 'unknown field')])
def test_bad_configs_fail_before_anything_runs(tmp_path, changes, msg):
    with pytest.raises(HybridNLIError, match=msg): load_experiment(write(tmp_path, **changes))


def test_tiny_experiment_runs_resumes_and_is_content_addressed(tmp_path):
    cfg = load_experiment(write(tmp_path))
    root = run_experiment(cfg, tmp_path/'runs')
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
    log = []; run_experiment(cfg, tmp_path/'runs', log=log.append)               # rerun: nothing left to do
    assert log == ['tiny: 7 stages, 7 done; estimated 0 min for the rest']
    cfg2 = load_experiment(write(tmp_path, query_budget=10))                     # only the attack stages depend on it
    redo = [s['kind'] for s in plan(cfg2, root) if not (s['dir']/'done.json').is_file()]
    assert redo == ['attack', 'attack']


def test_training_stages_under_torchrun_two_processes(tmp_path):
    "The documented multi-GPU path (`torchrun ... hybrid-nli run --only train`), here with 2 CPU processes (gloo)."
    cfg = write(tmp_path, strategies=['hybrid'], train={**TINY['train'], 'max_steps': 3, 'save_steps': 2})
    cli = Path(sys.executable).with_name('hybrid-nli'); torchrun = Path(sys.executable).with_name('torchrun')
    subprocess.run([str(torchrun), '--nproc_per_node', '2', '--master_port', '29519', str(cli), 'run', '--config', str(cfg),
                    '--out', str(tmp_path/'runs'), '--only', 'train'], check=True, env={**os.environ, 'OMP_NUM_THREADS': '1'}, timeout=600)
    [tdir] = (tmp_path/'runs'/'tiny'/'train').iterdir()
    run = json.loads((tdir/'run.json').read_text())
    assert (run['world_size'], run['steps']) == (2, 3)
    assert (tdir/'model'/'modules.json').is_file() and not (tdir/'checkpoints').exists()
    assert not [p.name for p in tdir.iterdir() if p.name.startswith('.')]      # no temporary leftovers of the two writers
    log = []; run_experiment(load_experiment(cfg), tmp_path/'runs', only='train', log=log.append)   # one process: already done
    assert log == ['tiny: 4 stages, 1 done; estimated 0 min for the rest of the train stages']
