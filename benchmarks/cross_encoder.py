"""What a cross-encoder NLI regime would cost against the fine-tuned bi-encoder regime, measured in one run on this host.

The fine-tuned regime (`nli.finetune_nli`) encodes premise and hypothesis apart (sentence-transformers `SoftmaxLoss` on
[u, v, |u-v|, u*v]); a cross-encoder (sentence-transformers `CrossEncoder`, the standard XNLI fine-tuning set-up)
reads them as one sequence. Both start from the bundled multilingual-e5-small, fp32, on real pairs:
1. training: forward + backward + AdamW of one batch of MultiNLI sample pairs, word embeddings frozen as in
   `finetune_nli`, the first --warmup steps excluded; s/step and s/pair (bi-encoder: two sequences of at most 128
   tokens; cross-encoder: one of at most 256);
2. attack queries: a query of the bi-encoder attack encodes only the perturbed hypothesis (the premise vector is cached,
   `attack.CachedNLIWrapper`), a cross-encoder query must read premise and hypothesis again; hypotheses/s against
   pairs/s on XNLI English test rows.
3. the two tokenisers: the ids the cross-encoder's tokenizer gives 50 XNLI test hypotheses in each of en zh hi th ar,
   against the bi-encoder's.
It prints the CPU model and the ratios, and writes them as JSON. No regime is built from these numbers: they are the
cost a cross-encoder regime would add (issue 16's optional item).

Run from the repository root:  .venv/bin/python benchmarks/cross_encoder.py
Options: --threads 2 --batch 32 --steps 6 --warmup 2 --queries 256 --out benchmarks/results/cross_encoder.json
"""
from __future__ import annotations
import argparse, json, platform, statistics, time
from pathlib import Path


def cpu_model() -> str:
    "The CPU model line of /proc/cpuinfo (or the platform's processor name)."
    for line in Path('/proc/cpuinfo').read_text().splitlines() if Path('/proc/cpuinfo').exists() else []:
        if line.startswith('model name'): return line.split(':', 1)[1].strip()
    return platform.processor()


def step_seconds(step, batches, warmup: int) -> list[float]:
    "Seconds of `step(batch)` for each batch after the first `warmup`."
    out = []
    for i, b in enumerate(batches):
        t = time.perf_counter(); step(b); dt = time.perf_counter() - t
        if i >= warmup: out.append(dt)
    return out


def bi_encoder_step(model, batch_size: int):
    "One `finetune_nli`-style step: SoftmaxLoss on [u, v, |u-v|, u*v], AdamW, embeddings frozen."
    import torch
    from sentence_transformers.sentence_transformer.losses import SoftmaxLoss
    model.max_seq_length = 128
    model[0].auto_model.get_input_embeddings().weight.requires_grad_(False)
    loss = SoftmaxLoss(model, model.get_sentence_embedding_dimension(), 3, concatenation_sent_multiplication=True)
    opt = torch.optim.AdamW([p for p in loss.parameters() if p.requires_grad], lr=2e-5)
    prompt = model.prompts.get('query', '')
    def step(batch):
        feats = [model.tokenize([prompt + t for t in texts]) for texts in (batch['premise'], batch['hypothesis'])]
        opt.zero_grad(); loss(feats, torch.tensor(batch['label'])).backward(); opt.step()
    return step


def cross_encoder_step(ce):
    "One cross-encoder step: premise and hypothesis as one sequence, cross-entropy over 3 labels, AdamW."
    import torch
    ce.model.get_input_embeddings().weight.requires_grad_(False)
    opt = torch.optim.AdamW([p for p in ce.model.parameters() if p.requires_grad], lr=2e-5)
    def step(batch):
        enc = ce.tokenizer(batch['premise'], batch['hypothesis'], padding=True, truncation=True, max_length=256,
                           return_tensors='pt')
        opt.zero_grad()
        torch.nn.functional.cross_entropy(ce.model(**enc).logits, torch.tensor(batch['label'])).backward(); opt.step()
    return step


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--threads', type=int, default=2); ap.add_argument('--batch', type=int, default=32)
    ap.add_argument('--steps', type=int, default=6); ap.add_argument('--warmup', type=int, default=2)
    ap.add_argument('--queries', type=int, default=256)
    ap.add_argument('--out', default='benchmarks/results/cross_encoder.json')
    a = ap.parse_args()
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder
    from hybrid_nli.data import load_mnli_sample, load_xnli
    from hybrid_nli.encoder import load_encoder, materialise_bundled
    torch.set_num_threads(a.threads); torch.manual_seed(0)
    train = load_mnli_sample().shuffle(seed=0).select(range(a.batch*(a.steps + a.warmup)))
    batches = [train[i*a.batch:(i + 1)*a.batch] for i in range(a.steps + a.warmup)]
    test = load_xnli('test', 'en').select(range(a.queries))
    bi = load_encoder('bundled:multilingual-e5-small', device='cpu')
    ce = CrossEncoder(str(materialise_bundled()), num_labels=3, max_length=256, device='cpu')
    train_s = dict(bi_encoder=step_seconds(bi_encoder_step(bi, a.batch), batches, a.warmup),
                   cross_encoder=step_seconds(cross_encoder_step(ce), batches, a.warmup))
    bi.eval(); ce.model.eval()
    hyps = [bi.prompts.get('query', '') + h for h in test['hypothesis']]
    pairs = list(zip(test['premise'], test['hypothesis']))
    with torch.inference_mode():
        t = time.perf_counter(); bi.encode(hyps, batch_size=a.batch, show_progress_bar=False); bi_s = time.perf_counter() - t
        t = time.perf_counter(); ce.predict(pairs, batch_size=a.batch, show_progress_bar=False); ce_s = time.perf_counter() - t
    same = [bi.tokenizer(h)['input_ids'] == ce.tokenizer(h)['input_ids']
            for l in ('en', 'zh', 'hi', 'th', 'ar') for h in load_xnli('test', l).select(range(50))['hypothesis']]
    med = {k: statistics.median(v) for k, v in train_s.items()}
    out = dict(cpu=cpu_model(), threads=a.threads, batch=a.batch, timed_steps=a.steps, queries=a.queries,
               train_s_per_step=med, train_s_per_pair={k: v/a.batch for k, v in med.items()},
               train_ratio=med['cross_encoder']/med['bi_encoder'],
               attack_queries_per_s=dict(bi_encoder_cached_premise=a.queries/bi_s, cross_encoder=a.queries/ce_s),
               attack_query_ratio=ce_s/bi_s, tokenizers_agree=f'{sum(same)} of {len(same)}', steps_s=train_s)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + '\n')
    print(f"{out['cpu']}, {a.threads} threads, batch {a.batch}")
    for k in med: print(f"  train {k:14s} {med[k]:.3f} s/step  {med[k]/a.batch:.4f} s/pair")
    print(f"  cross/bi training per pair: {out['train_ratio']:.2f}x")
    for k, v in out['attack_queries_per_s'].items(): print(f"  attack queries {k:26s} {v:.1f}/s")
    print(f"  cross/bi per attack query: {out['attack_query_ratio']:.2f}x")
    print(f"  same token ids: {out['tokenizers_agree']} hypotheses   -> {a.out}")


if __name__ == '__main__':
    main()
