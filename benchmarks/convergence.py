"""Do encoders trained to convergence differ from the 60-step ones? (issue 18, item 1)

For each strategy (X-X, X-Y, hybrid at alpha 0.5), seed 0 (or --seed), trained on XQuAD: cpu-full's 60-step encoder (batch 32,
lr 2e-5) and cpu-paper's encoder (the paper's AdamW, lr 3e-5, weight decay 0.01, batch 64, 10 % of XQuAD's ids held
out, the held-out InfoNCE loss every 50 steps, patience 4, best step restored), with the model at every saved step kept.
Then the FULL MLQA-R (mono-, cross-, multilingual mAP) for the base encoder, each 60-step encoder, and the paper run's
models at `--steps`, its best step and its last step. Strategy by strategy, so a killed run keeps whole strategies;
a rerun skips what is done. Writes results/convergence/: heldout.csv (the paper runs' held-out curves),
retrieval.csv (one row per evaluated model) and per_question.csv.gz (each model's `RetrievalResult.to_frame`: every
question's language, id and AP in every pool, for paired comparisons and the paper's claims), and run.json (host,
configs, seconds).
Another training seed (the same recipes, the grids' seed N) goes to results/convergence-sN and its own runs.
Run from the repository root:  .venv/bin/python benchmarks/convergence.py [--seed 0] [--work DIR] [--steps 50 100 200]
"""
from __future__ import annotations
import argparse, gzip, json, shutil, time
from pathlib import Path

import pandas as pd
from transformers import TrainerCallback

from hybrid_nli.core import atomic_write, cpu_model
from hybrid_nli.data import load_retrieval
from hybrid_nli.encoder import cpu_bf16_flags, load_encoder
from hybrid_nli.experiment import grid, load_experiment
from hybrid_nli.retrieval import evaluate_retrieval
from hybrid_nli.trainer import _keep_processor_kwargs, config_dict, train

STRATEGIES = ['xx', 'xy', 'hybrid-a0.5']
OPTIMIZER_FILES = ('optimizer.pt', 'scheduler.pt', 'rng_state.pth', 'scaler.pt')


class KeepModels(TrainerCallback):
    "Copy the model of every saved checkpoint (not its optimizer states) to `keep/step-N`, so no step is rotated away."
    def __init__(self, keep:Path): self.keep = keep
    def on_save(self, args, state, control, **kw):
        ck, dst = Path(args.output_dir)/f'checkpoint-{state.global_step}', self.keep/f'step-{state.global_step}'
        if not dst.is_dir():
            tmp = dst.with_name(dst.name + '.tmp'); shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(ck, tmp, ignore=shutil.ignore_patterns(*OPTIMIZER_FILES))
            _keep_processor_kwargs(tmp); tmp.rename(dst)


def encoders(label:str) -> tuple:
    "The 60-step (cpu-full) and converged (cpu-paper) training configs of encoder `label`."
    pick = lambda c: next(e.train for e in grid(load_experiment(c)) if e.label == label)
    return pick('configs/cpu-full.yaml'), pick('configs/cpu-paper.yaml')


def heldout_rows(run:Path, strategy:str) -> pd.DataFrame:
    "The held-out curve of the finished paper run in `run`."
    h = pd.read_csv(run/'heldout_log.csv'); h.insert(0, 'strategy', strategy); return h


