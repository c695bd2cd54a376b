"""Benchmark one contrastive training step: seconds per step and achieved GFLOP/s against the machine's matmul ceiling.

Measures, in one run (batch 32, max_length 64, bundled multilingual-e5-small, fp32, --threads torch threads):
1. matmul ceiling: best fp32 `a @ b` GFLOP/s over square sizes and the model's own GEMM shapes, measured at the start
   and again at the end (the machine is shared: a drop shows interference);
2. the real trainer path (`build_trainer`: hybrid sampler over XQuAD en/de pairs, e5 prompts, MNRL, AdamW), with
   `freeze_embeddings` false and true, each in a fresh child process: s/step from step-end to step-end (data loading,
   tokenisation, forward, backward, clipping, optimizer, logging; the first --warmup steps excluded; checkpoints
   switched off), padded and real tokens per step, GFLOP/s from the padded shapes actually run, the child's peak RSS,
   and a torch.profiler table (top 10 ops by self CPU time) of one more step;
3. "batch 32, length 64" exactly: forward+backward of the MNRL loss on 32 queries + 32 passages of real XQuAD
   paragraph text truncated to 64 tokens (no padding), frozen and unfrozen, plus the AdamW step timed on its own
   (best of --padded-steps, like the matmul ceiling).
Every timed section also reports the CPU share it got (process CPU time / (wall x threads)): on a shared machine a
share well below 1 means another process took cores and the figures are low.

FLOPs: forward = 2 x (encoder Linear weights, 21.2 M) x tokens + attention 4 x layers x seq^2 x hidden per sequence;
training = 3 x forward. The word-embedding gradient (dense, 96 M rows x cols) and its AdamW update are memory-bound
work with no FLOPs counted; freezing the embeddings removes them.

Run from the repository root:  .venv/bin/python benchmarks/train_step.py
Options: --threads 2 --warmup 2 --steps 5 --padded-steps 2 --out benchmarks/results/train_step.json
"""
from __future__ import annotations
import argparse, json, multiprocessing, resource, statistics, tempfile, time
from pathlib import Path

OVERRIDES = ['batch_size=32', 'max_length=64', 'langs=[en, de]', 'save_steps=100000']
GEMM_OPS = ('aten::addmm', 'aten::mm', 'aten::bmm', 'aten::_scaled_dot_product_flash_attention_for_cpu',
            'aten::_scaled_dot_product_flash_attention_for_cpu_backward')


def matmul_ceiling(threads: int, repeats: int = 5) -> tuple[dict, float]:
    "Best fp32 GFLOP/s of `a @ b` per shape (m, k, n) (square sizes, then the encoder's GEMMs at 4096 and 1024 tokens), and the CPU share."
    import torch
    torch.set_num_threads(threads)
    shapes = {f'{s}x{s}x{s}': (s, s, s) for s in (1024, 1536, 2048)}
    for t in (4096, 1024):
        shapes |= {f'{t}x384x1536 (FFN up)': (t, 384, 1536), f'{t}x1536x384 (FFN down)': (t, 1536, 384),
                   f'{t}x384x384 (attn proj)': (t, 384, 384)}
    out, t0, c0 = {}, time.perf_counter(), time.process_time()
    for name, (m, k, n) in shapes.items():
        a, b = torch.randn(m, k), torch.randn(k, n)
        a @ b
        best = min(_timed(lambda: a @ b) for _ in range(repeats))
        out[name] = 2*m*k*n/best/1e9
    return out, cpu_share(time.perf_counter() - t0, time.process_time() - c0, threads)


def _timed(fn) -> float:
    t = time.perf_counter(); fn(); return time.perf_counter() - t


def cpu_share(wall: float, cpu: float, threads: int) -> float:
    "CPU time this process got per (wall time x threads): well below 1 means another process took the cores."
    return cpu/(wall*threads)


