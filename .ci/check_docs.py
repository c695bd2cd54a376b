"""Check the site without Quarto: process the notebooks as `nbdev_docs` does, render every page to HTML, regenerate
README.md.

Quarto cannot be installed on this project's CI machines, so this is the docs check CI can run:
1. `nbdev.serve.proc_nbs` applies nbdev's doc processors (hidden cells dropped, `show_doc`, exports) into `_proc/`;
2. every processed page is rendered to HTML with nbconvert into `_proc/_html/`; a page that fails to render, or whose
   HTML lacks a figure or table that the notebook contains, fails the check;
3. what Quarto would get wrong fails too: a table pandas truncated ("..." rows or columns), a figure wider than the
   content column (`MAX_FIG_IN` inches at its saved dpi), and TeX math that pandoc (the one Quarto runs, from the
   `pypandoc_binary` wheel) cannot convert;
4. README.md is regenerated from the processed `index.ipynb` (what `nbdev_readme` does with Quarto).
Code cells marked `#| output: asis` print Markdown (the computed prose of the index and the report's conclusions);
Quarto renders that output as Markdown, so here it becomes a Markdown cell before rendering and in the README.
"""
import base64, re, struct, subprocess, sys
from pathlib import Path

import nbformat, yaml
from nbconvert import HTMLExporter, MarkdownExporter
from nbdev.serve import proc_nbs

TABLE_MD = re.compile(r'^\s*\|?\s*:?-{3,}:?\s*\|', re.M)
ASIS = re.compile(r'^#\|\s*output:\s*asis\s*$', re.M)
TRUNCATED_HTML = re.compile(r'<t[dh][^>]*>\s*(?:\.\.\.|…)\s*</t[dh]>')
TRUNCATED_TEXT = re.compile(r'^\s*\.\.\.(?:\s|$)|\[\d+ rows x \d+ columns\]', re.M)
MATH = re.compile(r'\$\$.+?\$\$|(?<![\\$])\$(?=\S)[^$\n]+?(?<=\S)\$(?!\d)', re.S)  # pandoc's tex_math_dollars
CODE = re.compile(r'```.*?```|`[^`\n]*`', re.S)  # code blocks and spans hold no math
MAX_FIG_IN = 7.2  # Quarto's default content column is about 7 inches


def png_inches(png:bytes) -> float:
    "Width in inches of a PNG at the dpi it records (matplotlib writes pHYs; 100 dpi if absent)."
    width = struct.unpack('>I', png[16:20])[0]
    k = png.find(b'pHYs')
    dpi = struct.unpack('>I', png[k+4:k+8])[0]*0.0254 if k > 0 else 100
    return width/dpi


def output_problems(nb) -> list[str]:
    "Truncated tables and figures wider than the content column, by cell."
    out = []
    for i, cell in enumerate(nb.cells):
        for o in cell.get('outputs', []):
            data = o.get('data', {})
            html, text = data.get('text/html', ''), data.get('text/plain', '') if 'text/html' not in data else ''
            if TRUNCATED_HTML.search(html) or TRUNCATED_TEXT.search(text):
                out.append(f'cell {i}: a table is truncated (show every row, or a deliberate summary)')
            if 'image/png' in data and (w := png_inches(base64.b64decode(data['image/png']))) > MAX_FIG_IN:
                out.append(f'cell {i}: a figure is {w:.1f} in wide, the column {MAX_FIG_IN} in')
    return out


def pandoc_targets(quarto:Path=Path('_quarto.yml')) -> list[list[str]]:
    "The pandoc writers the site's math goes through: HTML with MathML (TeX parsed), and the commonmark variant."
    fmt = yaml.safe_load(quarto.read_text())['format'].get('commonmark') or {}
    return [['-t', 'html', '--mathml'], ['-t', 'commonmark' + (fmt.get('variant', '') if isinstance(fmt, dict) else '')]]


