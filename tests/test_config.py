"Issue 13: every bad input is refused up front, as one line naming the config file, the field and its value (status 2)."
import os, shutil, subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest, yaml
from hybrid_nli import trainer
from hybrid_nli.cli import main
from hybrid_nli.core import HybridNLIError
from hybrid_nli.experiment import load_experiment
from hybrid_nli.trainer import TrainConfig, load_config

ROOT = Path(__file__).parent.parent
BASE = dict(name='t', strategies=['base', 'xx'], seeds=[0], sources=['xquad'],
            train=dict(langs=['en', 'de'], batch_size=4), retrieval_questions=5, nli_test_rows=8,
            nli_langs=['en', 'de'], attacks=['char'], attack_langs=['de'], attack_examples=2, query_budget=20)


@pytest.fixture
def cli(capsys):
    "`hybrid-nli ARGV` run in this process: (exit status, stderr)."
    def run(*argv):
        rc = main([str(a) for a in argv])
        return rc, capsys.readouterr().err
    return run


@pytest.fixture
def dry_run(cli, tmp_path):
    "`hybrid-nli run --dry-run` on a small experiment YAML in `tmp_path` with `changes`: (exit status, stderr)."
    def run(out=None, **changes):
        p = tmp_path/'exp.yaml'; p.write_text(yaml.safe_dump({**BASE, **changes}))
        return cli('run', '--config', p, '--out', out or tmp_path/'runs', '--dry-run')
    return run


def refused(result, *fragments):
    "Assert a one-line refusal `hybrid-nli: error: ...` with status 2 that contains every fragment."
    rc, err = result
    assert rc == 2 and err.startswith('hybrid-nli: error: ') and err.count('\n') == 1, (rc, err)
    for f in fragments: assert f in err, (f, err)


def test_valid_small_experiment_passes_dry_run(dry_run):
    assert dry_run() == (0, '')


def test_committed_configs_load():
    for p in sorted((ROOT/'configs').glob('*.yaml')):
        (load_config if p.name.startswith('train-') else load_experiment)(p)


def test_alphas_as_strings(dry_run, tmp_path):
    refused(dry_run(strategies=['hybrid'], alphas=['0.5']), str(tmp_path/'exp.yaml'),
            "field 'alphas' must be list[float] (got ['0.5']: item '0.5' is a string)")


def test_retrieval_questions_as_string(dry_run, tmp_path):
    refused(dry_run(retrieval_questions='50'), str(tmp_path/'exp.yaml'),
            "field 'retrieval_questions' must be int or null (got '50', a string)")


def test_bool_is_not_a_number(dry_run, cli, tmp_path):
    refused(dry_run(attack_examples=True), "field 'attack_examples' must be int (got True, a boolean)")
    refused(dry_run(seeds=[True]), "field 'seeds' must be list[int] (got [True]: item True is a boolean)")
    refused(cli('train', '--out', tmp_path/'run', '--set', 'batch_size=true'),
            "overrides: field 'batch_size' must be int (got True, a boolean)")


def test_config_is_a_directory(cli, tmp_path):
    refused(cli('run', '--config', tmp_path, '--dry-run'), f"config file {tmp_path} is a directory")
    refused(cli('train', '--config', tmp_path, '--out', tmp_path/'run'), f"config file {tmp_path} is a directory")


def test_out_is_a_file(dry_run, cli, tmp_path):
    f = tmp_path/'results'; f.write_text('not a folder')
    refused(dry_run(out=f), f"--out {f}: {f} is a file, not a directory")
    (tmp_path/'runs').mkdir(); (tmp_path/'runs'/'t').write_text('x')   # the experiment's own folder is a file
    refused(dry_run(), f"{tmp_path/'runs'/'t'} is a file, not a directory")
    refused(cli('train', '--out', f, '--set', 'langs=[en, de]'), f"--out {f}: {f} is a file, not a directory")


def test_out_under_a_file(dry_run, cli, tmp_path):
    f = tmp_path/'file'; f.write_text('x')
    refused(cli('train', '--out', f/'a'/'run', '--set', 'langs=[en, de]'),
            f"--out {f/'a'/'run'}: {f} is a file, so {f/'a'/'run'} cannot be made under it")
    refused(cli('nli', '--out', f/'nli', '--rows', 5), f"{f} is a file")
    refused(dry_run(out=f/'results'), f"{f} is a file")


