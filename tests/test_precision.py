"Precision: bf16 embeddings match fp32 on real XNLI text in several scripts; fp32 keeps every key, path and config."
import dataclasses, json
from pathlib import Path

import numpy as np
import pytest, yaml, torch

from hybrid_nli.core import HybridNLIError
from hybrid_nli.encoder import encoding, host_bf16, load_encoder, model_precision, resolve_precision
from hybrid_nli.embeddings import encode_cached, encoder_fingerprint
from hybrid_nli.trainer import TrainConfig, config_dict, train

RESULTS = Path(__file__).parents[1]/'results'
LANGS = ['en', 'de', 'ru', 'ar', 'hi', 'zh', 'th', 'el']  # Latin, Cyrillic, Arabic, Devanagari, Han, Thai, Greek


def _xnli_texts(rows=2):
    "Premises and hypotheses of the first `rows` XNLI test rows in `LANGS` (real text, 8 scripts' worth of languages)."
    from hybrid_nli.data import load_xnli
    ds = load_xnli('test', LANGS).filter(lambda r: r < rows, input_columns='row')
    return list(ds['premise']) + list(ds['hypothesis'])


def test_auto_resolves_per_host():
    assert resolve_precision('auto', 'cpu') == ('bf16' if host_bf16('cpu') else 'fp32')
    with pytest.raises(HybridNLIError, match="unknown precision 'half'"): resolve_precision('half')


def test_bf16_embeddings_match_fp32_on_real_xnli(encoder, tmp_path):
    texts = _xnli_texts()  # 32 texts: bf16 is emulated (slow) on hosts without AMX / AVX512-BF16
    bf = load_encoder(device='cpu', precision='bf16')
    assert model_precision(bf) == 'bf16' and next(bf.parameters()).dtype == torch.float32
    a = encode_cached(encoder, texts, 'query', cache=tmp_path)
    b = encode_cached(bf, texts, 'query', cache=tmp_path)
    assert b.dtype == np.float32 and np.abs(np.linalg.norm(b, axis=1) - 1).max() < 1e-5  # normalised in fp32
    cos = (a*b).sum(1)/np.linalg.norm(a, axis=1)/np.linalg.norm(b, axis=1)
    assert cos.mean() >= 0.9999 and cos.min() >= 0.999, (cos.mean(), cos.min())
    assert sorted(p.name for p in (tmp_path/'embeddings').iterdir()) == sorted([encoder_fingerprint(encoder),
                                                                               encoder_fingerprint(bf)])



def test_bf16_held_weights_match_fp32_and_share_the_bf16_fingerprint(tmp_path):
    "Inference loads hold bf16 weights (`encoder.hold_bf16`): vectors within bounds of fp32, autocast's fingerprint."
    from hybrid_nli.encoder import holds_bf16
    texts = _xnli_texts()
    f32, auto = load_encoder(device='cpu'), load_encoder(device='cpu', precision='bf16')
    held = load_encoder(device='cpu', precision='bf16', inference=True)
    assert holds_bf16(held) and not holds_bf16(auto)
    assert encoder_fingerprint(held) == encoder_fingerprint(auto) != encoder_fingerprint(f32)
    a, b = (encode_cached(m, texts, 'query', cache=tmp_path/n) for m, n in ((f32, 'a'), (held, 'b')))
    assert b.dtype == np.float32 and np.abs(np.linalg.norm(b, axis=1) - 1).max() < 1e-5  # pooled and normalised in fp32
    cos = (a*b).sum(1)/np.linalg.norm(a, axis=1)/np.linalg.norm(b, axis=1)
    assert cos.mean() >= 0.9999 and cos.min() >= 0.999, (cos.mean(), cos.min())

def test_fp32_fingerprint_is_the_committed_one(encoder):
    "The committed NLI stages' heads were saved under this fingerprint: fp32 must still find them (and its cache)."
    committed = {json.loads(p.read_text())['encoder_fingerprint'] for p in RESULTS.glob('*/nli/base*/summary.json')}
    assert committed and encoder_fingerprint(encoder) in committed
    assert model_precision(encoder) == 'fp32'
    with encoding(encoder): assert (torch.ones(2, 2) @ torch.ones(2, 2)).dtype == torch.float32


def test_committed_config_yaml_unchanged(tmp_path, monkeypatch):
    "An fp32 (or auto, on a host without native bf16) run accepts the committed config.yaml; bf16 refuses it."
    class Passed(Exception): pass
    def passed(*args, **kwargs): raise Passed
    monkeypatch.setattr('hybrid_nli.trainer.check_training_plan', passed)  # stop right after the config.yaml check
    committed = sorted(RESULTS.glob('cpu-full/train/*/config.yaml'))
    assert committed
    for path in committed:
        cfg = TrainConfig(**yaml.safe_load(path.read_text()))
        assert yaml.safe_dump(config_dict(cfg), sort_keys=False) == path.read_text()
        run = tmp_path/path.parent.name; run.mkdir(); (run/'config.yaml').write_text(path.read_text())
        for p in ['fp32'] + (['auto'] if not host_bf16('cpu') else []):
            with pytest.raises(Passed): train(dataclasses.replace(cfg, precision=p), run)
        with pytest.raises(HybridNLIError, match='different config.yaml'):
            train(dataclasses.replace(cfg, precision='bf16'), run)


def test_bf16_training_runs_and_records(tmp_path):
    "The trainer's own bf16 path (use_cpu on CPU) trains, keeps fp32 weights, and records bf16 in run.json."
    cfg = TrainConfig(strategy='xx', langs=['en', 'de'], batch_size=2, max_length=12, max_steps=1, save_steps=1,
                      freeze_embeddings=True, precision='bf16')
    model = train(cfg, tmp_path/'run')
    run = json.loads((tmp_path/'run'/'run.json').read_text())
    assert run['precision'] == 'bf16' and run['config']['precision'] == 'bf16' and run['steps'] == 1
    assert 'precision: bf16' in (tmp_path/'run'/'config.yaml').read_text()
    assert (model/'model.safetensors').is_file()
