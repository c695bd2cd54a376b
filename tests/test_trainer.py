"Trainer: bad configs fail before a model loads; a run killed mid-way resumes to the weights of an uninterrupted one."
import os, signal, subprocess, sys, time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from hybrid_nli.core import HybridNLIError
from hybrid_nli.trainer import TrainConfig, last_checkpoint, load_config, strategy_data, train

TINY = ['langs=[en, de]', 'batch_size=4', 'max_length=24', 'max_steps=6', 'save_steps=2', 'freeze_embeddings=true',
        'seed=5']
CLI = [str(Path(sys.executable).with_name('hybrid-nli')), 'train']


def test_bad_configs_fail_before_loading(tmp_path, monkeypatch):
    def loads(*args, **kwargs): raise AssertionError('a bad config loaded data or a model before it was refused')
    for where in ('hybrid_nli.trainer.training_pairs', 'hybrid_nli.encoder.load_encoder'):
        monkeypatch.setattr(where, loads)
    for bad, msg in [('alpha=-0.5', 'alpha must be a probability'), ('strategy=xyz', 'unknown strategy'),
                     ('langs=[]', 'empty list'), ('source=squad', 'unknown training source')]:
        with pytest.raises(HybridNLIError, match=msg): load_config(None, [bad])
    monkeypatch.undo()
    with pytest.raises(HybridNLIError, match='larger than sub-dataset'):
        strategy_data(load_config(None, ['source=mlqa', 'langs=[ar, es]', 'batch_size=500']))
    r = subprocess.run(CLI + ['--out', str(tmp_path/'x'), '--set', 'alpha=7'], capture_output=True, text=True)
    assert r.returncode == 2 and r.stderr.count('\n') == 1 and 'alpha must be a probability' in r.stderr


def test_kill_and_resume_matches_uninterrupted(tmp_path):
    full = train(load_config(None, TINY), tmp_path/'full')
    run = tmp_path/'killed'
    env = {**os.environ, 'PYTHONUNBUFFERED': '1'}
    proc = subprocess.Popen(CLI + ['--out', str(run), '--set', *TINY], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 600
    while last_checkpoint(run) is None or last_checkpoint(run).name != 'checkpoint-2':
        assert proc.poll() is None, 'run finished before it could be killed'
        assert time.time() < deadline
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL); proc.wait()
    assert not (run/'model').exists()
    resumed = subprocess.run(CLI + ['--out', str(run), '--set', *TINY], env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert '"resumed_from": "checkpoint-' in (run/'run.json').read_text()
    a, b = load_file(full/'model.safetensors'), load_file(run/'model'/'model.safetensors')
    assert a.keys() == b.keys()
    worst = max((a[k].float() - b[k].float()).abs().max().item() for k in a)
    assert worst <= 1e-6, worst  # same seed, same data order, restored RNG: identical on CPU
    assert (run/'train_log.csv').read_text().count('\n') >= 1 + 4


def test_other_config_in_same_dir_is_refused(tmp_path):
    (tmp_path/'config.yaml').write_text('strategy: xx\n')
    with pytest.raises(HybridNLIError, match='different config.yaml'): train(TrainConfig(), tmp_path)


def test_heldout_validation_restores_the_best_step(tmp_path):
    "With held-out question ids, the saved model is the checkpoint of the lowest held-out loss, and the curve is saved."
    import csv, json
    cfg = load_config(None, TINY + ['heldout=0.1', 'eval_steps=2', 'patience=1', 'max_steps=10'])
    out = tmp_path/'val'
    train(cfg, out)
    curve = list(csv.DictReader((out/'heldout_log.csv').open()))
    run = json.loads((out/'run.json').read_text())
    steps = [int(r['step']) for r in curve]
    assert steps == list(range(2, run['steps'] + 1, 2)) and run['steps'] <= 10
    losses = [float(r['heldout_loss']) for r in curve]
    assert run['best_step'] == steps[losses.index(min(losses))]
    if run['steps'] < 10:   # stopped early: the evaluation after the best did not improve on it (patience 1)
        assert run['steps'] == run['best_step'] + 2 and losses[-1] >= min(losses)
    best = load_file(out/'checkpoints'/f"checkpoint-{run['best_step']}"/'model.safetensors')
    saved = load_file(out/'model'/'model.safetensors')
    assert all((saved[k] == best[k]).all() for k in best)
    assert run['heldout_questions'] == 119 and all(r['heldout_xx'] and r['heldout_xy'] for r in curve)
