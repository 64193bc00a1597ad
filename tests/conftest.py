"Shared fixtures: real audio (the bundled sample and ../shared/data/ravdess16k) and a way to run the CLI as a user does."
import os, sys, subprocess, shutil
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
RAVDESS = Path(os.environ.get('VOICE_EMOTION_RAVDESS', ROOT.parent/'shared'/'data'/'ravdess16k'))
NEMO = Path(os.environ.get('VOICE_EMOTION_NEMO', ROOT.parent/'shared'/'data'/'nemo16k'))

def interruptible():
    "A child's Ctrl-C as at a terminal: a shell hands a job started with `&` an ignored SIGINT, so `CI=... &` would too."
    import signal
    signal.signal(signal.SIGINT, signal.SIG_DFL)

@pytest.fixture(autouse=True, scope='session')
def isolated_cache(tmp_path_factory):
    "Every test run gets its own feature cache, so results never depend on an earlier run's."
    os.environ['VOICE_EMOTION_CACHE'] = str(tmp_path_factory.mktemp('cache'))

@pytest.fixture(scope='session')
def ravdess():
    if not (RAVDESS/'Actor_01').is_dir(): pytest.skip(f'real RAVDESS data not found at {RAVDESS}')
    return RAVDESS

@pytest.fixture(scope='session')
def nemo():
    if not (NEMO/'data.tsv').is_file(): pytest.skip(f'real nEMO data not found at {NEMO}')
    return NEMO

def run_cli(*args, timeout=900, cwd=None):
    "Run `voice-emotion` in a subprocess; (exit code, stdout, stderr)."
    r = subprocess.run([sys.executable, '-m', 'voice_emotion.cli', *map(str, args)], capture_output=True, text=True, timeout=timeout, cwd=cwd)
    return r.returncode, r.stdout, r.stderr

def assert_one_line_error(stderr, problems=1):
    "User errors are one line per problem, never a traceback: stderr holds exactly `problems` lines, each `voice-emotion…`."
    assert 'Traceback' not in stderr, stderr
    lines = [l for l in stderr.splitlines() if l.strip()]
    assert len(lines) == problems, f'{len(lines)} lines for {problems} problems:\n{stderr}'
    assert all(l.startswith('voice-emotion') for l in lines), stderr

@pytest.fixture(scope='session')
def sample_clips():
    from voice_emotion.data import sample_dir
    return sorted(sample_dir().rglob('*.flac'))
