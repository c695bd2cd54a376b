"""Whole experiment stages in fp32 and in bf16 on this host: stage time per kind, and what the results lose.

Runs one experiment config (default `configs/smoke.yaml`: 27 stages of every kind) twice in a scratch directory, with
`precision=fp32` and `precision=bf16`, one after the other on an otherwise idle host, then prints and writes
(`benchmarks/results/precision_stages.json`):

1. the host (CPU model, bf16 units) and what `precision: auto` resolves to;
2. stage seconds per kind (train, retrieval, nli, attack) in each precision and the bf16 speed-up of each: the ratios
   `experiment.COSTS` scales its bf16 set by (`COSTS_SOURCE` names this script);
3. what bf16 changes in the results: the largest absolute difference of each retrieval number (mAP, rank distance),
   of each NLI accuracy, and of each attack summary figure, over all encoders, languages and attacks.

Each run starts from an empty cache (no embeddings from the other run or an earlier one; the bundled encoder is
converted before the clock starts). Both runs use the same config, seed and data; the training stages of the two
precisions are different stages (bf16 enters the keys), so every figure of the bf16 run comes from bf16 training and
bf16 encoding. A ratio is only meaningful within one run of this script on one host.
Run from the repository root:  .venv/bin/python benchmarks/precision_stages.py [--config configs/smoke.yaml]
"""
from __future__ import annotations
import argparse, json, tempfile
from pathlib import Path

import pandas as pd

from hybrid_nli.core import atomic_write, cpu_model
from hybrid_nli.encoder import BUNDLED_PREFIX, cpu_bf16_flags, host_bf16, materialise_bundled, resolve_precision
from hybrid_nli.experiment import load_experiment, run_experiment

KEYS = dict(retrieval=['encoder', 'eval_set'], nli_accuracy=['encoder', 'regime', 'lang'],
            attacks=['encoder', 'regime', 'attack', 'lang'])
SKIP = {'dir', 'n', 'lo', 'hi', 'questions', 'pool_size', 'undefined_ap', 'own_first_chance', 'alpha', 'seed'}


def largest_differences(a:pd.DataFrame, b:pd.DataFrame, keys:list[str]) -> dict:
    "The largest |b - a| of every numeric column, rows matched on `keys`."
    m = a.merge(b, on=keys, suffixes=('_fp32', '_bf16'), validate='one_to_one')
    cols = [c for c in a.select_dtypes('number').columns if c not in SKIP and c not in keys]
    return {c: round(float((m[f'{c}_bf16'] - m[f'{c}_fp32']).abs().max()), 4) for c in cols}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--config', default='configs/smoke.yaml')
    ap.add_argument('--out', default='benchmarks/results/precision_stages.json')
    args = ap.parse_args()
    r = dict(config=args.config, host=dict(cpu=cpu_model(), flags=cpu_bf16_flags(), bf16_native=host_bf16('cpu'),
                                           auto=resolve_precision('auto', 'cpu')))
    print(f"host: {r['host']['cpu']}, native bf16: {r['host']['bf16_native']} -> auto = {r['host']['auto']}")
    tables = {}
    with tempfile.TemporaryDirectory() as tmp:
        for p in ('fp32', 'bf16'):
            cfg, cache = load_experiment(args.config, [f'precision={p}']), Path(tmp)/p/'cache'  # an empty cache per run
            if cfg.model.startswith(BUNDLED_PREFIX): materialise_bundled(cache=cache)  # converted before the clock
            root = run_experiment(cfg, Path(tmp)/p, cache=cache, log=lambda s: print(f'  {p}: {s}', flush=True))
            tables[p] = {n: pd.read_csv(root/f'{n}.csv') for n in ('timings', *KEYS)}
    sec = {p: tables[p]['timings'].groupby('stage').seconds.sum().round(1).to_dict() for p in tables}
    r['seconds'] = sec
    r['speedup'] = {k: round(sec['fp32'][k]/sec['bf16'][k], 2) for k in sec['fp32']}
    r['total_speedup'] = round(sum(sec['fp32'].values())/sum(sec['bf16'].values()), 2)
    r['largest_differences'] = {n: largest_differences(tables['fp32'][n], tables['bf16'][n], k)
                                for n, k in KEYS.items()}
    print('\n| stage kind | fp32 s | bf16 s | bf16 speed-up |\n|---|---|---|---|')
    for k in sec['fp32']: print(f"| {k} | {sec['fp32'][k]} | {sec['bf16'][k]} | {r['speedup'][k]}x |")
    print(f"| all | {sum(sec['fp32'].values()):.1f} | {sum(sec['bf16'].values()):.1f} | {r['total_speedup']}x |")
    print('\nlargest |bf16 - fp32| over every encoder, language and attack:')
    for n, d in r['largest_differences'].items(): print(f'  {n}: ' + ', '.join(f'{c} {v}' for c, v in d.items()))
    atomic_write(Path(args.out), json.dumps(r, indent=2))
    print(f'wrote {args.out}')


if __name__ == '__main__':
    main()