def model_dims(model) -> dict:
    "Encoder sizes the FLOP count needs."
    import torch
    am = model[0].auto_model
    linear = sum(m.weight.numel() for m in am.encoder.modules() if isinstance(m, torch.nn.Linear))
    return dict(linear_params=linear, layers=am.config.num_hidden_layers, hidden=am.config.hidden_size,
                params=sum(p.numel() for p in model.parameters()),
                trainable=sum(p.numel() for p in model.parameters() if p.requires_grad))


def train_gflop(shapes, dims) -> float:
    "Training GFLOP (3 x forward) of forward calls with (batch, padded length) `shapes`."
    fwd = sum(2*dims['linear_params']*b*s + 4*dims['layers']*s*s*dims['hidden']*b for b, s in shapes)
    return 3*fwd/1e9


def top_ops(prof, n: int = 10) -> list[dict]:
    "The `n` ops with the most self CPU time, and the share of all self CPU time."
    avgs = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in avgs)
    rows = sorted(avgs, key=lambda e: -e.self_cpu_time_total)
    return [dict(op=e.key, self_ms=e.self_cpu_time_total/1e3, share=e.self_cpu_time_total/total, calls=e.count) for e in rows[:n]]


def gemm_time(prof) -> tuple[float, float]:
    "Seconds of self CPU time in matmul and fused-attention kernels, and their share of all self CPU time."
    avgs = prof.key_averages()
    gemm = sum(e.self_cpu_time_total for e in avgs if e.key in GEMM_OPS)
    return gemm/1e6, gemm/sum(e.self_cpu_time_total for e in avgs)


def trainer_run(freeze: bool, warmup: int, steps: int, threads: int) -> dict:
    "Run in a fresh process: `warmup + steps + 1` real trainer steps; time them, count tokens, profile the last one."
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import TrainerCallback
    from hybrid_nli.trainer import build_trainer, load_config
    torch.set_num_threads(threads)
    total = warmup + steps + 1
    cfg = load_config(None, OVERRIDES + [f'max_steps={total}', f'freeze_embeddings={str(freeze).lower()}'])
    calls, begins, ends, cpu = [], {}, {}, {}  # calls: (step, batch, padded length, real tokens) per encoder forward
    prof = profile(activities=[ProfilerActivity.CPU])

    class Clock(TrainerCallback):
        def on_step_begin(self, args, state, control, **kw): begins[state.global_step + 1] = time.perf_counter()
        def on_step_end(self, args, state, control, **kw):
            ends[state.global_step], cpu[state.global_step] = time.perf_counter(), time.process_time()
            control.should_save = False  # a checkpoint is not part of a step
            if state.global_step == total - 1: prof.start()
            if state.global_step == total: prof.stop()

    with tempfile.TemporaryDirectory() as tmp:
        trainer = build_trainer(cfg, Path(tmp))
        dims = model_dims(trainer.model)
        def record(module, args):
            ids, mask = args[0]['input_ids'], args[0]['attention_mask']
            calls.append((trainer.state.global_step + 1, *ids.shape, int(mask.sum())))
        trainer.model[0].register_forward_pre_hook(record)
        trainer.add_callback(Clock())
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        trainer.train()
    timed = range(warmup + 1, warmup + steps + 1)
    per_step = [ends[s] - ends[s - 1] for s in timed]
    step_calls = [[c for c in calls if c[0] == s] for s in timed]
    gflop = [train_gflop([(b, l) for _, b, l, _ in cs], dims) for cs in step_calls]
    gemm_s, gemm_share = gemm_time(prof)
    return dict(freeze_embeddings=freeze, params=dims['params'], trainable=dims['trainable'], steps_timed=steps,
                s_per_step=sum(per_step)/steps, s_per_step_median=statistics.median(per_step), per_step=per_step,
                cpu_share=cpu_share(sum(per_step), cpu[warmup + steps] - cpu[warmup], threads),
                s_compute=statistics.mean(ends[s] - begins[s] for s in timed),
                padded_tokens=statistics.mean(sum(b*l for _, b, l, _ in cs) for cs in step_calls),
                real_tokens=statistics.mean(sum(r for *_, r in cs) for cs in step_calls),
                padded_lengths=[[l for _, _, l, _ in cs] for cs in step_calls],
                gflop_per_step=statistics.mean(gflop), gflops=sum(gflop)/sum(per_step),
                gflops_median=statistics.median(g/t for g, t in zip(gflop, per_step)),
                rss_after_load_gb=rss_before/2**20, peak_rss_gb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss/2**20,
                profile_top=top_ops(prof), profile_gemm_share=gemm_share,
                profile_gemm_gflops=train_gflop([(b, l) for s, b, l, _ in calls if s == total], dims)/gemm_s)