def _unwritable(d:Path):
    "Make folder `d` unwritable for the test's user: `chattr +i` as root (permission bits do not stop root), else chmod"
    if os.geteuid() != 0: d.chmod(0o555); return lambda: d.chmod(0o755)
    if not shutil.which('chattr') or subprocess.run(['chattr', '+i', str(d)], capture_output=True).returncode:
        pytest.skip('running as root and chattr +i is not available: no way to make a folder unwritable')
    return lambda: subprocess.run(['chattr', '-i', str(d)], check=True)


def test_out_read_only(dry_run, cli, tmp_path):
    ro = tmp_path/'ro'; ro.mkdir(); undo = _unwritable(ro)
    try:
        refused(dry_run(out=ro), f"--out {ro}: cannot write in {ro} (")
        refused(cli('train', '--out', ro/'run', '--set', 'langs=[en, de]'), f"cannot write in {ro}")
        refused(cli('nli', '--out', ro/'nli', '--rows', 5), f"cannot write in {ro}")
    finally: undo()
    assert os.listdir(ro) == []
    refused(cli('nli', '--out', '/proc/hybrid-nli', '--rows', 5), 'cannot write in /proc')   # for any user


def test_nli_test_rows_negative(dry_run):
    refused(dry_run(nli_test_rows=-1), "field 'nli_test_rows' must be a positive int", '(got -1)')
    for k in ('nli_train_rows', 'nli_dev_rows', 'retrieval_questions', 'attack_examples'):
        refused(dry_run(**{k: 0}), f"field {k!r} must be a positive int", '(got 0)')


def test_nli_rows_zero(cli, tmp_path, monkeypatch):
    import hybrid_nli.encoder, hybrid_nli.nli
    refused(cli('nli', '--out', tmp_path/'nli', '--rows', 0), "--rows must be a positive int", '(got 0)')
    refused(cli('nli', '--out', tmp_path/'nli', '--langs', 'en', 'xx'), "--langs must be XNLI languages")
    refused(cli('nli', '--out', tmp_path/'nli', '--regime', 'finetuned', '--train-sets', 'mnli'),
            "--train-sets must be NLI training sets, each once")
    refused(cli('nli', '--out', tmp_path/'nli', '--regime', 'finetuned', '--epochs', 0),
            "--epochs must be a positive int")
    monkeypatch.setattr(hybrid_nli.encoder, 'load_encoder', lambda *a, **k: pytest.fail('the encoder was loaded'))
    with pytest.raises(HybridNLIError, match=r'run_nli: rows must be a positive int .*\(got 0\)'):
        hybrid_nli.nli.run_nli(tmp_path, rows=0)
    with pytest.raises(HybridNLIError, match=r"run_nli: unknown head field\(s\) \['epoch'\]"):
        hybrid_nli.nli.run_nli(tmp_path, epoch=3)
    assert not (tmp_path/'nli').exists()


def test_query_budget_zero(dry_run):
    refused(dry_run(query_budget=0), "field 'query_budget' must be a positive int (got 0)")


def test_unknown_nli_langs(dry_run):
    refused(dry_run(nli_langs=['en', 'xx']), "field 'nli_langs' must be XNLI languages", "(got ['en', 'xx'])")


def test_unknown_attack_langs(dry_run):
    refused(dry_run(attack_langs=['xx']), "field 'attack_langs' must be languages of the char attack")
    refused(dry_run(attacks=['char', 'codemix'], attack_langs=['sw']),   # an XNLI language without a MUSE dictionary
            "field 'attack_langs' must be languages of the codemix attack", "(got ['sw'])")


def test_unknown_train_langs(dry_run, cli, tmp_path):
    refused(dry_run(train=dict(langs=['en', 'ro'])), "field 'train.langs' must be languages of xquad",
            "(got ['en', 'ro'])")
    refused(dry_run(sources=['xquad', 'mlqa'], train=dict(langs=['en', 'th'])),   # th: in XQuAD only
            "field 'train.langs' must be languages of mlqa")
    refused(cli('train', '--out', tmp_path/'run', '--set', 'langs=[en, de, de]'), "a list without repeats")


