"""Benchmark fp32 against bf16 on this host, every figure a ratio measured in the same run.

1. the host: CPU model, its native bf16 units (/proc/cpuinfo `amx_bf16` / `avx512_bf16`, torch's cpuinfo checks, the
   ATen capability) and what `precision: auto` resolves to here;
2. matmul ceilings: best GFLOP/s of `a @ b` in fp32 and in bf16, a square --matmul-n and the e5 FFN shape
   (--ffn-rows x 384 x 1536);
3. encoding: `SentenceTransformer.encode` of the bundled multilingual-e5-small through `encoder.encoding` (fp32
   pooling), --encode-n real XNLI test sentences from 15 languages, batch 64: sentences/s in fp32, in bf16 autocast
   (fp32 weights, as training encodes) and with the weights held in bf16 (`load_encoder(..., inference=True)`, as
   retrieval, NLI features and attacks encode), and the cosine of the bf16 vectors to the fp32 ones (min, mean);
4. training: s/step of the real trainer (`trainer.build_trainer`, the trainer's own `bf16=True` in bf16), X-X batches
   of --train-batch XQuAD en/de pairs at --train-len tokens, frozen embeddings; the first --train-warmup steps are not
   timed; the loss of each step is kept to compare the curves;
5. one attack stage end to end (the char attack on --attack-n XNLI test rows of --attack-lang, --budget queries each):
   what a TextAttack user would write (a plain wrapper in fp32 that encodes premise and hypothesis on every query,
   `attack.PlainNLIWrapper`) against this package's `attack.CachedNLIWrapper` in fp32 and in bf16 (held weights).
   The head is a softmax regression on 400 MultiNLI pairs of fp32 vectors (the same head for every wrapper; it costs
   microseconds).
   The fp32 cached and plain wrappers must give the same results; bf16 may flip an example near the boundary.

The figures only compare within one run on one host: never set a ratio from one host against one from another.
Run from the repository root:  .venv/bin/python benchmarks/precision.py
Defaults are the sizes for an AMX host (minutes); on a host without native bf16 (emulated, ~50x slower matmuls) use
e.g. --matmul-n 512 --ffn-rows 256 --encode-n 60 --train-batch 8 --train-len 32 --train-steps 2 --attack-n 2 --budget 30
"""
from __future__ import annotations
import argparse, json, os, platform, statistics, sys, tempfile, time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

PRECS = ('fp32', 'bf16')


def host() -> dict:
    "CPU model, bf16 flags, what auto resolves to, versions and threads."
    from hybrid_nli.encoder import cpu_bf16_flags, host_bf16, resolve_precision
    from hybrid_nli.core import cpu_model
    return dict(cpu=cpu_model(), cpus=os.cpu_count(), threads=torch.get_num_threads(), flags=cpu_bf16_flags(),
                bf16_native=host_bf16('cpu'), auto=resolve_precision('auto', 'cpu'), torch=torch.__version__,
                python=platform.python_version(), platform=platform.platform())


def gflops(m:int, k:int, n:int, dtype, reps:int=3) -> float:
    "Best GFLOP/s of an (m, k) @ (k, n) matmul in `dtype` over `reps` timed runs (after one warm-up)."
    a, b = torch.randn(m, k).to(dtype), torch.randn(k, n).to(dtype)
    a @ b; best = float('inf')
    for _ in range(reps):
        t = time.perf_counter(); a @ b; best = min(best, time.perf_counter() - t)
    return 2*m*k*n/best/1e9


def matmuls(n:int, ffn_rows:int) -> dict:
    shapes = {f'{n}x{n}x{n}': (n, n, n), f'{ffn_rows}x384x1536 (e5 FFN)': (ffn_rows, 384, 1536)}
    return {name: {p: round(gflops(*s, dtype), 2) for p, dtype in zip(PRECS, (torch.float32, torch.bfloat16))}
            for name, s in shapes.items()}


