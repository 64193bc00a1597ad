"`voice-emotion predict` end to end: formats, folders, timelines, bad input, exit codes."
import json, csv, io, resource, shutil, sys, subprocess
from pathlib import Path
import numpy as np, soundfile as sf, pytest
from conftest import run_cli, assert_one_line_error, interruptible
from voice_emotion.core import EMOTIONS

def test_default_model_is_shipped():
    from voice_emotion.inference import default_model_dir
    d = default_model_dir()
    assert (d/'bundle.json').exists() and (d/'MODEL_CARD.md').exists()
    card = (d/'MODEL_CARD.md').read_text()
    assert 'speaker-kfold' in card and 'CC BY-NC-SA 4.0' in card and 'voice-emotion' in card
    from voice_emotion.core import DEFAULT_RECIPE, Config, RECIPE_SECTIONS
    from voice_emotion.experiments import named_recipe
    made_with = json.loads((d/'bundle.json').read_text())['config']
    shipped, today = named_recipe(made_with['recipe_name']), Config.recipe(DEFAULT_RECIPE)
    for section in RECIPE_SECTIONS[:-2] + ('head',):  # made with today's default recipe (its network section is unused)
        assert Config.from_dict(made_with).section(section) == today.section(section) == shipped.section(section), section
    assert f"--recipe {made_with['recipe_name']}" in card

def test_files_and_folders_json(sample_clips):
    folder = sample_clips[0].parent
    code, out, err = run_cli('predict', folder, sample_clips[50], '--format', 'json')
    assert code == 0, err[-1500:]
    rows = json.loads(out)
    assert len(rows) == 44 + 1
    for r in rows:
        assert r['emotion'] in EMOTIONS and 0 < r['confidence'] <= 1
        assert set(r['probabilities']) == set(EMOTIONS) and abs(sum(r['probabilities'].values()) - 1) < 1e-3

def test_csv_table_and_output_file(tmp_path, sample_clips):
    code, out, err = run_cli('predict', *sample_clips[:3], '--format', 'csv', '--output', tmp_path/'p.csv')
    assert code == 0 and out == ''
    rows = list(csv.DictReader(io.StringIO((tmp_path/'p.csv').read_text())))
    assert len(rows) == 3 and {'path', 'emotion', 'confidence', *[f'p_{e}' for e in EMOTIONS]} <= set(rows[0])
    code, out, err = run_cli('predict', *sample_clips[:3])
    assert code == 0 and out.splitlines()[0].split()[:3] == ['file', 'emotion', 'conf'] and len(out.splitlines()) == 5

