"`voice-emotion report` end to end on the bundled sample, a failing stage, and the site in a real headless browser."
import json, re, shutil, subprocess, sys, os
from html.parser import HTMLParser
from pathlib import Path
import pytest
from conftest import run_cli, ROOT

pytestmark = pytest.mark.slow  # a full report run and a full docs build

STAGE_PAGES = ['01_data', '02_eda', '03_features', '06_model', '08_training', '09_evaluation', '10_inference', '11_experiments']

@pytest.fixture(scope='module')
def site(tmp_path_factory):
    "One full report run (all stages, few epochs) into a fresh reports folder."
    reports = tmp_path_factory.mktemp('site')/'reports'
    code, out, err = run_cli('report', '--epochs', '4', '--name', 'e2e', '--reports-dir', reports, timeout=1500)
    assert code == 0, out[-3000:] + err[-3000:]
    return reports, out

class Links(HTMLParser):
    def __init__(self): super().__init__(); self.links, self.imgs = [], []
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == 'a' and a.get('href'): self.links.append(a['href'])
        if tag == 'img': self.imgs.append(a.get('src', ''))

def parse(path):
    p = Links(); p.feed(Path(path).read_text(encoding='utf-8')); return p

def test_files_progress_and_index(site):
    reports, out = site
    run = reports/'e2e'
    for s in STAGE_PAGES: assert (run/f'{s}.ipynb').exists() and (run/f'{s}.html').exists(), s
    assert len(re.findall(r'^\[\d/8\] \w+ +ok', out, re.M)) == 8, out
    rec = json.loads((run/'run.json').read_text())
    assert rec['status'] == 'ok' and [s['stage'] for s in rec['stages']] == ['data', 'eda', 'features', 'model', 'training', 'evaluation', 'inference', 'experiments']
    assert all(s['seconds'] > 0 for s in rec['stages'])
    m = json.loads((run/'artifacts'/'metrics.json').read_text())
    assert rec['metrics']['accuracy'] == m['accuracy'] and rec['metrics']['n'] == m['n'] == 44  # the index shows the run's own numbers
    page = (run/'index.html').read_text()
    assert f"{100 * m['accuracy']:.1f} %" in page and 'keras' in page and 'Speaker-independent' in page
    assert 'e2e/index.html' in (reports/'index.html').read_text()

def test_every_link_resolves(site):
    reports, _ = site
    for page in [reports/'index.html', reports/'e2e'/'index.html']:
        for href in parse(page).links:
            if href.startswith(('http', '#', 'mailto:')): continue
            assert (page.parent/href.split('#')[0]).exists(), (page, href)

def test_stage_pages_embed_plots_and_audio(site):
    reports, _ = site
    eda = (reports/'e2e'/'02_eda.html').read_text()
    assert eda.count('<audio') >= 6 and 'data:audio/wav;base64' in eda
    for s in ('02_eda', '08_training', '09_evaluation', '10_inference'):
        imgs = parse(reports/'e2e'/f'{s}.html').imgs
        assert imgs and all(i.startswith('data:image/png;base64,') for i in imgs), s
    assert '<details class="ve-code">' in eda  # code folded away

def test_failed_stage_is_shown_and_later_stages_skipped(site, tmp_path):
    reports, _ = site
    nbs = tmp_path/'nbs'; shutil.copytree(ROOT/'nbs', nbs)
    import nbformat
    nb = nbformat.read(nbs/'06_model.ipynb', as_version=4)
    nb.cells.insert(3, nbformat.v4.new_code_cell("raise RuntimeError('deliberate failure for the test')"))
    nbformat.write(nb, nbs/'06_model.ipynb')
    before = (reports/'e2e'/'index.html').read_text()
    code, out, err = run_cli('report', '--name', 'broken', '--reports-dir', reports, '--notebooks', nbs, '--stages', 'data', 'model', 'training', timeout=600)
    assert code == 1
    rec = json.loads((reports/'broken'/'run.json').read_text())
    assert [s['status'] for s in rec['stages']] == ['ok', 'failed', 'skipped'] and rec['status'] == 'failed'
    assert 'deliberate failure for the test' in (reports/'broken'/'06_model.html').read_text()
    assert 'failed' in (reports/'broken'/'index.html').read_text()
    assert (reports/'e2e'/'index.html').read_text() == before  # the other run is untouched
    idx = (reports/'index.html').read_text()
    assert 'broken/index.html' in idx and 'e2e/index.html' in idx

