"""`predict` and `features` on a real Dask cluster (`dask scheduler` and two `dask worker` processes, 127.0.0.1 only):
a worker killed mid-run, resumption, a manifest, an unreachable scheduler, the benchmark."""
import json, os, shutil, signal, socket, subprocess, sys, time
from pathlib import Path
import numpy as np, pandas as pd, pytest
from conftest import run_cli, assert_one_line_error

DASK = Path(sys.executable).parent/'dask'
PARTITION = 26  # files per partition: one folder of the archive below

def free_port() -> int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]

@pytest.fixture(scope='module')
def cluster(tmp_path_factory):
    "A scheduler on 127.0.0.1 and two one-thread workers without nannies (so that a SIGKILL kills a worker for good)."
    from distributed import Client
    port, logs = free_port(), tmp_path_factory.mktemp('dask-logs')
    address = f'tcp://127.0.0.1:{port}'
    def start(name, *args):
        return subprocess.Popen([str(DASK), *args], stdout=open(logs/f'{name}.log', 'w'), stderr=subprocess.STDOUT)
    procs = [start('scheduler', 'scheduler', '--host', '127.0.0.1', '--port', str(port), '--no-dashboard')]
    procs += [start(f'worker{i}', 'worker', address, '--nthreads', '1', '--no-nanny', '--no-dashboard',
                    '--host', '127.0.0.1', '--name', f'worker{i}') for i in range(2)]
    try:
        with Client(address, timeout='60s') as c:
            c.wait_for_workers(2, timeout=120)
        yield dict(address=address, workers=procs[1:], logs=logs)
    finally:
        for p in procs:
            if p.poll() is None: p.terminate()
        for p in procs:
            try: p.wait(timeout=30)
            except subprocess.TimeoutExpired: p.kill()

@pytest.fixture(scope='module')
def archive(tmp_path_factory, sample_clips):
    "520 clips (the bundled sample under many names, 26 to a folder as speakers would be) and 3 broken files."
    d = tmp_path_factory.mktemp('archive')
    for i in range(520):
        folder = d/f'speaker{i // PARTITION:02d}'
        folder.mkdir(exist_ok=True)
        shutil.copy(sample_clips[i % len(sample_clips)], folder/f'clip{i:04d}.flac')
    (d/'broken').mkdir()
    (d/'broken'/'random.wav').write_bytes(np.random.default_rng(0).bytes(5000))
    (d/'broken'/'truncated.flac').write_bytes(sample_clips[0].read_bytes()[:700])
    (d/'broken'/'empty.mp3').write_bytes(b'')
    return d

