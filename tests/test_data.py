"The `data` command on real corpora, a CREMA-D-named folder, and what a failed download says."
import json, shutil
from pathlib import Path
import numpy as np, soundfile as sf, pytest
from conftest import run_cli, assert_one_line_error
from voice_emotion.data import scan_corpus, CREMAD_EMOTIONS

def test_ravdess_speaker_split(ravdess):
    code, out, err = run_cli('data', '--dataset', 'ravdess', '--data-dir', ravdess, '--split', 'speaker', '--json')
    assert code == 0, err
    d = json.loads(out)
    assert d['n_files'] == 1200 and d['n_speakers'] == 20
    # 880 six-class files; one of them is a byte-for-byte copy of another (reported, not used)
    dup = [p for p in d['problem_files'] if p['reason'].startswith('duplicate')]
    assert d['problems'] == {'duplicate': 1} and d['n_task_clips'] + len(dup) == 880
    parts = d['speakers_per_split']
    assert set(parts) == {'train', 'valid', 'test'}
    assert sum(len(v) for v in parts.values()) == 20
    assert not set(parts['train']) & set(parts['test']) and not set(parts['valid']) & set(parts['test']) and not set(parts['train']) & set(parts['valid'])
    assert sum(d['per_split'].values()) == d['n_task_clips']

def test_nemo_speaker_split_without_disgust(nemo, tmp_path):
    "nEMO: nine Polish actors, sex read from data.tsv, five of the six emotions; a clear line without its data.tsv."
    code, out, err = run_cli('data', '--dataset', 'nemo', '--data-dir', nemo, '--split', 'speaker', '--json')
    assert code == 0, err
    d = json.loads(out)
    assert (d['n_clips'], d['n_speakers'], d['n_task_clips']) == (1966, 9, 1966) and 'disgust' not in d['per_emotion']
    parts = d['speakers_per_split']
    assert not set(parts['train']) & set(parts['test']) and all(s.startswith('nemo_') for p in parts.values() for s in p)
    shutil.copy(next((nemo/'samples').iterdir()), tmp_path)  # a clip, without the corpus's data.tsv
    code, _, err = run_cli('data', '--dataset', 'nemo', '--data-dir', tmp_path)
    assert code == 1 and "nEMO's data.tsv (the speakers' sex) is not in this folder" in err
    assert_one_line_error(err)

def test_kfold_covers_every_speaker_once(ravdess):
    from voice_emotion.core import Config
    from voice_emotion.data import assign_split, check_split
    clips, _ = scan_corpus('ravdess', ravdess)
    tested = []
    for fold in range(5):
        t = assign_split(clips, Config(protocol='speaker-kfold'), fold)
        check_split(t)
        test = t[t.split == 'test']
        assert test.speaker.nunique() == 4 and t[t.split == 'valid'].speaker.nunique() == 2
        assert set(test.sex) == {'male', 'female'}
        tested += list(test.speaker.unique())
    assert sorted(tested) == sorted(clips.speaker.unique())

@pytest.fixture(scope='module')
def cremad_folder(tmp_path_factory, sample_clips):
    "Real audio renamed into CREMA-D's scheme, in an AudioWAV/ folder as Kaggle ships it."
    root = tmp_path_factory.mktemp('cremad')/'AudioWAV'; root.mkdir()
    names = []
    codes = list(CREMAD_EMOTIONS)
    intensities = ['LO', 'MD', 'HI', 'XX']
    for i, clip in enumerate(sample_clips[:48]):
        actor = 1001 + i % 4
        name = f"{actor}_{['DFA', 'IEO', 'TIE'][i % 3]}_{codes[i % 6]}_{intensities[i % 4]}.wav"
        if (root/name).exists(): continue
        y, sr = sf.read(clip); sf.write(root/name, y, sr)
        names.append(name)
    (root/'1001_XYZ_ANG_XX.wav').write_bytes((root/names[0]).read_bytes())  # unknown sentence code
    return root.parent, names

def test_cremad_named_folder_parses(cremad_folder):
    folder, names = cremad_folder
    clips, problems = scan_corpus('cremad', folder)
    assert len(clips) == len(names)
    row = clips[clips.path.str.endswith(names[0])].iloc[0]
    actor, sentence, emo, inten = Path(names[0]).stem.split('_')
    assert (row.speaker, row.sentence, row.emotion, row.corpus) == (f'cremad_{actor}', sentence, CREMAD_EMOTIONS[emo], 'cremad')
    assert set(clips.intensity) == {'low', 'medium', 'high', 'unspecified'}
    assert not clips.intensity.str.contains('wav').any()
    assert set(clips.sex) == {'male', 'female'}  # 1001 and 1003 are male, 1002 and 1004 female
    assert problems.reason.tolist() == ['unrecognised name']
    code, out, err = run_cli('data', '--dataset', 'cremad', '--data-dir', folder, '--json')
    assert code == 0, err
    assert json.loads(out)['n_clips'] == len(names)

def test_cremad_download_without_network_fails_clearly():
    code, out, err = run_cli('data', '--dataset', 'cremad', timeout=300)
    if code == 0: pytest.skip('Kaggle was reachable: the download worked')
    assert code == 1
    assert_one_line_error(err)
    assert 'could not download CREMA-D' in err and '--data-dir' in err and err.count('\n') == 1

def test_missing_folder_and_empty_folder(tmp_path):
    code, _, err = run_cli('data', '--dataset', 'ravdess', '--data-dir', tmp_path/'nope')
    assert code == 1 and 'no such folder' in err; assert_one_line_error(err)
    code, _, err = run_cli('data', '--dataset', 'ravdess', '--data-dir', tmp_path)
    assert code == 1 and 'no audio files' in err; assert_one_line_error(err)

def test_usage_error_exit_2():
    code, _, err = run_cli('data', '--dataset', 'nosuch')
    assert code == 2 and 'invalid choice' in err
