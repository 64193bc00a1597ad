"""Inputs are read the same way by every command: one URL rule, a row for every entry named like audio that is no file,
a note on clipped audio, and a feature cache that counts clips, not the records two runs may both have stored."""
import json, os, shutil
from pathlib import Path
import numpy as np, pandas as pd, soundfile as sf
from conftest import run_cli

def test_a_url_in_a_training_manifest_is_named_as_a_url(sample_clips, tmp_path):
    rows = [dict(path=str(c), emotion='angry', speaker=f's{i}') for i, c in enumerate(sample_clips[:3])]
    rows.append(dict(path='http://127.0.0.1:9/clip.wav', emotion='angry', speaker='s0'))
    pd.DataFrame(rows).to_csv(tmp_path/'m.csv', index=False)
    from voice_emotion.data import scan_corpus
    _, problems = scan_corpus('manifest', tmp_path/'m.csv')
    assert problems.path.tolist() == ['http://127.0.0.1:9/clip.wav'] and problems.reason[0].startswith('a URL')

def test_entries_named_like_audio_that_are_no_file_get_a_row(sample_clips, tmp_path):
    shutil.copy(sample_clips[0], tmp_path/'real.flac')
    os.mkfifo(tmp_path/'pipe.wav')
    (tmp_path/'gone.flac').symlink_to(tmp_path/'nowhere.flac')
    (tmp_path/'folder.wav').mkdir()
    code, out, err = run_cli('predict', tmp_path, '--format', 'json', timeout=120)
    assert code == 1, err
    rows = {Path(r['path']).name: r for r in json.loads(out)}
    assert rows['real.flac']['emotion'] is not None
    assert rows['pipe.wav']['error'] == 'not a regular file (a pipe, socket or device)'
    assert rows['gone.flac']['error'] == 'a link to nothing'
    assert rows['folder.wav']['error'] == 'a folder named like an audio file'
    code, out, err = run_cli('predict', tmp_path/'pipe.wav', timeout=60)  # named directly: refused, never read
    assert code == 1 and 'not a regular file' in err

def test_clipped_audio_is_answered_with_a_note(sample_clips, tmp_path):
    from voice_emotion.inference import clipped_share, predict_file, predict_files
    y, sr = sf.read(sample_clips[5], dtype='float32')
    assert clipped_share(y) < 0.001  # speech as recorded
    sf.write(tmp_path/'clipped.flac', np.clip(y * 6 / np.abs(y).max(), -1, 1), sr)
    note = predict_file(tmp_path/'clipped.flac')['note']
    assert note.startswith('clipped: ') and 'of samples at the peak' in note
    assert predict_files([tmp_path/'clipped.flac']).note[0] == note
    assert predict_files([sample_clips[5]]).note.isna().all()

def test_the_cache_counts_clips_not_records(tmp_path):
    from voice_emotion.store import FeatureCache, cache_folders
    from voice_emotion.core import Config
    settings = {**Config().feature_settings(), 'max_len': 4}
    cache = FeatureCache(settings, tmp_path)
    cache.put('00' * 16, np.ones(cache.shape, np.float32))
    cache.put('11' * 16, np.ones(cache.shape, np.float32))
    cache.close()
    pack = next(cache.dir.glob('*.pack'))
    shutil.copy(pack, cache.dir/'another-run.pack')  # a second run computed the same clips at the same time
    [row] = cache_folders(tmp_path).to_dict('records')
    assert row['clips'] == 2 and row['bytes'] == 4 * cache.record_bytes

def test_two_runs_at_once_store_each_clip_once(tmp_path):
    "Two `features` commands started together on the same clips and cache: each clip stored once, counted once."
    import subprocess, sys
    from voice_emotion.store import FeatureCache, cache_folders
    cmd = [sys.executable, '-m', 'voice_emotion.cli', 'features', '--dataset', 'sample', '-n', '12', '--jobs', '1',
           '--cache-dir', str(tmp_path), '--json']
    runs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [r.communicate(timeout=600) for r in runs]
    assert all(r.returncode == 0 for r in runs), [o[1][-500:] for o in outs]
    [row] = cache_folders(tmp_path).to_dict('records')
    record = FeatureCache(json.loads(next((tmp_path/'features').glob('*/settings.json')).read_text()), tmp_path).record_bytes
    assert row['clips'] == 12 and row['bytes'] == 12 * record, row
