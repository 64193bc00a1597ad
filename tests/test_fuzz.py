"A fuzz test of `voice-emotion predict`: over a hundred generated broken files, each exactly one row, no traceback."
import json, subprocess, sys
from pathlib import Path
import numpy as np, soundfile as sf, pytest
from voice_emotion.core import EMOTIONS

FORMATS = {'wav': dict(format='WAV', subtype='PCM_16'), 'flac': dict(format='FLAC'),
           'ogg': dict(format='OGG', subtype='VORBIS'), 'mp3': dict(format='MP3')}

def broken_files(d: Path, clip: Path, seed: int = 7) -> list:
    "Write the broken files (and one intact file per format) into `d`; their names."
    rng = np.random.default_rng(seed)
    y, sr = sf.read(clip, dtype='float32')
    y = y[:2 * sr]
    names = []
    def write(name, data):
        (d/name).write_bytes(bytes(data)); names.append(name)
    for ext, kw in FORMATS.items():
        sf.write(d/f'intact.{ext}', y, sr, **kw); names.append(f'intact.{ext}')
        raw = (d/f'intact.{ext}').read_bytes()
        for k, cut in enumerate(sorted(rng.integers(1, len(raw), 10))):  # truncated at random offsets
            write(f'truncated{k}.{ext}', raw[:cut])
        for k in range(10):  # 1 to 46 bits flipped anywhere, the header included
            b = bytearray(raw)
            for i in rng.integers(0, len(b), 1 + 5 * k): b[i] ^= 1 << int(rng.integers(8))
            write(f'flipped{k}.{ext}', b)
    for k in range(12):  # random bytes under every extension
        write(f'random{k}.{list(FORMATS)[k % 4]}', rng.bytes(int(rng.integers(1, 20000))))
    b = bytearray((d/'intact.wav').read_bytes())  # a header that claims gigabytes of samples
    at = b.find(b'data')
    b[4:8], b[at + 4:at + 8] = (0xFFFFFFF0).to_bytes(4, 'little'), (0xFFFFFF00).to_bytes(4, 'little')
    write('gigabytes.wav', b)
    special = {'zero_samples.wav': (y[:0], sr, {}), 'zero_samples.flac': (y[:0], sr, {}), 'one_sample.wav': (y[:1], sr, {}),
               'one_sample.flac': (y[:1], sr, {}), 'nan.wav': (np.where(np.arange(len(y)) % 1000 == 7, np.nan, y), sr, dict(subtype='FLOAT')),
               'inf.wav': (np.where(np.arange(len(y)) == 3, np.inf, y), sr, dict(subtype='FLOAT')),
               'six_channels.wav': (np.tile(y[:, None], (1, 6)), sr, {}), 'eight_bit.wav': (y, sr, dict(subtype='PCM_U8')),
               'hires_24bit_96k.wav': (np.repeat(y, 6), 96000, dict(subtype='PCM_24'))}
    for name, (samples, rate, kw) in special.items():
        sf.write(d/name, samples, rate, **kw); names.append(name)
    import os
    os.mkfifo(d/'a_pipe.wav'); (d/'a_dangling_link.flac').symlink_to(d/'nowhere.flac'); (d/'a_folder.mp3').mkdir()
    return names + ['a_pipe.wav', 'a_dangling_link.flac', 'a_folder.mp3']  # named as audio, no file to read: a row each

