"Feature extraction on bad and unusual real files, the cache, and resuming a killed run."
import json, os, signal, subprocess, sys, time
from pathlib import Path
import numpy as np, soundfile as sf, pytest
from conftest import run_cli
from voice_emotion.core import Config
from voice_emotion.features import clip_features
from voice_emotion.store import extract_features, FeatureCache
from voice_emotion.bench import seed_features

@pytest.fixture(scope='module')
def odd_files(tmp_path_factory, sample_clips):
    "Real speech in every format, rate and layout the issue names, plus broken files."
    d = tmp_path_factory.mktemp('odd')
    y, sr = sf.read(sample_clips[10], dtype='float32')
    good = {}
    for ext, fmt in (('wav', 'WAV'), ('flac', 'FLAC'), ('ogg', 'OGG'), ('mp3', 'MP3')):
        sf.write(d/f'speech.{ext}', y, sr, format=fmt); good[f'speech.{ext}'] = True
    import soxr
    for rate in (8000, 44100, 48000):
        sf.write(d/f'rate{rate}.wav', soxr.resample(y, sr, rate), rate); good[f'rate{rate}.wav'] = True
    sf.write(d/'stereo.wav', np.stack([y, 0.5 * y], axis=1), sr); good['stereo.wav'] = True
    sf.write(d/'silence.wav', np.zeros(sr * 2, 'float32'), sr); good['silence.wav'] = True
    sf.write(d/'short.wav', y[:200], sr); good['short.wav'] = True
    with sf.SoundFile(d/'ten_minutes.flac', 'w', sr, 1, format='FLAC') as f:
        for _ in range(600 // 3): f.write(y[:sr * 3])
    good['ten_minutes.flac'] = True
    (d/'empty.wav').write_bytes(b'')
    (d/'text.wav').write_text('definitely not audio')
    raw = (d/'speech.wav').read_bytes(); (d/'corrupt.wav').write_bytes(raw[:44] + bytes(reversed(raw[44:2000])))
    (d/'truncated.flac').write_bytes((d/'speech.flac').read_bytes()[:300])
    sf.write(d/'zero.wav', np.zeros(0, 'float32'), sr)
    bad = {'empty.wav': 'empty file', 'text.wav': 'not an audio file (no decoder recognised it)', 'truncated.flac': 'not a readable audio file',
           'zero.wav': 'no audio samples'}
    return d, good, bad

def test_batch_keeps_going_and_reports_reasons(odd_files):
    d, good, bad = odd_files
    names = sorted(good) + sorted(bad)
    batch = extract_features([d/n for n in names], cache_dir=False, progress=False, jobs=2)
    assert np.isfinite(batch.X).all()
    ok = dict(zip(names, batch.ok))
    assert all(ok[n] for n in good), [n for n in good if not ok[n]]
    reasons = {Path(f['path']).name: f['reason'] for f in batch.failures}
    for n, why in bad.items(): assert reasons[n].startswith(why), (n, reasons[n])
    assert all('\n' not in r for r in reasons.values())

def test_formats_rates_and_layouts_agree(odd_files):
    d, _, _ = odd_files
    ref = clip_features(d/'speech.wav')
    assert np.abs(clip_features(d/'speech.flac') - ref).max() < 1e-3  # both lossless
    for name in ('rate44100.wav', 'rate48000.wav', 'stereo.wav'):
        F = clip_features(d/name)
        assert F.shape == (300, 154) and np.isfinite(F).all()
    for name in ('speech.ogg', 'speech.mp3', 'rate8000.wav'):  # lossy or band-limited: same log-mel below 4 kHz (80 bands)
        F = clip_features(d/name)
        assert np.corrcoef(F[:100, 25:105].ravel(), ref[:100, 25:105].ravel())[0, 1] > 0.98, name

def test_long_clip_is_cut_without_decoding_it_all(odd_files):
    d, _, _ = odd_files
    t = time.perf_counter(); F = clip_features(d/'ten_minutes.flac'); took = time.perf_counter() - t
    assert F.shape == (300, 154) and np.abs(F).min(axis=1).max() > 0  # all 300 frames are real signal
    assert took < 5, took  # a generous bound: decoding 10 minutes is not what happens

def test_agrees_with_seed_on_real_clips(sample_clips):
    for clip in sample_clips[::25]:
        a, b = seed_features(clip), clip_features(clip)
        assert np.abs(a[:, :13] - b[:, :13]).max() < 1e-2 and np.abs(a[:, 13:25] - b[:, 13:25]).max() < 1e-4
        assert np.abs(a[:, 25:153] - b[:, 25:153]).max() < 1e-2 and np.abs(a[:, 153] - b[:, 153]).max() <= 1 / 1024

def test_cli_cache_second_run_only_reads(tmp_path):
    code, out, err = run_cli('features', '--json', '--cache-dir', tmp_path)
    assert code == 0, err
    first = json.loads(out)
    assert first['clips'] == 176 and first['computed'] == 176 and first['failures'] == 0
    code, out, _ = run_cli('features', '--json', '--cache-dir', tmp_path)
    second = json.loads(out)
    assert second['cache_hits'] == 176 and second['computed'] == 0

@pytest.mark.slow
def test_killed_run_resumes(tmp_path, ravdess):
    cache = tmp_path/'cache'
    cmd = [sys.executable, '-m', 'voice_emotion.cli', 'features', '--dataset', 'ravdess', '--data-dir', str(ravdess), '--recipe', 'ensemble',
           '--jobs', '1', '--cache-dir', str(cache), '--json']  # the seed's features, whose cache `whole` counts
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    whole = lambda: len(FeatureCache(Config().feature_settings(), cache))  # records written in full
    while time.time() < deadline and whole() < 100: time.sleep(0.05)
    p.send_signal(signal.SIGKILL); p.wait()
    done = whole()
    assert 100 <= done < 879, done
    out = json.loads(subprocess.run(cmd, capture_output=True, text=True).stdout)
    assert out['failures'] == 0 and out['cache_hits'] >= done and out['cache_hits'] + out['computed'] == out['clips'] == 880  # six-class files by name, the duplicate too
    assert whole() == 879  # the cut record was skipped and its clip computed again; the duplicate shares its copy's entry

def test_changed_file_recomputes_only_it(tmp_path, sample_clips):
    d = tmp_path/'clips'; d.mkdir()
    paths = []
    for c in sample_clips[:5]:
        (d/c.name).write_bytes(c.read_bytes()); paths.append(d/c.name)
    extract_features(paths, cache_dir=tmp_path/'c', progress=False)
    y, sr = sf.read(paths[0]); sf.write(paths[0], y * 0.5 + 0.01, sr, format='FLAC')
    again = extract_features(paths, cache_dir=tmp_path/'c', progress=False)
    assert (again.stats['computed'], again.stats['cache_hits']) == (1, 4)

@pytest.mark.slow
def test_cli_bench_measures_side_by_side():
    code, out, err = run_cli('bench', 'features', '-n', '8', '--format', 'json')
    assert code == 0, err
    r = json.loads(out)
    assert r['clips'] == 8 and r['cold_duplicates_read_back'] == 0
    assert all(r[k] > 0 for k in ('seed_command_s', 'cold_command_s', 'warm_in_process_s', 'seed_peak_mb', 'project_peak_mb'))
    def within_rounding(ratio, num, den, step):  # `ratio` of the unrounded times that printed as `num` and `den`
        return (num - step) / (den + step) - 0.05 <= ratio <= (num + step) / max(den - step, 1e-9) + 0.05
    assert within_rounding(r['cold_vs_seed_command'], r['seed_command_s'], r['cold_command_s'], 0.005)   # the ratios are of the times printed
    assert within_rounding(r['warm_vs_seed_loop'], 8 / r['seed_loop_clips_per_s'], r['warm_in_process_s'], 0.0005 + 0.05 * 8 / r['seed_loop_clips_per_s'] ** 2)
    code, text, _ = run_cli('bench', 'features', '-n', '8')
    assert code == 0 and text.splitlines()[0] == f"8 clips, {r['cores']} cores"
    code, _, err = run_cli('features', '--bench')
    assert code == 2 and 'moved: voice-emotion bench features' in err and len(err.strip().splitlines()) == 1

def test_features_need_no_scipy_fft_import(sample_clips, tmp_path):
    "Workers start without `import scipy.fft` (0.15 s); the numbers equal those computed through scipy.fft."
    code = ('import sys, numpy as np; {}from voice_emotion.features import clip_features; '
            'np.save(sys.argv[2], clip_features(sys.argv[1])); print("scipy.fft" in sys.modules)')
    loaded = {}
    for first in ('', 'import scipy.fft; '):
        out = subprocess.run([sys.executable, '-c', code.format(first), str(sample_clips[0]), str(tmp_path/f'{len(first)}.npy')],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        loaded[first] = out.stdout.strip()
    assert loaded == {'': 'False', 'import scipy.fft; ': 'True'}
    assert np.array_equal(np.load(tmp_path/'0.npy'), np.load(tmp_path/f'{len("import scipy.fft; ")}.npy'))