def padded64_run(warmup: int, steps: int, threads: int) -> dict:
    "Run in a fresh process: MNRL forward+backward on 32 + 32 texts of exactly 64 real tokens, then AdamW steps."
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from hybrid_nli.encoder import load_encoder
    from hybrid_nli.trainer import column_prompts, load_config, strategy_data
    torch.set_num_threads(threads)
    cfg = load_config(None, OVERRIDES + ['passage=paragraph'])
    paragraphs = list(dict.fromkeys(p for d in strategy_data(cfg).values() for p in d['positive']))
    model = load_encoder(cfg.model, cache=cfg.cache_dir)
    tok = model.tokenizer
    def batch(prompt, texts):
        return dict(tok([prompt + t for t in texts], truncation=True, max_length=64, padding='max_length', return_tensors='pt'))
    prompts = column_prompts(model)
    feats = [batch(prompts["anchor"], paragraphs[:32]), batch(prompts["positive"], paragraphs[32:64])]
    real = sum(int(f['attention_mask'].sum()) for f in feats)
    loss_fn = MultipleNegativesRankingLoss(model, scale=cfg.scale)
    model.train()  # dropout on, as in the trainer
    emb = model[0].auto_model.get_input_embeddings().weight
    out = {}
    for freeze in (True, False):
        emb.requires_grad_(not freeze)
        dims = model_dims(model)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
        def fwd_bwd(): loss_fn(feats, None).backward()
        def opt_step(): opt.step(); opt.zero_grad()
        fb, st = [], []
        for i in range(warmup + steps):
            if i == warmup: c0 = time.process_time()
            t = _timed(fwd_bwd); s = _timed(opt_step)
            if i >= warmup: fb.append(t); st.append(s)
        gflop = train_gflop([(32, 64), (32, 64)], dims)
        out['frozen' if freeze else 'unfrozen'] = dict(
            trainable=dims['trainable'], s_fwd_bwd=min(fb), s_optimizer=min(st), per_step=fb, optimizer=st,
            cpu_share=cpu_share(sum(fb) + sum(st), time.process_time() - c0, threads),
            gflop_per_step=gflop, gflops=gflop/min(fb), gflops_incl_optimizer=gflop/(min(fb) + min(st)))
    return dict(real_tokens=real, padded_tokens=2*32*64, steps_timed=steps, **out)


def in_child(fn, *args):
    with multiprocessing.get_context('spawn').Pool(1) as pool: return pool.apply(fn, args)


