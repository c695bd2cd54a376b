"""Benchmark the attacks: seconds per attacked example, and queries/s of the cached vs the plain NLI model wrapper.

For each attack (script-aware character edits, MUSE code-mixing) and each language of --langs, the same --n XNLI test
rows are attacked twice with the same query budget: through `CachedNLIWrapper` (each distinct text encoded once) and
through `PlainNLIWrapper` (premise and hypothesis encoded for every query), interleaved example by example so that both
see the same machine load. The classifier is the bundled multilingual-e5-small (`query: ` prompt) with a softmax
regression head on 400 MultiNLI sample pairs: the head costs microseconds next to the encoder, so a real 06_nli head
changes which attacks succeed (and so how many queries they use), not the cost of a query.

Reported per attack and wrapper: examples, TextAttack queries (as its metrics count them: every candidate scored,
including hits of its goal-function cache), pairs that reached the wrapper, texts encoded, wall seconds, seconds per
example, queries/s, the CPU share the process got (CPU time / (wall x threads); well below 1 means another process
took the cores and the figures are pessimistic), and whether both wrappers produced the same result types and texts.

Threads: the default is one torch thread. On this project's 2-core machine, encoding 5 short sentences took 0.09 s
with 1 thread and 1.8 s with 2 threads while another process kept one core busy (the 2-thread kernels wait for a
descheduled thread); attack queries are small batches, so one thread per process (and one process per core) is the
robust setting. `--threads 2` measures the other one.

Run from the repository root:  .venv/bin/python benchmarks/attack_queries.py
Options: --langs en,de,ru,hi,ar,th,zh --n 5 --budget 100 --threads 1 --out benchmarks/results/attack_queries.json
"""
from __future__ import annotations
import argparse, json, os, platform, time
from collections import OrderedDict
from pathlib import Path

import numpy as np


def tiny_classifier():
    "(encode, classify) of the bundled encoder with `attack.tiny_classifier`'s head (400 MultiNLI pairs)."
    from hybrid_nli.attack import tiny_classifier
    from hybrid_nli.encoder import load_encoder
    return tiny_classifier(load_encoder('bundled:multilingual-e5-small', device='cpu'))


class Timed:
    "An `encode` callable that adds up its own wall time."
    def __init__(self, encode): self.encode, self.seconds = encode, 0.0
    def __call__(self, texts):
        t = time.perf_counter(); out = self.encode(texts); self.seconds += time.perf_counter() - t
        return out


def run(build, langs, n, budget, encode, classify, threads):
    "Attack the first `n` test rows of each language with both wrappers; totals per wrapper and per-example records."
    from hybrid_nli.attack import CachedNLIWrapper, PlainNLIWrapper, attack_row
    from hybrid_nli.data import load_xnli
    tot = {k: dict(examples=0, attacked=0, ta_queries=0, wrapper_pairs=0, texts_encoded=0, wall_s=0.0, attacked_wall_s=0.0,
                   encode_s=0.0, cpu_s=0.0) for k in ('cached', 'plain')}
    per_example = []
    for lang in langs:
        wrappers = {'cached': CachedNLIWrapper(Timed(encode), classify), 'plain': PlainNLIWrapper(Timed(encode), classify)}
        attacks = {k: build(w, lang, query_budget=budget) for k, w in wrappers.items()}
        for row in load_xnli('test', lang).select(range(n)):
            rec = dict(lang=lang, row=row['row'])
            for k, w in wrappers.items():
                q0, e0, s0 = w.n_queries, w.n_encoded, w.encode.seconds
                t, c = time.perf_counter(), time.process_time()
                r = attacks[k].attack(OrderedDict(premise=row['premise'], hypothesis=row['hypothesis']), row['label'])
                wall, cpu = time.perf_counter() - t, time.process_time() - c
                out = attack_row(r, 'bench', row, wall, budget)
                s = tot[k]
                s['examples'] += 1; s['ta_queries'] += out['num_queries']; s['wrapper_pairs'] += w.n_queries - q0
                s['texts_encoded'] += w.n_encoded - e0; s['wall_s'] += wall; s['cpu_s'] += cpu; s['encode_s'] += w.encode.seconds - s0
                if out['result'] != 'skipped': s['attacked'] += 1; s['attacked_wall_s'] += wall
                rec[k] = dict(result=out['result'], queries=out['num_queries'], seconds=round(wall, 3),
                              perturbed_hypothesis=out['perturbed_hypothesis'])
            rec['same'] = (rec['cached']['result'], rec['cached']['perturbed_hypothesis']) == (rec['plain']['result'], rec['plain']['perturbed_hypothesis'])
            per_example.append(rec)
            print(f"  {lang} row {row['row']}: cached {rec['cached']['result']} {rec['cached']['queries']} q {rec['cached']['seconds']:.2f} s | "
                  f"plain {rec['plain']['result']} {rec['plain']['queries']} q {rec['plain']['seconds']:.2f} s", flush=True)
    for s in tot.values():
        s |= dict(s_per_example=s['wall_s']/s['examples'], s_per_attacked_example=s['attacked_wall_s']/max(s['attacked'], 1),
                  queries_per_s=s['ta_queries']/s['wall_s'], encode_share=s['encode_s']/s['wall_s'],
                  cpu_share=s['cpu_s']/(s['wall_s']*threads))
    return tot, per_example


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--langs', default='en,de,ru,hi,ar,th,zh'); ap.add_argument('--n', type=int, default=5)
    ap.add_argument('--budget', type=int, default=100); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--out', default='benchmarks/results/attack_queries.json')
    args = ap.parse_args()
    import torch
    torch.set_num_threads(args.threads)
    from hybrid_nli.attack import char_attack, codemix_attack
    from hybrid_nli.attack import segment_words
    encode, classify = tiny_classifier()
    encode(['warm-up']); segment_words('ฉันไม่ได้คุยกับเขา 我们谈得很好')  # load the encoder's kernels, PyThaiNLP's and jieba's dictionaries
    langs = args.langs.split(',')
    report = dict(settings=vars(args) | dict(torch=torch.__version__, machine=platform.machine(), cpus=os.cpu_count()))
    for name, build in (('char', char_attack), ('codemix', codemix_attack)):
        print(name, flush=True)
        tot, per = run(build, langs, args.n, args.budget, encode, classify, args.threads)
        report[name] = dict(cached=tot['cached'], plain=tot['plain'], speedup=tot['cached']['queries_per_s']/tot['plain']['queries_per_s'],
                            same_results=sum(r['same'] for r in per), examples=per)
        c, p = tot['cached'], tot['plain']
        print(f"{name}: cached {c['s_per_example']:.2f} s/example ({c['s_per_attacked_example']:.2f} s not skipped), {c['queries_per_s']:.1f} q/s, "
              f"encode {c['encode_share']:.0%} of the time (cpu share {c['cpu_share']:.2f}); "
              f"plain {p['s_per_example']:.2f} s/example, {p['queries_per_s']:.1f} q/s, encode {p['encode_share']:.0%} (cpu share {p['cpu_share']:.2f}); "
              f"speed-up {report[name]['speedup']:.2f}x; same results {report[name]['same_results']}/{len(per)}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1, ensure_ascii=False) + '\n', encoding='utf-8')
    print('wrote', args.out)


if __name__ == '__main__':
    main()