@pytest.mark.slow
def test_a_killed_worker_loses_nothing_and_a_rerun_redoes_only_the_missing_part(cluster, archive, tmp_path):
    out = tmp_path/'predictions'
    args = ['predict', archive, '--scheduler', cluster['address'], '--output', out, '--partition-size', PARTITION]
    run = subprocess.Popen([sys.executable, '-m', 'voice_emotion.cli', *map(str, args)],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 300
    while not list(out.glob('part-*.parquet')):  # the first partition written: kill a worker mid-run
        assert run.poll() is None, run.communicate()
        assert time.monotonic() < deadline, 'no partition written in 300 s'
        time.sleep(0.02)
    from distributed import Client
    with Client(cluster['address'], timeout='30s') as c:  # kill it while it holds work, so that work must move
        addr = next(a for a, w in c.scheduler_info()['workers'].items() if w['name'] == 'worker0')
        while not c.processing()[addr]:
            assert time.monotonic() < deadline and run.poll() is None
            time.sleep(0.01)
        os.kill(cluster['workers'][0].pid, signal.SIGKILL)
    stdout, stderr = run.communicate(timeout=600)
    assert cluster['workers'][0].wait(timeout=10) == -signal.SIGKILL
    assert run.returncode == 1, stderr  # the broken files
    assert 'Traceback' not in stderr, stderr
    assert '3 inputs failed: see the error column' in stderr
    parts = sorted(out.glob('part-*.parquet'))
    assert f'523 inputs in {len(parts)} partitions: {len(parts)} written, 0 already complete, 0 failed' in stdout

    result = pd.read_parquet(out)
    inputs = sorted(str(p) for p in archive.rglob('*') if p.is_file())
    assert len(result) == len(inputs) and result.path.is_unique and sorted(result.path) == inputs  # each exactly once
    broken = result[result.path.str.contains('/broken/')]
    assert len(broken) == 3 and broken.error.notna().all() and broken.emotion.isna().all()
    assert result[~result.path.str.contains('/broken/')].error.isna().all()
    assert result.model.nunique() == 1

    from voice_emotion.inference import predict_files
    single = predict_files([archive])  # the single-process path, on the same files
    merged = single.merge(result, on='path', suffixes=('', '_cluster'))
    assert len(merged) == len(inputs)
    assert (merged.emotion.fillna('-') == merged.emotion_cluster.fillna('-')).all()
    p = [c for c in single if c.startswith('p_')]
    np.testing.assert_allclose(merged[p].to_numpy(float), merged[[f'{c}_cluster' for c in p]].to_numpy(float), atol=1e-5)

    gone = parts[3]
    before = {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in parts if f != gone}
    gone.unlink()
    code, stdout, stderr = run_cli(*args, timeout=600)  # the one worker left does it
    assert code == 1 and 'Traceback' not in stderr, stderr
    assert f'1 written, {len(parts) - 1} already complete' in stdout
    assert {f.name: (f.stat().st_ino, f.stat().st_mtime_ns) for f in out.glob('part-*.parquet') if f != gone} == before
    again = pd.read_parquet(out)
    assert gone.exists() and len(again) == len(inputs) and again.path.is_unique

def test_a_manifest_with_speakers_on_the_cluster(cluster, sample_clips, tmp_path):
    (tmp_path/'audio').mkdir()
    for c in sample_clips[:20]:
        shutil.copy(c, tmp_path/'audio'/c.name)
    rows = [dict(path=f'audio/{c.name}', speaker='one') for c in sample_clips[:20]] + [dict(path='audio/missing.wav', speaker='two')]
    pd.DataFrame(rows).to_parquet(tmp_path/'manifest.parquet')
    code, stdout, stderr = run_cli('predict', '--manifest', tmp_path/'manifest.parquet', '--scheduler', cluster['address'],
                                   '--format', 'json', '--speaker-norm', 'manifest', timeout=300)
    assert code == 1, stderr
    assert_one_line_error(stderr)
    out = json.loads(stdout)
    assert len(out) == 21 and out[-1]['error'] == 'no such file' and out[-1]['path'].endswith('missing.wav')
    assert all(r['note'] == 'speaker-normalised over its speaker (20 clips)' for r in out[:20])  # the manifest's speaker
    code, local, _ = run_cli('predict', '--manifest', tmp_path/'manifest.parquet', '--format', 'json', '--speaker-norm', 'manifest',
                             timeout=300)
    assert [r.get('emotion') for r in json.loads(local)] == [r.get('emotion') for r in out]  # no cluster: the same

def test_features_fill_the_cache_from_the_workers(cluster, sample_clips, tmp_path):
    cache = tmp_path/'cache'
    code, stdout, stderr = run_cli('features', '--dataset', 'sample', '--scheduler', cluster['address'],
                                   '--cache-dir', cache, '--json', timeout=300)
    assert code == 0, stderr
    r = json.loads(stdout)
    assert r['clips'] == len(sample_clips) and r['computed'] + r['cache_hits'] == r['clips'] and r['failures'] == 0
    code, stdout, _ = run_cli('features', '--dataset', 'sample', '--cache-dir', cache, '--json', timeout=300)
    assert json.loads(stdout)['cache_hits'] == len(sample_clips)  # what the workers wrote, one process reads

@pytest.mark.slow
def test_an_unreachable_scheduler_is_one_line_naming_it(sample_clips):
    address = f'tcp://127.0.0.1:{free_port()}'  # nothing listens there
    t = time.monotonic()
    code, _, stderr = run_cli('predict', sample_clips[0], '--scheduler', address, timeout=120)
    assert code == 1 and time.monotonic() - t < 60
    assert_one_line_error(stderr)
    assert f'cannot reach the Dask scheduler at {address}' in stderr and len(stderr.strip().splitlines()) == 1

@pytest.mark.slow
def test_the_cluster_benchmark_prints_its_figures():
    code, stdout, stderr = run_cli('bench', 'cluster', '-n', '24', '--format', 'json', timeout=600)
    assert code == 0, stderr
    r = json.loads(stdout)
    for k in ('single_process_clips_per_s', 'cluster_1_clips_per_s', 'cluster_2_clips_per_s', 'scheduler_ms_per_task'):
        assert r[k] > 0
    assert r['two_vs_one_worker'] == pytest.approx(r['cluster_2_clips_per_s'] / r['cluster_1_clips_per_s'], abs=0.01)