def main():
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--threads', type=int, default=2, help='torch threads')
    p.add_argument('--warmup', type=int, default=2, help='steps excluded from timing')
    p.add_argument('--steps', type=int, default=5, help='timed trainer steps per variant')
    p.add_argument('--padded-steps', type=int, default=2, help='timed forward+backward steps at exactly 64 tokens')
    p.add_argument('--out', default=Path(__file__).parent/'results'/'train_step.json', help='JSON file for the figures')
    args = p.parse_args()
    t0 = time.perf_counter()
    import torch
    mm_start, share_start = matmul_ceiling(args.threads)
    runs = {('frozen' if f else 'unfrozen'): in_child(trainer_run, f, args.warmup, args.steps, args.threads) for f in (False, True)}
    padded = in_child(padded64_run, 1, args.padded_steps, args.threads)
    mm_end, share_end = matmul_ceiling(args.threads)
    ceiling = max(*mm_start.values(), *mm_end.values())
    pct = lambda g: 100*g/ceiling

    print(f'torch {torch.__version__}, {args.threads} threads, batch 32, max_length 64, bundled multilingual-e5-small fp32')
    print(f"matmul GFLOP/s (start / end of run): " + ', '.join(f'{k} {mm_start[k]:.1f}/{mm_end[k]:.1f}' for k in mm_start))
    print(f'ceiling (best fp32 matmul): {ceiling:.1f} GFLOP/s; CPU share (start / end): {share_start:.2f}/{share_end:.2f} '
          f'(CPU time got / (wall x threads); well below 1 = the cores were shared)')
    print(f"\nreal trainer path, XQuAD en/de hybrid batches, {args.steps} steps after {args.warmup} warm-up")
    print(f"{'variant':<9} {'trainable':>9} {'s/step':>6} {'median':>6} {'compute':>7} {'tokens real/padded':>18} "
          f"{'GFLOP':>5} {'GFLOP/s':>7} {'% ceil':>6} {'CPU':>4} {'peak RSS':>8}  (GFLOP/s: median step)")
    for name, r in runs.items():
        print(f"{name:<9} {r['trainable']/1e6:>8.1f}M {r['s_per_step']:>6.2f} {r['s_per_step_median']:>6.2f} {r['s_compute']:>7.2f} "
              f"{r['real_tokens']:>8.0f}/{r['padded_tokens']:<9.0f} {r['gflop_per_step']:>5.0f} {r['gflops_median']:>7.1f} "
              f"{pct(r['gflops_median']):>5.1f}% {r['cpu_share']:>4.2f} {r['peak_rss_gb']:>6.2f}GB")
    print(f"\nexactly 64 tokens x (32 queries + 32 passages), real XQuAD paragraph text ({padded['real_tokens']} real tokens), "
          f"best of {padded['steps_timed']} steps after 1 warm-up")
    print(f"{'variant':<9} {'fwd+bwd s':>9} {'AdamW s':>7} {'GFLOP':>6} {'GFLOP/s':>7} {'% ceil':>6} {'incl. AdamW':>11} {'CPU':>4}")
    for name in ('frozen', 'unfrozen'):
        r = padded[name]
        print(f"{name:<9} {r['s_fwd_bwd']:>9.2f} {r['s_optimizer']:>7.2f} {r['gflop_per_step']:>6.0f} {r['gflops']:>7.1f} "
              f"{pct(r['gflops']):>5.1f}% {pct(r['gflops_incl_optimizer']):>10.1f}% {r['cpu_share']:>4.2f}")
    for name, r in runs.items():
        print(f"\nprofile, one trainer step ({name}): matmul + fused attention = {100*r['profile_gemm_share']:.0f}% of self CPU, "
              f"running at {r['profile_gemm_gflops']:.0f} GFLOP/s ({pct(r['profile_gemm_gflops']):.0f}% of ceiling)")
        for o in r['profile_top']:
            print(f"  {o['op'][:52]:<52} {o['self_ms']:>8.0f} ms {100*o['share']:>5.1f}% {o['calls']:>6} calls")

    from hybrid_nli.core import atomic_write
    figures = dict(setup=dict(threads=args.threads, warmup=args.warmup, torch=torch.__version__, overrides=OVERRIDES,
                              seconds_total=time.perf_counter() - t0),
                   matmul=dict(start=mm_start, end=mm_end, cpu_share_start=share_start, cpu_share_end=share_end, ceiling_gflops=ceiling),
                   trainer=runs, padded64=padded)
    f, u = runs['frozen'], runs['unfrozen']
    print(f"\nfreeze_embeddings=true: {u['s_per_step_median']/f['s_per_step_median']:.2f}x faster per step (median), "
          f"peak RSS {u['peak_rss_gb']:.2f} -> {f['peak_rss_gb']:.2f} GB; padding is {100*(1 - f['real_tokens']/f['padded_tokens']):.0f}% "
          f"of the trainer's tokens; CPU column: share of (wall x threads) this process got (below ~0.9 = cores shared, figures low)")
    print(f"\nwrote {atomic_write(args.out, json.dumps(figures, indent=2) + chr(10))} ({figures['setup']['seconds_total']:.0f} s)")


if __name__ == '__main__':
    main()