def test_name_must_be_a_plain_folder_name(dry_run, tmp_path):
    for name in ['../../escape', 'a/b', 'a\\b', '..', '.hidden', '']:
        refused(dry_run(name=name), "field 'name' must be a plain folder name", f"(got {name!r})")
    assert sorted(os.listdir(tmp_path)) == ['exp.yaml']


def test_hybrid_with_one_language(cli, tmp_path):
    refused(cli('train', '--out', tmp_path/'run', '--set', 'strategy=hybrid', 'langs=[en]'),
            "overrides: field 'langs' must be at least two languages for strategy 'hybrid'", "(got ['en'])")
    with pytest.raises(HybridNLIError, match="field 'langs' must be at least two"):
        trainer.train(TrainConfig(langs=['en']), tmp_path/'r')
    # the data check behind it, which `train` and the experiment's config check also run: no X-Y batch can be planned
    with pytest.raises(HybridNLIError, match=r"would train 0 steps on xquad langs \['en'\]: 37 X-X and 0 X-Y batches"):
        trainer.check_training_plan(TrainConfig(langs=['en']))
    assert not (tmp_path/'run').exists() and not (tmp_path/'r').exists()


def test_xy_with_one_language(dry_run):
    refused(dry_run(strategies=['xy'], train=dict(langs=['en'])),
            "field 'train.langs' must be at least two languages for strategy 'xy'", "(got ['en'])")


def test_sub_dataset_smaller_than_batch(dry_run, cli, tmp_path):
    refused(dry_run(sources=['mlqa'], strategies=['xx', 'hybrid'], train=dict(langs=['ar', 'es'], batch_size=200)),
            str(tmp_path/'exp.yaml'), "'train.batch_size' = 200 is larger than sub-dataset(s) xy_ar_es (161 rows)",
            "lower batch_size")
    refused(cli('train', '--out', tmp_path/'run', '--set', 'source=mlqa', 'langs=[ar, es]', 'batch_size=200'),
            "overrides: field 'batch_size' = 200 is larger than sub-dataset(s)")
    assert not (tmp_path/'run').exists()   # refused before config.yaml is written or the model loads


def test_zero_optimizer_steps_save_no_model(cli, tmp_path, monkeypatch):
    "A trainer that ends without a step (stubbed: the real plan check passes) must not leave `model/` as if trained."
    class NoSteps:
        state = SimpleNamespace(global_step=0, log_history=[])
        def train(self, resume_from_checkpoint=None): pass
        def is_world_process_zero(self): return True
    monkeypatch.setattr(trainer, 'build_trainer', lambda cfg, out, data=None, heldout=None, callbacks=(): NoSteps())
    refused(cli('train', '--out', tmp_path/'run', '--set', 'langs=[en, de]', 'batch_size=4'),
            f"{tmp_path/'run'}: training ended after 0 optimizer steps, so no model/ was saved")
    assert not (tmp_path/'run'/'model').exists() and not (tmp_path/'run'/'run.json').exists()


def test_trainer_takes_further_callbacks(tmp_path):
    "`build_trainer(callbacks=...)` hands them to the trainer, with and without held-out scoring (benchmarks/convergence.py)."
    from transformers import TrainerCallback
    class Seen(TrainerCallback): pass
    for heldout in (0.0, 0.1):
        cfg = TrainConfig(langs=['en', 'de'], batch_size=4, max_steps=1, heldout=heldout, eval_steps=1 if heldout else 0)
        t = trainer.build_trainer(cfg, tmp_path, heldout=trainer.heldout_data(cfg) if heldout else None, callbacks=[Seen()])
        assert any(isinstance(c, Seen) for c in t.callback_handler.callbacks)


def test_usage_errors_are_one_line(cli, tmp_path):
    refused(cli('nli', '--rows', 'five', '--out', tmp_path), "argument --rows: invalid int value: 'five'")
    refused(cli('train'), 'the following arguments are required: --out')
