"""The held-out curve and the speed of one training run directory (finished, running, or killed).

Reads the newest complete checkpoint's `trainer_state.json` (`trainer.last_checkpoint`), and prints and
writes (`benchmarks/results/train_curve-<run name>.json`): the host, the run's config, its median seconds per step,
the held-out InfoNCE losses (mean, X-X, X-Y) at every scored step, the best step so far, and whether early stopping
ended the run. A run killed before it stopped says so: its curve is the part it reached.
Run from the repository root:  .venv/bin/python benchmarks/train_curve.py RUN_DIR [--out FILE]
"""
from __future__ import annotations
import argparse, json, re, statistics
from pathlib import Path

import yaml

from hybrid_nli.core import atomic_write, cpu_model
from hybrid_nli.encoder import cpu_bf16_flags, resolve_precision
from hybrid_nli.trainer import last_checkpoint


def curve(run:Path) -> dict:
    "Held-out losses and the stopping state of the training run in `run`."
    ck = last_checkpoint(run)
    if ck is None: raise SystemExit(f'{run}: no complete checkpoint (checkpoints/checkpoint-*/trainer_state.json)')
    state = json.loads((ck/'trainer_state.json').read_text())
    cfg = yaml.safe_load((run/'config.yaml').read_text())
    evals = [h for h in state['log_history'] if 'eval_loss' in h]
    losses = [dict(step=h['step'], loss=round(h['eval_loss'], 4), xx=round(h['eval_xx_loss'], 4),
                   xy=round(h['eval_xy_loss'], 4), epoch=h['epoch']) for h in evals]
    best = min(losses, key=lambda h: h['loss']) if losses else None
    since = sum(1 for h in losses if best and h['step'] > best['step'])
    stopped = bool(cfg.get('patience')) and since >= cfg['patience']
    return dict(run=str(run), checkpoint=ck.name, steps=state['global_step'], max_steps=state['max_steps'],
                config=cfg, heldout=losses, best=best, scores_since_best=since, early_stopped=stopped,
                finished=(run/'model').is_dir())


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('run'); ap.add_argument('--out')
    ap.add_argument('--log', help="the run's stdout: the tqdm 's/it' figures give the median s/step")
    args = ap.parse_args()
    r = dict(host=dict(cpu=cpu_model(), flags=cpu_bf16_flags(), auto=resolve_precision('auto', 'cpu')),
             **curve(Path(args.run)))
    if args.log:
        its = [float(x) for x in re.findall(r'([0-9.]+)s/it\]', Path(args.log).read_text(errors='replace'))]
        r['s_per_step_median'] = round(statistics.median(its), 3) if its else None
    print(f"{r['host']['cpu']}: {r['steps']}/{r['max_steps']} steps, best held-out loss {r['best']}, "
          f"{r['scores_since_best']} scores since; early-stopped: {r['early_stopped']}; finished: {r['finished']}")
    print('| step | epoch | held-out loss | X-X | X-Y |\n|---|---|---|---|---|')
    for h in r['heldout']: print(f"| {h['step']} | {h['epoch']:.2f} | {h['loss']} | {h['xx']} | {h['xy']} |")
    if r.get('s_per_step_median'): print(f"median s/step: {r['s_per_step_median']}")
    out = Path(args.out or f'benchmarks/results/train_curve-{Path(args.run).name}.json')
    atomic_write(out, json.dumps(r, indent=1, default=str) + '\n'); print('wrote', out)


if __name__ == '__main__':
    main()
