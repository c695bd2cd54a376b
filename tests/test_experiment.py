"The experiment runner end to end at the smallest size, on real data and the real bundled encoder (issue 8)."
import json, os, subprocess, sys
from pathlib import Path
import pytest
from hybrid_nli.core import HybridNLIError
from hybrid_nli.experiment import load_experiment, run_experiment

from conftest import TINY, write_tiny as write


@pytest.mark.parametrize('changes, msg', [
    (dict(strategies=['xx', 'nope']), 'unknown strategies'), (dict(alphas=[1.5]), r'alphas must lie in \[0, 1\]'),
    (dict(sources=['squad']), 'unknown sources'), (dict(attacks=['homoglyph']), 'unknown attacks'),
    (dict(robustness_sources=['mlqa']), r"robustness_sources \['mlqa'\] are not among"),
    (dict(seeds=[]), "'seeds' must be a non-empty list"), (dict(train=dict(batch_size=1)), 'at least 2'),
    (dict(train=dict(lr_max=1)), 'unknown train field'), (dict(colour='red'), 'unknown field')])
def test_bad_configs_fail_before_anything_runs(tmp_path, changes, msg):
    with pytest.raises(HybridNLIError, match=msg): load_experiment(write(tmp_path, **changes))


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


@pytest.mark.parametrize('name', ['smoke', 'cpu-mini', 'cpu-full', 'cpu-finetune'])
def test_stage_keys_of_committed_runs_unchanged(name):
    "The plan of each committed config names exactly the stage directories its committed run holds, all finished."
    from hybrid_nli.experiment import KINDS, plan
    root = Path(__file__).resolve().parents[1]/'results'/name
    cfg = load_experiment(Path(__file__).resolve().parents[1]/'configs'/f'{name}.yaml')
    planned = {s['dir'].relative_to(root).as_posix() for s in plan(cfg, root)}
    on_disk = {d.relative_to(root).as_posix() for k in KINDS for d in (root/k).glob('*') if (d/'done.json').is_file()}
    assert planned == on_disk and len(planned) == json.loads((root/'manifest.json').read_text())['finished']