def score(path:str, ds, precision:str, cache:Path) -> tuple[dict, pd.DataFrame]:
    "Full-MLQA-R summary and per-question results (`RetrievalResult.to_frame`) of the encoder at `path`."
    t0 = time.time()
    r = evaluate_retrieval(load_encoder(path, precision=precision, inference=True), ds, cache=cache, name='mlqa_r')
    return dict(r.summary(), seconds=round(time.time() - t0, 1)), r.to_frame().round(6)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--work', default='runs/convergence', help='training runs and kept models (not committed)')
    ap.add_argument('--out', help='results directory (default: results/convergence, or results/convergence-sN for --seed N)')
    ap.add_argument('--seed', type=int, default=0, help="the grids' training seed")
    ap.add_argument('--steps', type=int, nargs='*', default=[50, 100, 200], help='paper-run steps scored besides best and last')
    args = ap.parse_args()
    sfx = f'-s{args.seed}' if args.seed else ''   # seed 0 keeps the first run's names, so it resumes
    work, out = Path(args.work), Path(args.out or f'results/convergence{sfx}')
    ret_csv, pq_csv, hl_csv = out/'retrieval.csv', out/'per_question.csv.gz', out/'heldout.csv'
    rows = pd.read_csv(ret_csv).to_dict('records') if ret_csv.is_file() else []
    pq = pd.read_csv(pq_csv) if pq_csv.is_file() else pd.DataFrame()
    curves = pd.read_csv(hl_csv) if hl_csv.is_file() else pd.DataFrame()
    ds = load_retrieval('mlqa_r'); cache = work/'embeddings'
    info = (json.loads((out/'run.json').read_text()) if (out/'run.json').is_file()   # a resumed run keeps its record
            else dict(host=dict(cpu=cpu_model(), flags=cpu_bf16_flags()), configs={}, seconds={}))

    def save():
        atomic_write(ret_csv, pd.DataFrame(rows).to_csv(index=False))
        atomic_write(pq_csv, gzip.compress(pq.to_csv(index=False).encode(), mtime=0))
        atomic_write(hl_csv, curves.to_csv(index=False))
        atomic_write(out/'run.json', json.dumps(info, indent=1, default=str) + '\n')

    def scored(model:str, strategy:str, recipe:str, step:int, path:str, precision:str):
        nonlocal pq
        if any(r['model'] == model for r in rows): return
        s, q = score(path, ds, precision, cache)
        rows.append(dict(model=model, strategy=strategy, recipe=recipe, step=step, **s))
        pq = pd.concat([pq, q.assign(model=model)[['model', *q.columns]]])
        print(f"{model}: multilingual {s['multilingual']:.4f} mono {s['monolingual']:.4f} "
              f"cross {s['cross-lingual']:.4f} ({s['seconds']} s)", flush=True); save()

    labels = [f'xquad/{s}/s{args.seed}' for s in STRATEGIES]
    scored('base', 'base', 'base', 0, 'bundled:multilingual-e5-small', encoders(labels[0])[1].precision)
    for label in labels:
        strategy = label.split('/')[1]
        short, paper = encoders(label)
        info['configs'][strategy] = dict(short=config_dict(short), paper=config_dict(paper))
        t0 = time.time(); m60 = train(short, work/f'{strategy}{sfx}-60')
        info['seconds'].setdefault(f'{strategy}-60 train', round(time.time() - t0, 1))
        scored(f'{strategy}-60', strategy, '60-step', short.max_steps, str(m60), short.precision)
        run = work/f'{strategy}{sfx}-paper'; keep = run/'kept'
        t0 = time.time(); train(paper, run, callbacks=[KeepModels(keep)])
        info['seconds'].setdefault(f'{strategy}-paper train', round(time.time() - t0, 1))
        rj = json.loads((run/'run.json').read_text())
        info['configs'][strategy].update(best_step=rj['best_step'], steps=rj['steps'])
        if curves.empty or strategy not in set(curves['strategy']):
            curves = pd.concat([curves, heldout_rows(run, strategy)])
        for step in sorted({*[s for s in args.steps if s <= rj['steps']], rj['best_step'], rj['steps']}):
            tag = 'best' if step == rj['best_step'] else 'last' if step == rj['steps'] else 'step'
            path = run/'model' if tag == 'best' else keep/f'step-{step}'
            scored(f'{strategy}-paper-{step}', strategy, f'paper ({tag})', step, str(path), paper.precision)
    save()


if __name__ == '__main__':
    main()
