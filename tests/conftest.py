"Shared fixtures: the real data directory, the bundled encoder (converted once per cache), the tiny experiment grid."
from pathlib import Path
import pytest, yaml
from hybrid_nli.core import data_dir


@pytest.fixture(scope='session')
def data():
    return data_dir()


@pytest.fixture
def root(tmp_path, monkeypatch):
    "An empty data directory (for damaged copies of real files) with its own cache, never another test's or the user's."
    monkeypatch.setenv('HYBRID_NLI_CACHE', str(tmp_path/'cache'))
    d = tmp_path/'data'; d.mkdir()
    return d


@pytest.fixture(scope='session')
def encoder():
    from hybrid_nli.encoder import load_encoder
    return load_encoder('bundled:multilingual-e5-small', device='cpu')


@pytest.fixture(scope='session')
def tiny_classifier(encoder):
    "(encode, classify) of `attack.tiny_classifier`: the bundled encoder and a softmax head on 400 MultiNLI pairs."
    from hybrid_nli.attack import tiny_classifier
    return tiny_classifier(encoder)


TINY = dict(name='tiny', strategies=['base', 'xx'], seeds=[0], sources=['xquad'],
            train=dict(langs=['en', 'de'], batch_size=4, max_length=32, max_steps=2, save_steps=1,
                       freeze_embeddings=True),
            retrieval_questions=5, nli_train_rows=300, nli_dev_rows=60, nli_test_rows=8, nli_langs=['en', 'de'],
            nli_head=dict(epochs=2), attacks=['char'], attack_langs=['de'], attack_examples=2, query_budget=20)


def write_tiny(folder, **changes) -> Path:
    "The tiny grid (7 stages: base and X-X on two languages, two steps) with `changes`, as an experiment YAML."
    p = Path(folder)/'exp.yaml'; p.write_text(yaml.safe_dump({**TINY, **changes})); return p