def xnli_sentences(n:int) -> list[str]:
    "`n` real XNLI test sentences, premises and hypotheses taken round-robin from all 15 languages."
    from hybrid_nli.data import XNLI_LANGS, load_xnli
    per = -(-n//(2*len(XNLI_LANGS)))
    ds = load_xnli('test', XNLI_LANGS).filter(lambda r: r < per, input_columns='row')
    by = {l: [] for l in XNLI_LANGS}
    for r in ds: by[r['lang']] += [r['premise'], r['hypothesis']]
    return [by[l][i] for i in range(2*per) for l in XNLI_LANGS][:n]


def encode_bench(n:int) -> dict:
    "sent/s of fp32, bf16 autocast (fp32 weights, as in training) and bf16 held weights (inference), and their cosines."
    from hybrid_nli.encoder import encoding, load_encoder
    texts, out, emb = xnli_sentences(n), {}, {}
    for name, p, held in (('fp32', 'fp32', False), ('bf16', 'bf16', False), ('bf16_held', 'bf16', True)):
        m = load_encoder(device='cpu', precision=p, inference=held)
        with encoding(m): m.encode(texts[:8], prompt_name='query')  # warm-up
        t = time.perf_counter()
        with encoding(m): emb[name] = m.encode(texts, prompt_name='query', batch_size=64, convert_to_numpy=True)
        dt = time.perf_counter() - t
        out[name] = dict(seconds=round(dt, 2), sentences_per_s=round(len(texts)/dt, 1))
    cos = lambda a, b: (a*b).sum(1)/np.linalg.norm(a, axis=1)/np.linalg.norm(b, axis=1)
    stats = lambda c: dict(min=float(c.min()), mean=float(c.mean()))
    return dict(sentences=len(texts), **out, cosine=stats(cos(emb['fp32'], emb['bf16'])),
                cosine_held=stats(cos(emb['fp32'], emb['bf16_held'])),
                cosine_held_vs_autocast=stats(cos(emb['bf16'], emb['bf16_held'])))


def train_bench(batch:int, length:int, warmup:int, steps:int) -> dict:
    "s/step and per-step losses of the real trainer in fp32 and in bf16."
    from transformers import TrainerCallback
    from hybrid_nli.trainer import TrainConfig, build_trainer, strategy_data
    out = {}
    for p in PRECS:
        cfg = TrainConfig(strategy='xx', langs=['en', 'de'], batch_size=batch, max_length=length, freeze_embeddings=True,
                          max_steps=warmup + steps, save_steps=10**6, precision=p)
        ends = []
        class Timer(TrainerCallback):
            def on_step_end(self, args, state, control, **kw): ends.append(time.perf_counter())
        with tempfile.TemporaryDirectory() as tmp:
            tr = build_trainer(cfg, Path(tmp), strategy_data(cfg)); tr.add_callback(Timer())
            t0 = time.perf_counter(); tr.train()
            ends = [t0] + ends
            per = [b - a for a, b in zip(ends, ends[1:])][warmup:]
            out[p] = dict(s_per_step=round(statistics.median(per), 3), steps=len(per), bf16_arg=tr.args.bf16,
                          losses=[round(h['loss'], 4) for h in tr.state.log_history if 'loss' in h])
    return dict(batch=batch, max_length=length, **out)


def _head():
    "A softmax-regression NLI head on 400 MultiNLI pairs of fp32 vectors: `classify(u, v)`."
    from sklearn.linear_model import LogisticRegression
    from hybrid_nli.data import load_mnli_sample
    from hybrid_nli.encoder import load_encoder
    from hybrid_nli.embeddings import encode_cached
    m = load_encoder(device='cpu')
    feats = lambda u, v: np.concatenate([u, v, np.abs(u - v), u*v], axis=1)
    mnli = load_mnli_sample().shuffle(seed=0).select(range(400))
    with tempfile.TemporaryDirectory() as tmp:
        u, v = (encode_cached(m, list(mnli[c]), 'query', cache=tmp) for c in ('premise', 'hypothesis'))
    head = LogisticRegression(max_iter=2000).fit(feats(u, v), list(mnli['label']))
    return lambda u, v: head.predict_proba(feats(u, v))


def attack_bench(lang:str, n:int, budget:int) -> dict:
    "One char-attack stage: plain fp32 wrapper vs the cached wrapper in fp32 and in bf16."
    from hybrid_nli.attack import CachedNLIWrapper, PlainNLIWrapper, attack_row, char_attack, setup_textattack
    from hybrid_nli.data import load_xnli
    from hybrid_nli.encoder import encoding, load_encoder
    setup_textattack()
    classify, rows = _head(), load_xnli('test', lang).select(range(n))
    out, got = {}, {}
    for name, wrap, p in (('plain fp32', PlainNLIWrapper, 'fp32'), ('cached fp32', CachedNLIWrapper, 'fp32'),
                          ('cached bf16', CachedNLIWrapper, 'bf16')):
        m = load_encoder(device='cpu', precision=p, inference=True)  # bf16: weights held in bf16, as attack stages do
        def encode(texts, m=m):
            with encoding(m):
                return m.encode(list(texts), prompt_name='query', batch_size=64, convert_to_numpy=True,
                                show_progress_bar=False, normalize_embeddings=True)
        w = wrap(encode, classify); attack = char_attack(w, lang, query_budget=budget)
        t, got[name] = time.perf_counter(), []
        for r in rows:
            res = attack.attack(OrderedDict(premise=r['premise'], hypothesis=r['hypothesis']), r['label'])
            a = attack_row(res, 'bench', r, 0.0, budget); got[name].append((a['result'], a['perturbed_hypothesis']))
        out[name] = dict(seconds=round(time.perf_counter() - t, 2), texts_encoded=w.n_encoded, queries=w.n_queries,
                         results=[x[0] for x in got[name]])
    same = lambda a, b: dict(results=sum(x[0] == y[0] for x, y in zip(got[a], got[b])),
                             texts=sum(x == y for x, y in zip(got[a], got[b])))  # result type; and the final text too
    return dict(lang=lang, examples=n, budget=budget, **out, same_fp32_cached_vs_plain=same('cached fp32', 'plain fp32'),
                same_bf16_vs_fp32=same('cached fp32', 'cached bf16'))


def table(r:dict) -> str:
    "The report as a Markdown table of fp32, bf16 and their ratio."
    h = r['host']; lines = [f"host: {h['cpu']} ({h['cpus']} cpus, {h['threads']} torch threads), torch {h['torch']}",
                            f"bf16 flags: {h['flags']} -> native bf16: {h['bf16_native']}, auto -> {h['auto']}", '',
                            '| what | fp32 | bf16 | bf16 speed-up |', '|---|---|---|---|']
    for name, g in r['matmul'].items():
        lines.append(f"| `a @ b` {name}, GFLOP/s | {g['fp32']} | {g['bf16']} | {g['bf16']/g['fp32']:.2f}x |")
    e = r['encode']
    lines.append(f"| encode {e['sentences']} XNLI sentences (15 languages), sent/s | {e['fp32']['sentences_per_s']} | "
                 f"{e['bf16']['sentences_per_s']} | {e['bf16']['sentences_per_s']/e['fp32']['sentences_per_s']:.2f}x |")
    if 'bf16_held' in e:
        lines.append(f"| encode, bf16 weights held (inference), sent/s | {e['fp32']['sentences_per_s']} | "
                     f"{e['bf16_held']['sentences_per_s']} | "
                     f"{e['bf16_held']['sentences_per_s']/e['fp32']['sentences_per_s']:.2f}x |")
    lines.append(f"| cosine bf16 vs fp32 (min / mean) | | {e['cosine']['min']:.6f} / {e['cosine']['mean']:.6f} | |")
    if 'cosine_held' in e:
        lines.append(f"| cosine bf16 held vs fp32 (min / mean) | | {e['cosine_held']['min']:.6f} / "
                     f"{e['cosine_held']['mean']:.6f} | |")
    t = r['train']
    lines.append(f"| training step ({t['batch']} pairs x {t['max_length']} tokens), s/step | {t['fp32']['s_per_step']} | "
                 f"{t['bf16']['s_per_step']} | {t['fp32']['s_per_step']/t['bf16']['s_per_step']:.2f}x |")
    lines.append(f"| training losses per step | {t['fp32']['losses']} | {t['bf16']['losses']} | |")
    a = r['attack']; plain = a['plain fp32']['seconds']
    lines.append(f"| char attack stage, {a['examples']} {a['lang']} examples x {a['budget']} queries, s "
                 f"(vs plain fp32 wrapper: {plain} s) | {a['cached fp32']['seconds']} | {a['cached bf16']['seconds']} | "
                 f"{plain/a['cached fp32']['seconds']:.2f}x / {plain/a['cached bf16']['seconds']:.2f}x vs plain |")
    sp, sb, n = a['same_fp32_cached_vs_plain'], a['same_bf16_vs_fp32'], a['examples']
    lines.append(f"| same attack result (and text): cached fp32 vs plain fp32 / bf16 vs fp32 | {sp['results']}/{n} "
                 f"({sp['texts']}/{n}) | {sb['results']}/{n} ({sb['texts']}/{n}) | |")
    return '\n'.join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    for k, v in dict(threads=2, matmul_n=2048, ffn_rows=3072, encode_n=980, train_batch=32, train_len=48, train_warmup=2,
                     train_steps=5, attack_n=5, budget=100).items():
        ap.add_argument('--' + k.replace('_', '-'), type=int, default=v)
    ap.add_argument('--attack-lang', default='en'); ap.add_argument('--out', default='benchmarks/results/precision.json')
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    r = dict(settings=vars(args), host=host())
    print(f"host: {r['host']['cpu']}, native bf16: {r['host']['bf16_native']}", flush=True)
    t = time.time(); r['matmul'] = matmuls(args.matmul_n, args.ffn_rows); print(f'matmul {time.time() - t:.0f} s', flush=True)
    t = time.time(); r['encode'] = encode_bench(args.encode_n); print(f'encode {time.time() - t:.0f} s', flush=True)
    t = time.time(); r['train'] = train_bench(args.train_batch, args.train_len, args.train_warmup, args.train_steps)
    print(f'train {time.time() - t:.0f} s', flush=True)
    t = time.time(); r['attack'] = attack_bench(args.attack_lang, args.attack_n, args.budget); print(f'attack {time.time() - t:.0f} s')
    r['table'] = table(r)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(r, indent=1, ensure_ascii=False, default=str) + '\n', encoding='utf-8')
    print(r['table']); print('wrote', args.out)


if __name__ == '__main__':
    main()
