"The computed prose: every number of the index's answer and of the report's conclusions comes from `report.findings`."
import contextlib, copy, io, json, re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hybrid_nli.report import (RULES, answer_md, conclusions_md, convergence_paragraph, findings, halved, monotonic,
                               opposite, power_md, prose_numbers, regime_md, repeatable, unexplained_numbers)

ROOT = Path(__file__).resolve().parents[1]
RUN = ROOT/'results'/'cpu-full'


@pytest.fixture(scope='module')
def F():
    return findings(RUN)


def asis_output(nb_path):
    "What the `#| output: asis` cells of a notebook printed when it was last run."
    nb = json.loads(Path(nb_path).read_text())
    text = lambda o: ''.join(o.get('text', ''))   # a string, or the list of lines nbformat stores
    return [''.join(text(o) for o in c.get('outputs', []) if o.get('name') == 'stdout').strip()
            for c in nb['cells'] if c['cell_type'] == 'code' and '#| output: asis' in ''.join(c['source'])]


def test_every_number_is_a_finding(F):
    for md in (answer_md(F), conclusions_md(F)):
        assert len(prose_numbers(md)) > 30
        assert unexplained_numbers(md, F) == []


def test_a_typed_number_is_caught(F):
    assert unexplained_numbers(answer_md(F) + ' (multilingual mAP 0.4431)', F) == ['0.4431']


def test_prose_follows_the_numbers(F):
    "Change a number or a rule's input in the findings and the prose changes with it."
    G = copy.deepcopy(F)
    G['retrieval']['base']['multilingual'] += 0.01
    best = max(G['nli']['vs_base'], key=lambda k: G['nli']['vs_base'][k]['diff'])
    G['nli']['vs_base'][best].update(seed_diffs=[0.01]*3, seed_p=[0.001]*3, repeatable=True)
    a, b = answer_md(F), answer_md(G)
    assert f"{G['retrieval']['base']['multilingual']:.3f}" in b and a != b
    assert 'is repeatable' in b and ('is not repeatable' in a) == (not F['nli']['vs_base'][best]['repeatable'])


def test_words_are_the_rules_applied(F):
    for s in F['retrieval']['sweep'].values():
        assert s['monotonic'] == monotonic(s['values'])
    for k in ('rank_distance_norm', 'own_first'):
        b = F['retrieval'][k]
        assert b['halved'] == (b['ratio']['hi'] <= RULES['halved'])
    for x in [*F['retrieval']['claims'], *F['nli']['vs_base'].values()]:
        assert x['repeatable'] == repeatable(x['seed_diffs'], x['seed_p'])
        assert x['opposite'] == opposite(x['seed_diffs'], x['seed_p'])
    assert ('halved' in answer_md(F)) == F['retrieval']['rank_distance_norm']['halved']


def test_rules_pinned():
    assert monotonic([1, 2, 3]) and monotonic([3, 2, 1]) and not monotonic([1, 3, 2]) and not monotonic([1, 1, 2])
    assert repeatable([.01, .02, .03], [.01, .02, .049]) and not repeatable([.01, .02, .03], [.01, .02, .05])
    assert not repeatable([.01, -.02, .03], [.01, .01, .01])
    assert opposite([.01, -.02], [.01, .01]) and not opposite([.01, -.02], [.01, .2])
    assert halved([.40, .55]) and not halved([.40, .551])
    assert RULES['halved'] == 0.55 and RULES['alpha'] == 0.05 and RULES['level'] == 0.95


def test_saved_prose_is_current(F):
    "The committed notebooks (and so the README and the site) show the prose `findings` gives for the committed run."
    converged = convergence_paragraph(ROOT/'results'/'convergence')
    assert asis_output(ROOT/'nbs'/'index.ipynb')[:2] == [answer_md(F), converged]
    power = pd.read_csv(ROOT/'results'/'power'/'cpu-full-attack.csv')
    assert asis_output(ROOT/'nbs'/'10_results.ipynb') == [power_md(power), regime_md(ROOT/'results'/'cpu-finetune'),
                                                          converged, conclusions_md(F)]
    assert asis_output(ROOT/'nbs'/'09_report.ipynb') == []
    assert answer_md(F) in (ROOT/'README.md').read_text() and converged in (ROOT/'README.md').read_text()