def test_fuzz_every_file_one_row_no_traceback(tmp_path, sample_clips):
    names = broken_files(tmp_path, sample_clips[3])
    assert len(names) - len(FORMATS) >= 100
    out_file = tmp_path.parent/f'{tmp_path.name}.json'
    # one process (--jobs 1), so that its peak memory is the whole run's
    code = ("import sys, json; from voice_emotion.cli import main; rc = main(['predict', sys.argv[1], '--format', 'json', "
            "'--jobs', '1', '--output', sys.argv[2]]); hwm = next(int(l.split()[1]) for l in open('/proc/self/status') "
            "if l.startswith('VmHWM')); print(json.dumps([rc, hwm]))")
    r = subprocess.run([sys.executable, '-c', code, str(tmp_path), str(out_file)], capture_output=True, text=True, timeout=600)
    assert 'Traceback' not in r.stderr, r.stderr[-2000:]
    rc, hwm_kb = json.loads(r.stdout.strip().splitlines()[-1])
    assert rc == 1 and hwm_kb < 1_500_000, (rc, hwm_kb)
    assert all(l.startswith('voice-emotion') for l in r.stderr.splitlines()), r.stderr[-2000:]  # no decoder chatter
    rows = json.loads(out_file.read_text())
    got = [Path(row['path']).name for row in rows]
    assert sorted(got) == sorted(names)  # every file exactly once
    by_name = dict(zip(got, rows))
    for name, row in by_name.items():
        if row.get('error'):
            assert '\n' not in row['error'] and row.get('emotion') is None, (name, row)
        elif row['emotion'] is None:  # decoded, but no speech in it: the reason says so
            assert row['note'].startswith('no speech detected') and row['confidence'] is None, (name, row)
        else:
            assert row['emotion'] in EMOTIONS and np.isfinite(row['confidence']), (name, row)
            assert all(np.isfinite(p) for p in row['probabilities'].values()), (name, row)
    for ext in FORMATS: assert not by_name[f'intact.{ext}'].get('error'), by_name[f'intact.{ext}']
    for name in ('nan.wav', 'inf.wav'): assert 'NaN or infinite' in by_name[name]['error']
    for k in range(12): assert by_name[f'random{k}.{list(FORMATS)[k % 4]}'].get('error'), k
    errors = [row['error'] for row in rows if row.get('error')]
    silent = sum(1 for row in rows if not row.get('error') and row['emotion'] is None)
    print(f'{len(rows)} files: {len(rows) - len(errors) - silent} predicted, {silent} no speech, {len(errors)} errors; '
          f'peak memory {hwm_kb / 1024:.0f} MiB')
    for reason in sorted({e.split(' (')[0] for e in errors}):
        print(f'  {sum(e.startswith(reason) for e in errors):3d}  {reason}')


@pytest.fixture(scope='module')
def misuse(tmp_path_factory, sample_clips):
    "Files for the misuses below: a clip, a bundle with a pickled array, a manifest without speakers."
    import shutil
    from voice_emotion.inference import default_model_dir
    d = tmp_path_factory.mktemp('misuse')
    shutil.copy(sample_clips[0], d/'clip.flac')
    shutil.copytree(default_model_dir(), d/'pickled')
    h = dict(np.load(d/'pickled'/'head.npz')); h['mean'] = np.array([{}], dtype=object); np.savez(d/'pickled'/'head.npz', **h)
    from voice_emotion.bundle import record_file_hashes
    record_file_hashes(d/'pickled')
    (d/'manifest.csv').write_text(f'path\n{d/"clip.flac"}\n')
    return d

MISUSES = {
    '-o is a folder': lambda d: ['predict', d/'clip.flac', '-o', d],
    '-o in a missing folder': lambda d: ['predict', d/'clip.flac', '-o', d/'no'/'out.csv'],
    '-o is the input': lambda d: ['predict', d/'clip.flac', '-o', d/'clip.flac'],
    'a pickled array in a bundle': lambda d: ['predict', d/'clip.flac', '--model', d/'pickled'],
    'a wrong pin': lambda d: ['predict', d/'clip.flac', '--model-sha256', '0' * 64],
    'normalise by manifest speakers it lacks': lambda d: ['predict', '--manifest', d/'manifest.csv', '--speaker-norm', 'manifest'],
    'normalise recordings without --segment': lambda d: ['predict', d/'clip.flac', '--speaker-norm', 'recording'],
    'normalise folders with --segment': lambda d: ['predict', d/'clip.flac', '--segment', '--speaker-norm', 'folder'],
    'the old auto': lambda d: ['predict', d/'clip.flac', '--speaker-norm', 'auto'],
}

@pytest.mark.parametrize('case', MISUSES)
def test_no_misuse_is_an_internal_error(misuse, case):
    from conftest import run_cli
    code, out, err = run_cli(*MISUSES[case](misuse), timeout=120)
    assert code in (1, 2) and 'internal error' not in err and 'Traceback' not in err, (code, err)
    assert err.strip() and all(l.startswith(('voice-emotion', 'usage:', ' ')) for l in err.splitlines()), err
    assert (misuse/'clip.flac').stat().st_size > 0
