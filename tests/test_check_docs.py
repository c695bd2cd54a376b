"The docs check fails on what Quarto would render wrong: truncated tables, figures wider than the column, bad TeX."
import base64, importlib.util, io
from pathlib import Path

import matplotlib; matplotlib.use('Agg')
import matplotlib.pyplot as plt
import nbformat
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location('check_docs', ROOT/'.ci'/'check_docs.py')
check_docs = importlib.util.module_from_spec(spec); spec.loader.exec_module(check_docs)


def page(*cells):
    return nbformat.v4.new_notebook(cells=list(cells))


def code_with(data:dict):
    c = nbformat.v4.new_code_cell('x')
    c.outputs = [nbformat.v4.new_output('execute_result', data=data)]
    return c


def png(width_in:float) -> str:
    fig = plt.figure(figsize=(width_in, 2)); buf = io.BytesIO(); fig.savefig(buf, format='png', dpi=100)
    plt.close(fig); return base64.b64encode(buf.getvalue()).decode()


def test_truncated_tables_fail():
    df = pd.DataFrame({'a': range(100)})
    with pd.option_context('display.max_rows', 10):
        short = code_with({'text/html': df.to_html(max_rows=10), 'text/plain': repr(df)})
    full = code_with({'text/html': df.to_html(), 'text/plain': df.to_string()})
    assert check_docs.output_problems(page(short)) == [
        'cell 0: a table is truncated (show every row, or a deliberate summary)']
    assert check_docs.output_problems(page(full)) == []


def test_wide_figures_fail():
    assert check_docs.output_problems(page(code_with({'image/png': png(7)}))) == []
    assert check_docs.output_problems(page(code_with({'image/png': png(9)}))) == \
        ['cell 0: a figure is 9.0 in wide, the column 7.2 in']


def test_math_pandoc_cannot_convert_fails():
    ap = r'$$\mathrm{AP}(q) = \frac{1}{\lvert R_q\rvert}\sum_{k \,:\, c_{(k)} \in R_q} \frac{n_q(k)}{k},$$'
    md = lambda s: page(nbformat.v4.new_markdown_cell(s))
    assert check_docs.math_problems(md(f'AP: {ap}, and $x_i$ inline')) == []
    assert check_docs.math_problems(md(r'`$HOME` or `$\notamacro`, costs $5 and $6')) == []   # code and money
    assert len(check_docs.math_problems(md(r'$\notamacro{x}$'))) == 1                      # TeX pandoc cannot parse
    assert len(check_docs.math_problems(md(ap), targets=[['-t', 'commonmark']])) == 1      # plain commonmark: no math
    assert ['-t', 'commonmark+tex_math_dollars'] in check_docs.pandoc_targets(ROOT/'_quarto.yml')