def test_no_result_numbers_typed_in_markdown(F):
    "Markdown cells of the report and results pages, and the index's answer section, quote only the design's constants."
    design = dict(rules=F['rules'], alphas=F['retrieval']['sweep_alphas'], seeds=F['run']['seed_list'])
    report = [c for n in ('09_report', '10_results') for c in json.loads((ROOT/'nbs'/f'{n}.ipynb').read_text())['cells']]
    text = [''.join(c['source']) for c in report if c['cell_type'] == 'markdown']
    index = ''.join(''.join(c['source']) + '\n' for c in json.loads((ROOT/'nbs'/'index.ipynb').read_text())['cells']
                    if c['cell_type'] == 'markdown')
    text.append(index[index.index('## Where the answer stands'):index.index('## Quick start')])
    assert [n for t in text for n in unexplained_numbers(t, design)] == []


def test_rank_distance_is_the_papers(data):
    "At most one relevant candidate per language: last − first relevant rank = the paper's max − min parallel rank."
    import pandas as pd
    from hybrid_nli.data import load_retrieval
    from hybrid_nli.retrieval import relevance_index, retrieval_subset
    cfg = json.loads((RUN/'manifest.json').read_text())['config']
    for ev in ('mlqa_r', 'xquad_r'):
        ds = retrieval_subset(load_retrieval(ev, data_dir=data), cfg['retrieval_questions'])
        lang = np.array(ds['candidates']['lang'])
        assert max(pd.Series(lang[r]).value_counts().max() for r in relevance_index(ds) if len(r)) == 1


TYPED_MEASUREMENT = re.compile(r'(?<![\w.])\d+(?:\.\d+)?\s?(?:ms|s|min|minutes|h|hours|GFLOP/s|sent/s|sentences/s)'
                               r'(?![\w/])|(?<![\w.])\d+\.\d+\s?(?:%|×)')


def typed_measurements(md:str) -> list[str]:
    "Durations, throughputs, fractional percentages and speed-ups in prose outside code spans."
    return TYPED_MEASUREMENT.findall(re.sub(r'`[^`]*`', '', md))


def test_typed_measurement_is_caught():
    assert typed_measurements('took 9.4 min, 2.25× faster, 96.5 % of questions, `--budget 30 s` and 3 × 37') == \
        ['9.4 min', '2.25×', '96.5 %']


def test_no_measurements_typed_in_any_notebook():
    "Timings, speed-ups and fractional percentages in the notebooks' prose come from saved files, printed by cells."
    found = {(p.name, i): typed_measurements(''.join(c['source']))
             for p in sorted((ROOT/'nbs').glob('*.ipynb'))
             for i, c in enumerate(json.loads(p.read_text())['cells']) if c['cell_type'] == 'markdown'}
    assert {k: v for k, v in found.items() if v} == {}


@pytest.mark.parametrize('name', ['index', '07_attack', '08_experiment'])
def test_saved_computed_prose_is_current(name, monkeypatch):
    "Each `#| output: asis` cell of these pages, run again after the page's imports, prints what the page shows."
    monkeypatch.chdir(ROOT/'nbs')
    cells = [c for c in json.loads((ROOT/'nbs'/f'{name}.ipynb').read_text())['cells'] if c['cell_type'] == 'code']
    src = lambda c: ''.join(c['source'])
    saved = lambda c: ''.join(''.join(o.get('text', '')) for o in c['outputs'] if o.get('name') == 'stdout').strip()
    ns, module = {}, next((src(c).split()[-1] for c in cells if src(c).startswith('#| default_exp')), None)
    imports = [c for c in cells
               if src(c).startswith('#| hide') and 'import ' in src(c) and 'nbdev_export' not in src(c)]
    if module:   # what the page defined, as exported (its import sets the module up), and its imports
        exec(f'from hybrid_nli.{module} import *', ns)
        imports = [c for c in cells if src(c).startswith('#| export')][:1] + imports
    for c in imports: exec('\n'.join(l for l in src(c).splitlines() if not l.startswith('#|')), ns)
    asis = [c for c in cells if '#| output: asis' in src(c) and 'findings(' not in src(c)]   # findings: tested above
    assert asis
    for c in asis:
        out = io.StringIO()
        with contextlib.redirect_stdout(out): exec(src(c), ns)
        assert out.getvalue().strip() == saved(c)
