"`voice-emotion listen`: live audio through a real pipe, at real-time speed, against `predict --segment` on the file."
import json, signal, subprocess, sys, time
import numpy as np, pytest, soundfile as sf
from conftest import run_cli, assert_one_line_error, interruptible

@pytest.fixture(scope='module')
def recording(tmp_path_factory):
    "The bundled recording as a 16-bit WAV, as `sox … -t wav -` or `arecord` would write it."
    from voice_emotion.inference import sample_recording
    pcm, rate = sf.read(sample_recording(), dtype='int16')
    path = tmp_path_factory.mktemp('live')/'conversation.wav'
    sf.write(path, pcm, rate, subtype='PCM_16')
    return path

@pytest.mark.slow
def test_listen_at_real_time_gives_predict_segments_lines_within_the_hop(recording, tmp_path):
    "Fed through a pipe at real-time speed: the same windows and answers as `predict --segment`, each line in time."
    from voice_emotion.bench import benchmark_listen
    r = benchmark_listen(recording, speed=1.0)
    code, out, err = run_cli('predict', recording, '--segment', '--format', 'json')
    assert code == 0, err
    [whole] = json.loads(out)
    assert [(w['start'], w['end'], w['emotion']) for w in r['rows']] == [(w['start'], w['end'], w['emotion']) for w in whole['timeline']]
    labels = [k[2:] for k in whole['timeline'][0] if k.startswith('p_')]
    live = np.array([[w.get(f'p_{l}') or -1 for l in labels] for w in r['rows']], float)
    saved = np.array([[w.get(f'p_{l}') or -1 for l in labels] for w in whole['timeline']], float)
    assert np.abs(live - saved).max() < 1e-4
    assert r['delay_ms_max'] < 1000 * r['hop_s'], r  # every line before the next window could even begin
    assert 'listened to 27.6 s in 18 windows' in r['summary'] and 'ms after its last sample' in r['summary']

def test_ctrl_c_stops_cleanly_with_a_summary(recording):
    "Ctrl-C mid-stream: the lines so far, a one-line summary, exit 130, no traceback."
    proc = subprocess.Popen([sys.executable, '-m', 'voice_emotion.cli', 'listen', '-'], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=False, preexec_fn=interruptible)
    data = recording.read_bytes()
    proc.stdin.write(data[: 44 + 2 * 16000 * 8])  # the header and 8 s: four windows, then the microphone stays open
    proc.stdin.flush()
    lines = [proc.stdout.readline() for _ in range(1 + 4)]  # the header line and four windows, as they complete
    proc.send_signal(signal.SIGINT)
    rest, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert b'3.0' in lines[1] and b'4.5' in lines[2] and rest.strip() == b''
    err = err.decode()
    assert 'Traceback' not in err and err.count('\n') == 1 and err.startswith('listened to 7.5 s in 4 windows'), err

def test_a_stream_it_cannot_read_is_one_line(tmp_path):
    "A WAV stream that is not 16-bit PCM: one line naming standard input and the reason."
    eight = tmp_path/'eight.wav'
    sf.write(eight, np.zeros(16000, 'float32'), 16000, subtype='PCM_U8')
    r = subprocess.run([sys.executable, '-m', 'voice_emotion.cli', 'listen', '-'], stdin=open(eight, 'rb'), capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert_one_line_error(r.stderr)
    assert "-: the WAV stream is not 16-bit PCM (format 1, 8 bits)" in r.stderr