def math_problems(nb, targets=None) -> list[str]:
    "TeX math of the Markdown cells that pandoc cannot convert (its 'Could not convert TeX math' warnings)."
    math = [m for c in nb.cells if c.cell_type == 'markdown' for m in MATH.findall(CODE.sub('', c.source))]
    if not math: return []
    import pypandoc
    warnings = []
    for t in targets or pandoc_targets():
        r = subprocess.run([pypandoc.get_pandoc_path(), '-f', 'markdown', *t], input='\n\n'.join(math),
                           capture_output=True, text=True)
        warnings += [w for w in r.stderr.splitlines() if 'Could not convert TeX' in w]
    return [f'math pandoc cannot convert: {w.strip()}' for w in warnings]


def asis_to_markdown(nb):
    "Each code cell marked `#| output: asis` replaced by a Markdown cell holding what it printed (as Quarto shows it)."
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == 'code' and ASIS.search(cell.source):
            text = ''.join(o.get('text', '') for o in cell.get('outputs', [])
                           if o.get('output_type') == 'stream' and o.get('name') == 'stdout')
            nb.cells[i] = nbformat.v4.new_markdown_cell(text.strip())
    return nb


def expected(nb):
    "Number of figures and tables a page must show: image outputs, HTML tables in outputs, Markdown tables."
    figs = tables = 0
    for cell in nb.cells:
        if cell.cell_type == 'markdown': tables += len(TABLE_MD.findall(cell.source))
        for out in cell.get('outputs', []):
            data = out.get('data', {})
            figs += any(k.startswith('image/') for k in data)
            tables += data.get('text/html', '').count('<table')
    return figs, tables


def readme_text(index):
    "README.md from the processed index page: title, description, then its prose, computed prose included (no code)."
    nb = asis_to_markdown(nbformat.read(index, as_version=4))
    front = next(c for c in nb.cells if c.cell_type == 'raw' and c.source.startswith('---'))
    meta = yaml.safe_load(front.source.strip().strip('-'))
    nb.cells = [c for c in nb.cells if c is not front and c.cell_type != 'code']  # the prose; figures are on the site
    body, _ = MarkdownExporter().from_notebook_node(nb)
    body = body.replace('<!-- WARNING: THIS FILE WAS AUTOGENERATED! DO NOT EDIT! -->', '').strip()
    note = '<!-- generated from nbs/index.ipynb by .ci/check_docs.py; edit the notebook -->'
    return f"# {meta['title']}\n\n> {meta['description']}\n\n{note}\n\n{body}\n"


def main():
    proc = proc_nbs(force=True)
    html_dir = proc/'_html'; html_dir.mkdir(exist_ok=True)
    pages = sorted(proc.glob('*.ipynb'))
    failed, totals = [], [0, 0]
    for page in pages:
        nb = asis_to_markdown(nbformat.read(page, as_version=4))
        try: body, _ = HTMLExporter().from_notebook_node(nb)
        except Exception as e:
            failed.append(f'{page.name}: does not render ({e})'); continue
        (html_dir/page.with_suffix('.html').name).write_text(body, encoding='utf-8')
        failed += [f'{page.name}: {p}' for p in output_problems(nb) + math_problems(nb)]
        figs, tables = expected(nb)
        if body.count('<img') < figs or body.count('<table') < tables:
            failed.append(f'{page.name}: expected {figs} figures / {tables} tables, '
                          f'HTML has {body.count("<img")} / {body.count("<table")}')
        totals[0] += figs; totals[1] += tables
    Path('README.md').write_text(readme_text(proc/'index.ipynb'), encoding='utf-8')
    for f in failed: print('docs: FAIL', f)
    print(f'docs: {len(pages) - len(failed)} passed, {len(failed)} failed '
          f'({totals[0]} figures, {totals[1]} tables; HTML in {html_dir})')
    return 1 if failed or not pages else 0


if __name__ == '__main__':
    sys.exit(main())