@pytest.fixture(scope='module')
def bad_files(tmp_path_factory, sample_clips):
    d = tmp_path_factory.mktemp('bad')
    y, sr = sf.read(sample_clips[3], dtype='float32')
    sf.write(d/'good.wav', y, sr)
    (d/'empty.wav').write_bytes(b'')
    (d/'notes.mp3').write_text('not audio')
    (d/'truncated.flac').write_bytes(sample_clips[4].read_bytes()[:200])
    sf.write(d/'blip.wav', y[:sr // 10], sr)
    (d/'nothing_here').mkdir()
    return d

def test_bad_input_one_line_each_others_still_predicted(bad_files):
    d = bad_files
    code, out, err = run_cli('predict', d/'good.wav', d/'empty.wav', d/'notes.mp3', d/'truncated.flac', d/'blip.wav',
                             d/'nothing_here', d/'missing.wav', '--format', 'json')
    assert code == 1
    assert_one_line_error(err, problems=6)
    rows = {Path(r['path']).name: r for r in json.loads(out)}
    assert rows['good.wav']['emotion'] in EMOTIONS
    assert rows['empty.wav']['error'] == 'empty file'
    assert rows['notes.mp3']['error'] == 'not an audio file (no decoder recognised it)'
    assert rows['truncated.flac']['error'].startswith('not a readable audio file')
    assert rows['blip.wav']['error'].startswith('too short to classify')
    assert rows['nothing_here']['error'].startswith('no audio files')
    assert rows['missing.wav']['error'] == 'no such file or folder'
    assert len([l for l in err.splitlines() if l.startswith('voice-emotion:')]) == 6

def test_usage_errors_exit_2(sample_clips):
    assert run_cli('predict', sample_clips[0], '--format', 'xml')[0] == 2
    assert run_cli('predict', sample_clips[0], '--segment', '--hop', '5', '--window', '2')[0] == 2
    code, _, err = run_cli('predict', sample_clips[0], '--model', '/no/such/bundle')
    assert code == 1; assert_one_line_error(err)

@pytest.fixture(scope='module')
def hour_long(tmp_path_factory, sample_clips):
    "One hour at 16 kHz: mostly silence, with a real clip every five minutes."
    path = tmp_path_factory.mktemp('long')/'hour.flac'
    sr = 16000
    with sf.SoundFile(path, 'w', sr, 1, format='FLAC') as f:
        for minute in range(60):
            block = np.zeros(sr * 60, 'float32')
            if minute % 5 == 0:
                y, _ = sf.read(sample_clips[minute % len(sample_clips)], dtype='float32'); block[sr:sr + len(y)] = y
            f.write(block)
    return path

@pytest.mark.slow
def test_one_hour_timeline_in_bounded_memory(hour_long):
    # VmHWM, not ru_maxrss: the latter keeps the forking parent's size across exec (a large pytest process inflates it)
    code = ("import sys, json; from voice_emotion.cli import main; rc = main(['predict', sys.argv[1], '--segment', '--format', 'json', "
            "'--output', sys.argv[2]]); hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM')); "
            "print(json.dumps([rc, hwm]))")
    out_file = hour_long.with_suffix('.json')
    r = subprocess.run([sys.executable, '-c', code, str(hour_long), str(out_file)], capture_output=True, text=True, timeout=900)
    rc, maxrss_kb = json.loads(r.stdout.strip().splitlines()[-1])
    assert rc == 0, r.stderr[-1500:]
    assert maxrss_kb < 2_000_000, maxrss_kb  # an hour of float32 at 22 kHz alone would be 320 MB; TensorFlow itself is most of this
    [res] = json.loads(out_file.read_text())
    tl = res['timeline']
    assert len(tl) == 2399 and tl[-1]['end'] == pytest.approx(3600, abs=2)
    voiced = [w for w in tl if w['emotion'] in EMOTIONS]
    assert 12 <= len(voiced) <= 40 and all(w['emotion'] in (*EMOTIONS, 'silence', 'no speech') for w in tl)
    assert res['emotion'] in EMOTIONS and res['silent_windows'] + res['no_speech_windows'] == len(tl) - len(voiced)

@pytest.mark.slow
def test_one_hour_without_segment_says_what_it_used(hour_long):
    code, out, err = run_cli('predict', hour_long, '--format', 'json')
    assert code == 0, err[-1500:]
    [r] = json.loads(out)
    assert 'only the first' in r['note'] and '3600.0 s' in r['note']

def test_not_audio_non_finite_and_decoder_chatter(tmp_path, sample_clips):
    "Random bytes named .mp3: 'not an audio file', the MP3 decoder's notes kept off the terminal (shown with -v); NaN samples: an error row."
    (tmp_path/'noise.mp3').write_bytes(np.random.default_rng(0).bytes(5000))
    bad = np.zeros(16000, np.float32); bad[[100, 200]] = np.nan, np.inf
    sf.write(tmp_path/'nan.wav', bad, 16000, subtype='FLOAT')
    code, out, err = run_cli('predict', tmp_path/'noise.mp3', tmp_path/'nan.wav', sample_clips[0], '--format', 'json')
    assert code == 1
    rows = {Path(r['path']).name: r for r in json.loads(out)}
    assert rows['noise.mp3']['error'] == 'not an audio file (no decoder recognised it)'
    assert rows['nan.wav']['error'] == 'its samples include NaN or infinite values'
    assert rows[sample_clips[0].name]['emotion'] in EMOTIONS
    assert 'MPEG' not in err and all(l.startswith('voice-emotion') for l in err.splitlines()), err
    code, out, err = run_cli('predict', tmp_path/'noise.mp3', '-v')
    assert 'Illegal Audio-MPEG-Header' in err

def test_no_speech_no_emotion(tmp_path, sample_clips):
    "Silence, hiss and hum get no emotion and a reason (not an error); the same speech 40 dB down still gets one."
    sr, rng = 16000, np.random.default_rng(0)
    t = np.arange(4 * sr) / sr
    sf.write(tmp_path/'silence.wav', np.zeros(3 * sr, np.float32), sr)
    sf.write(tmp_path/'hiss.wav', (rng.normal(size=4 * sr) * 0.01).astype(np.float32), sr)
    sf.write(tmp_path/'hum.wav', (0.3 * np.sin(2 * np.pi * 50 * t)).astype(np.float32), sr)
    y, sr_ = sf.read(sample_clips[7], dtype='float32')
    sf.write(tmp_path/'quiet_speech.wav', y * 0.01, sr_, subtype='PCM_16')
    code, out, err = run_cli('predict', *sorted(tmp_path.iterdir()), '--format', 'json', '--speaker-norm', 'off')
    assert code == 0, err[-1500:]
    rows = {Path(r['path']).stem: r for r in json.loads(out)}
    for name in ('silence', 'hiss', 'hum'):
        assert rows[name]['emotion'] is None and rows[name]['confidence'] is None, rows[name]
        assert rows[name]['note'] == 'no speech detected (0.0 s of speech)' and 'error' not in rows[name]
    assert rows['quiet_speech']['emotion'] in EMOTIONS and rows['quiet_speech']['speech'] > 1.0
    code, out, _ = run_cli('predict', tmp_path/'hiss.wav', tmp_path/'quiet_speech.wav')  # the table says it in words
    assert code == 0 and 'no speech detected' in out

def test_min_confidence_answers_uncertain(sample_clips):
    code, out, err = run_cli('predict', *sample_clips[:40], '--format', 'json', '--speaker-norm', 'off')
    assert code == 0, err[-1500:]
    p = round(float(np.median([r['confidence'] for r in json.loads(out)])), 2)  # a threshold between this model's answers
    code, out, err = run_cli('predict', *sample_clips[:40], '--min-confidence', p, '--format', 'json', '--speaker-norm', 'off')
    assert code == 0, err[-1500:]
    rows = json.loads(out)
    unsure = [r for r in rows if r['emotion'] == 'uncertain']
    assert unsure and len(unsure) < len(rows)
    assert all(r['confidence'] < p and f'below the {p:.2f} asked for' in r['note'] for r in unsure)
    assert all(r['confidence'] >= p for r in rows if r['emotion'] != 'uncertain')
    code, _, err = run_cli('predict', sample_clips[0], '--min-confidence', '1.5')
    assert code != 0 and 'min_confidence must be in [0, 1)' in err

@pytest.fixture(scope='module')
def nothing_readable(tmp_path_factory):
    "Inputs of which no file can be predicted: a missing path, an empty folder, a folder without audio, only broken files."
    d = tmp_path_factory.mktemp('none')
    (d/'empty').mkdir(); (d/'text_only').mkdir(); (d/'text_only'/'notes.txt').write_text('no audio here')
    (d/'broken').mkdir(); (d/'broken'/'a.wav').write_bytes(b'RIFF\x00\x00\x00\x00WAVEfmt garbage'); (d/'broken'/'b.flac').write_bytes(b'')
    return {'missing': ([d/'missing.wav'], ['no such file or folder']),
            'empty folder': ([d/'empty'], ['no audio files (.wav, .flac, .ogg, .mp3) in this folder']),
            'no audio in folder': ([d/'text_only'], ['no audio files (.wav, .flac, .ogg, .mp3) in this folder']),
            'only broken files': ([d/'broken'/'a.wav', d/'broken'/'b.flac'], ['not a readable audio file', 'empty file'])}

@pytest.mark.parametrize('fmt', ['table', 'csv', 'json'])
@pytest.mark.parametrize('case', ['missing', 'empty folder', 'no audio in folder', 'only broken files'])
def test_no_file_succeeds(nothing_readable, capsys, tmp_path, case, fmt):
    "Each reason is printed, the exit status is 1, in every format and with --output: never an internal error (issue 17)."
    from voice_emotion.cli import main
    paths, reasons = nothing_readable[case]
    for output in (None, tmp_path/f'out.{fmt}'):
        code = main(['predict', *map(str, paths), '--format', fmt] + (['--output', str(output)] if output else []))
        out, err = capsys.readouterr()
        text = output.read_text() if output else out
        assert code == 1 and 'internal error' not in err
        lines = [l for l in err.splitlines() if l.startswith('voice-emotion:')]
        assert len(lines) == len(reasons) and all(l.startswith(f'voice-emotion: {p}: {r}') for l, p, r in zip(lines, paths, reasons)), lines
        rows = json.loads(text) if fmt == 'json' else list(csv.DictReader(io.StringIO(text))) if fmt == 'csv' else None
        if rows is None: assert all(f'error: {r}' in text for r in reasons), text
        else: assert [r['path'] for r in rows] == list(map(str, paths)) and all(r['error'].startswith(w) for r, w in zip(rows, reasons))

def test_no_file_succeeds_as_a_command(nothing_readable):
    code, out, err = run_cli('predict', *nothing_readable['missing'][0], *nothing_readable['empty folder'][0])
    assert code == 1 and 'internal error' not in err; assert_one_line_error(err, problems=2)
    assert run_cli('predict')[0] == 2

@pytest.mark.slow
def test_predict_bench_side_by_side(tmp_path):
    "bench predict --against measures two models in one command and prints them side by side (or keeps them)."
    code, out, err = run_cli('bench', 'predict', '-n', '6', '--against', 'default', '--format', 'json')
    assert code == 0, err
    r = json.loads(out)
    assert set(r) == {'model', 'against'} and r['model']['batch_clips'] == 6
    assert all(v['warm_latency_ms_median'] > 0 and v['command_one_clip_s'] > 0 for v in r.values())
    code, out, err = run_cli('bench', 'predict', '-n', '6', '--against', 'default')
    assert code == 0 and 'warm latency, median' in out and out.count(' ms') >= 4, out
    code, out, err = run_cli('bench', 'predict', '-n', '4', '--format', 'json', '--output', tmp_path/'bench'/'p.json')
    assert code == 0 and json.loads((tmp_path/'bench'/'p.json').read_text()) == json.loads(out), (out, err)
    assert json.loads(out)['batch_clips'] == 4
    code, _, err = run_cli('predict', '--bench')
    assert code == 2 and 'moved: voice-emotion bench predict' in err and len(err.strip().splitlines()) == 1

def _children(pid: int) -> list:
    "The processes whose parent is `pid` (Linux /proc)."
    out = []
    for stat in Path('/proc').glob('[0-9]*/stat'):
        try: fields = stat.read_text().rsplit(')', 1)[1].split()
        except OSError: continue
        if int(fields[1]) == pid: out.append(int(stat.parent.name))
    return out

def _alive(pid: int) -> bool:
    try: return Path(f'/proc/{pid}/stat').read_text().rsplit(')', 1)[1].split()[0] != 'Z'
    except OSError: return False

@pytest.mark.parametrize('sig, code, words', [('SIGTERM', 143, 'interrupted (terminated)'), ('SIGINT', 130, 'interrupted')])
def test_a_signal_stops_the_workers_and_leaves_no_partial_output(sample_clips, tmp_path, sig, code, words):
    import os, signal, subprocess, sys, time
    d = tmp_path/'in'; d.mkdir()
    for i in range(400): os.link(sample_clips[i % len(sample_clips)], d/f'{i:04d}.flac')
    out = tmp_path/'out.json'
    p = subprocess.Popen([sys.executable, '-m', 'voice_emotion.cli', 'predict', str(d), '--jobs', '2', '--format', 'json',
                          '--output', str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         preexec_fn=interruptible)
    deadline, kids = time.monotonic() + 120, []
    while len(kids) < 2:  # the feature workers are running
        assert p.poll() is None and time.monotonic() < deadline, p.communicate()
        kids = [k for k in _children(p.pid) if _alive(k)]
        time.sleep(0.05)
    p.send_signal(getattr(signal, sig))
    _, err = p.communicate(timeout=120)
    assert p.returncode == code and err.strip() == f'voice-emotion: {words}', (p.returncode, err)
    deadline = time.monotonic() + 20
    while any(map(_alive, kids)) and time.monotonic() < deadline: time.sleep(0.1)
    assert not any(map(_alive, kids)), [k for k in kids if _alive(k)]  # no worker outlives the command
    assert not out.exists() and list(tmp_path.glob('.out.json*')) == []  # nothing half-written left behind

def test_output_is_checked_before_any_work_and_replaced_whole(sample_clips, tmp_path):
    clip = tmp_path/'clip.flac'; shutil.copy(sample_clips[0], clip)
    for bad, words in [(tmp_path, 'is a folder: name a file'), (tmp_path/'no'/'x.csv', 'does not exist'),
                       (clip, 'is one of the inputs')]:
        code, out, err = run_cli('predict', clip, '--output', bad)
        assert code == 2 and words in err and out == '', err
        assert err.startswith('voice-emotion predict: error:') and len(err.strip().splitlines()) == 1, err
    assert clip.read_bytes() == sample_clips[0].read_bytes()  # the audio untouched
    target = tmp_path/'out.csv'
    target.write_text('an earlier run\n')
    code, _, err = run_cli('predict', clip, '--format', 'csv', '--output', target)
    assert code == 0 and err.strip() == f'voice-emotion: {target} replaced', err
    text = target.read_text()
    assert text.startswith('path,emotion,confidence') and str(clip) in text and 'earlier' not in text
