"""What the project commits (report pages, the default bundle, saved results, the README) names no machine: no
absolute path of the machine that made it, no stderr noise about its setup."""
import json, re, subprocess
from conftest import ROOT

ARTEFACTS = ('reports', 'voice_emotion/models', 'tests/data', 'README.md')
MACHINE_PATH = re.compile(r'(?<![\w.~$-])/(?:tmp|root|home|work|Users|private|var/folders|mnt|opt)/')
NOISE = ('IProgress not found', 'PyTorch was not found', 'Kernel is running over TCP')
BINARY = {'.npz', '.flac', '.wav', '.onnx', '.png', '.bin'}

def stderr_of(name: str, text: str) -> str:
    "What a page or notebook shows as stderr (where setup noise would be); other text as it is."
    if name.endswith('.ipynb'):
        cells = json.loads(text)['cells']
        return '\n'.join(''.join(o.get('text', '')) for c in cells for o in c.get('outputs', []) if o.get('name') == 'stderr')
    if name.endswith('.html'):
        return '\n'.join(re.findall(r'vnd\.jupyter\.stderr"[^>]*>\s*<pre>(.*?)</pre>', text, re.S))
    return text

def machine_traces(text: str, name: str = '') -> list:
    "Where a text names a machine: its absolute paths, the project's own folder, setup noise on stderr."
    noise = stderr_of(name, text)
    return [m.group() for m in MACHINE_PATH.finditer(text)] + [str(ROOT)] * (str(ROOT) in text) + [n for n in NOISE if n in noise]

def test_the_check_sees_what_it_looks_for():
    assert machine_traces('"data_dir": "/tmp/ve-default-m0yfdwrs/manifest.csv"') == ['/tmp/']
    assert machine_traces('<pre>/work/build/.venv/tqdm/auto.py:21: TqdmWarning: IProgress not found') == ['/work/', 'IProgress not found']
    assert machine_traces('file:///home/me/a.wav') == ['/home/']
    assert machine_traces('../shared/data/ravdess16k, $TMPDIR/run, ~/audio, reports/docs/index.html, s3://bucket/calls') == []
    page = '<div data-mime-type="application/vnd.jupyter.stderr" tabindex="0">\n<pre>[transformers] PyTorch was not found.\n</pre>'
    assert machine_traces(page, 'x.html') == ['PyTorch was not found']

def test_no_committed_artefact_names_the_machine():
    files = subprocess.run(['git', 'ls-files', *ARTEFACTS], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert len(files) > 50, files
    found = {}
    for name in files:
        f = ROOT/name
        if f.suffix in BINARY or not f.is_file(): continue
        if traces := machine_traces(f.read_text(encoding='utf-8', errors='ignore'), name):
            found[name] = sorted(set(traces))
    assert not found, found