def _chromium():
    for name in ('chromium', 'chromium-browser', 'google-chrome'):
        if shutil.which(name): return shutil.which(name)
    pytest.skip('no Chromium installed (Debian: apt-get install chromium)')

def _browser(url, tmp_path, *args):
    cmd = [_chromium(), '--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
           '--disable-sync', '--no-first-run', f'--user-data-dir={tmp_path/"profile"}', '--window-size=1280,2000', *args, url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)

CHECK = """<script>window.addEventListener('load', () => setTimeout(() => {
  const imgs = [...document.images].map(i => i.naturalWidth);
  document.body.setAttribute('data-img-widths', JSON.stringify(imgs));
  document.body.setAttribute('data-audio', document.querySelectorAll('audio').length);
  document.body.setAttribute('data-nav', JSON.stringify([...document.querySelectorAll('nav.ve-sidebar a')].map(a => a.href)));
}, 300));</script>"""

def _rendered(src, tmp_path)->tuple:
    "Open a page in headless Chromium: a screenshot is taken, then (decoded image widths, audio players, sidebar links)."
    probe = src.with_name(src.stem + '.probe.html')
    probe.write_text(src.read_text(encoding='utf-8').replace('</body>', CHECK + '</body>'), encoding='utf-8')
    try:
        shot = tmp_path/'shot.png'
        r = _browser(probe.as_uri(), tmp_path, f'--screenshot={shot}')
        assert shot.exists() and shot.stat().st_size > 10_000, r.stderr[-500:]
        dom = _browser(probe.as_uri(), tmp_path, '--virtual-time-budget=5000', '--dump-dom').stdout
    finally: probe.unlink()
    attr = lambda name: json.loads(re.search(f'data-{name}="([^"]*)"', dom).group(1).replace('&quot;', '"'))
    assert 'data-img-widths' in dom, dom[:500]
    return attr('img-widths'), attr('audio'), attr('nav')

@pytest.mark.parametrize('page', ['index.html', 'e2e/index.html', 'e2e/02_eda.html', 'e2e/09_evaluation.html'])
def test_pages_render_in_a_real_browser(site, tmp_path, page):
    reports, _ = site
    widths, audio, _ = _rendered(reports/page, tmp_path)
    if page.endswith(('02_eda.html', '09_evaluation.html')):
        assert len(widths) >= 3 and all(w > 0 for w in widths), widths  # every plot decoded and drawn
        assert page.endswith('09_evaluation.html') or audio >= 6
    else: assert widths == [] and audio == 0  # an index: links only, so no broken image can hide

@pytest.fixture(scope='module')
def docs(site):
    "The documentation site: every chapter executed with its default parameters, next to the report runs."
    reports, _ = site
    code, out, err = run_cli('docs', '--reports-dir', reports, timeout=1500)
    assert code == 0, out[-3000:] + err[-3000:]
    return reports/'docs', out

def test_docs_site_lists_every_chapter_and_links_resolve(docs):
    d, out = docs
    chapters = sorted(p.name for p in (ROOT/'nbs').glob('[0-9][0-9]*_*.ipynb'))
    assert len(re.findall(r'^\[\d+/\d+\] \S+ +ok', out, re.M)) == len(chapters) + 1  # and the index
    for nb in chapters: assert (d/nb.replace('.ipynb', '.html')).exists(), nb
    assert 'docs/index.html' in (d.parent/'index.html').read_text()
    for page in [d/'index.html', d/'08_training.html']:
        for href in parse(page).links:
            if href.startswith(('http', '#', 'mailto:')): continue
            assert (page.parent/href.split('#')[0]).exists(), (page, href)
    page = (d/'10_inference.html').read_text()
    assert 'predict_file' in page and '<nav class="ve-sidebar">' in page and 'default_exp' not in page

def test_docs_page_renders_in_a_real_browser(docs, tmp_path):
    d, _ = docs
    widths, _, nav = _rendered(d/'02_eda.html', tmp_path)
    assert len(widths) >= 5 and all(w > 0 for w in widths), widths   # every plot of the chapter decoded and drawn
    assert len(nav) >= 10 and all(Path(u.replace('file://', '')).exists() for u in nav), nav   # the sidebar's links resolve
