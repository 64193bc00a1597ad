"""A light install: the base package (no extras) predicts a clip in a fresh virtual environment, and a job whose extra
is missing says in one line which extra to install."""
import json, subprocess, sys, time
import pytest
from conftest import ROOT
from voice_emotion.core import EMOTIONS

@pytest.mark.slow
def test_the_base_install_predicts_and_names_the_extras_it_lacks(tmp_path, sample_clips):
    venv = tmp_path/'venv'
    subprocess.run([sys.executable, '-m', 'venv', str(venv)], check=True)
    py, cli = venv/'bin'/'python', venv/'bin'/'voice-emotion'
    t = time.perf_counter()
    r = subprocess.run([str(py), '-m', 'pip', 'install', '-q', str(ROOT)], capture_output=True, text=True, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    seconds = time.perf_counter() - t
    installed = subprocess.run([str(py), '-m', 'pip', 'freeze'], capture_output=True, text=True).stdout.lower()
    for heavy in ('tensorflow', 'keras', 'jupyterlab', 'papermill', 'dask', 'distributed', 'scikit-learn', 'nbdev'):
        assert f'\n{heavy}==' not in f'\n{installed}', heavy
    r = subprocess.run([str(cli), 'predict', str(sample_clips[0]), '--format', 'json'], capture_output=True, text=True,
                       timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    assert json.loads(r.stdout)[0]['emotion'] in EMOTIONS
    r = subprocess.run([str(cli), 'predict', str(sample_clips[0]), '--format', 'html', '-o', 'page.html'], capture_output=True,
                       text=True, timeout=300, cwd=tmp_path)  # the page needs nothing beyond the base either
    assert r.returncode == 0 and (tmp_path/'page.html').read_text().count('<audio') == 1, r.stderr[-2000:]
    for args, extra in ((['train', '--out', str(tmp_path/'run')], 'train'), (['report', '--notebooks', str(ROOT/'nbs')], 'notebooks'),
                        (['predict', str(sample_clips[0]), '--scheduler', 'local'], 'cluster')):
        r = subprocess.run([str(cli), *args], capture_output=True, text=True, timeout=300, cwd=tmp_path)
        assert r.returncode == 1 and r.stderr.strip().endswith(f"[{extra}] extra: pip install 'voice_emotion[{extra}]'"), (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    size = subprocess.run(['du', '-sm', str(venv)], capture_output=True, text=True).stdout.split()[0]
    print(f'base install: {size} MB in {seconds:.0f} s')
