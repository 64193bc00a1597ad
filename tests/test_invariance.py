"""Same clip, same answer: whatever the file order, the rest of the batch, the folder layout, the format, a level
change, or the engine (one process or a Dask cluster). Each test fails when the answer moves."""
import json, shutil
from pathlib import Path
import numpy as np, pandas as pd, pytest, soundfile as sf
from conftest import run_cli
from voice_emotion.core import EMOTIONS

P_COLS = [f'p_{e}' for e in EMOTIONS]

def by_name(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.assign(name=frame.path.map(lambda p: Path(p).name)).set_index('name').sort_index()

def assert_same_answers(a: pd.DataFrame, b: pd.DataFrame, atol=1e-6):
    a, b = by_name(a), by_name(b)
    assert list(a.index) == list(b.index) and len(a) > 0
    assert (a.emotion.fillna('-') == b.emotion.fillna('-')).all(), a.emotion[a.emotion != b.emotion]
    np.testing.assert_allclose(a[P_COLS].to_numpy(float), b[P_COLS].to_numpy(float), atol=atol)

def cli_rows(*args) -> pd.DataFrame:
    code, out, err = run_cli('predict', *args, '--format', 'json', timeout=900)
    assert code == 0, err[-2000:]
    rows = json.loads(out)
    return pd.DataFrame([dict(path=r['path'], emotion=r['emotion'], note=r.get('note'),
                              **{f'p_{e}': (r['probabilities'] or {}).get(e) for e in EMOTIONS}) for r in rows])

@pytest.fixture(scope='module')
def per_clip(sample_clips):
    from voice_emotion.inference import predict_files
    return predict_files(sample_clips)

def test_file_order_does_not_matter(sample_clips, per_clip):
    from voice_emotion.inference import predict_files
    assert_same_answers(per_clip, predict_files(sample_clips[::-1]))

def test_a_clip_alone_or_among_a_hundred(sample_clips, per_clip):
    from voice_emotion.inference import predict_files
    for clip in (sample_clips[0], sample_clips[99]):
        alone = predict_files([clip])
        assert_same_answers(alone, per_clip[per_clip.path == str(clip)])
    among = predict_files(sample_clips[:100])
    assert_same_answers(among, per_clip[per_clip.path.isin(map(str, sample_clips[:100]))])

def test_folder_layout_does_not_matter(sample_clips, tmp_path):
    "The same clips flat, a folder per emotion (as corpora ship), a folder per speaker: the same answers, by default."
    from voice_emotion.data import parse_ravdess_name
    clips = sample_clips[::3]  # 59 clips of four actors, every emotion
    layouts = {'flat': lambda f: '.', 'per_emotion': lambda f: f['emotion'], 'per_speaker': lambda f: f['speaker']}
    answers = {}
    for name, folder_of in layouts.items():
        for c in clips:
            d = tmp_path/name/folder_of(parse_ravdess_name(c.name))
            d.mkdir(parents=True, exist_ok=True)
            shutil.copy(c, d/c.name)
        answers[name] = cli_rows(tmp_path/name)
        assert answers[name].note.isna().all()  # nothing normalised: no row says so
    assert len(answers['flat']) == len(clips)
    assert_same_answers(answers['flat'], answers['per_emotion'])
    assert_same_answers(answers['flat'], answers['per_speaker'])

def test_wav_and_flac_of_the_same_samples(sample_clips, tmp_path):
    from voice_emotion.inference import predict_files
    clips = sample_clips[:20]
    for c in clips:
        y, sr = sf.read(c, dtype='int16')
        sf.write(tmp_path/(c.stem + '.wav'), y, sr, subtype='PCM_16')
    wav = predict_files(sorted(tmp_path.glob('*.wav')))
    flac = predict_files(clips)
    for frame in (wav, flac): frame['path'] = [Path(p).stem for p in frame.path]
    assert_same_answers(wav, flac)

def test_twenty_db_quieter_keeps_97_percent_of_answers(sample_clips, per_clip, tmp_path):
    from voice_emotion.audio import quieter_16bit
    from voice_emotion.inference import predict_files
    for c in sample_clips:
        y, sr = sf.read(c, dtype='float32')
        sf.write(tmp_path/c.name, quieter_16bit(y, -20), sr, subtype='PCM_16')
    quiet = by_name(predict_files(sorted(tmp_path.glob('*.flac'))))
    same = (quiet.emotion == by_name(per_clip).emotion).mean()
    assert same >= 0.97, same

@pytest.mark.slow
@pytest.mark.parametrize('norm', ['off', 'folder', 'batch'])
def test_one_process_and_a_dask_cluster_give_the_same_answers(sample_clips, tmp_path, norm):
    "A LocalCluster of two workers, partitions of 7 files (a folder of 44 clips is cut into seven), against one process."
    archive = tmp_path/'archive'
    for c in sample_clips:
        (archive/c.parent.name).mkdir(parents=True, exist_ok=True)
        shutil.copy(c, archive/c.parent.name/c.name)
    single = cli_rows(archive, '--speaker-norm', norm)
    cluster = cli_rows(archive, '--speaker-norm', norm, '--scheduler', 'local', '--workers', '2', '--partition-size', '7')
    assert len(single) == len(sample_clips)
    assert_same_answers(single, cluster)
    a, b = by_name(single)[P_COLS].to_numpy(float), by_name(cluster)[P_COLS].to_numpy(float)
    print(f'{norm}: {len(a)} clips, the same emotion for all, largest probability difference {np.abs(a - b).max():.1e}')
    if norm == 'folder':
        assert (single.note == 'speaker-normalised over its folder (44 clips)').all(), single.note.unique()
        assert (by_name(single).note == by_name(cluster).note).all()
    elif norm == 'batch':  # every file of the run one group, on one process as across partitions
        assert (single.note == f'normalised over the whole batch ({len(sample_clips)} clips)').all(), single.note.unique()
        assert (by_name(single).note == by_name(cluster).note).all()
    else:
        assert single.note.isna().all()
