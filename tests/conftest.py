"Shared fixtures: the real data directory and the bundled encoder (converted once per cache)."
import pytest
from hybrid_nli.core import data_dir


@pytest.fixture(scope='session')
def data():
    return data_dir()


@pytest.fixture(scope='session')
def encoder():
    from hybrid_nli.encoder import load_encoder
    return load_encoder('bundled:multilingual-e5-small', device='cpu')
