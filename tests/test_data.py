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

@pytest.mark.slow
def test_a_manifest_corpus_end_to_end(sample_clips, tmp_path):
    """Your own corpus from a CSV manifest: relative paths, other label spellings, a missing file and an unknown label
    as problem rows; then trained, evaluated and used to predict, as a user fine-tuning on their data would."""
    import pandas as pd
    from voice_emotion.data import parse_ravdess_name
    spelled = {'angry': 'Anger', 'disgust': 'disgusted', 'fear': 'FEARFUL', 'happy': 'joy', 'neutral': 'neutral', 'sad': 'sadness', 'calm': 'calm', 'surprised': 'surprise'}
    (tmp_path/'clips').mkdir()
    rows = []
    for c in sample_clips:
        f = parse_ravdess_name(c.name)
        shutil.copy(c, tmp_path/'clips'/c.name)
        rows.append(dict(path=f'clips/{c.name}', emotion=spelled[f['emotion']], speaker=f['speaker'][-2:], sex=f['sex'][0].upper(), language='en'))
    rows += [dict(path='clips/gone.wav', emotion='sad', speaker='01', sex='M', language='en'),
             dict(path=f'clips/{sample_clips[0].name}', emotion='bored', speaker='01', sex='M', language='en')]
    pd.DataFrame(rows).to_csv(tmp_path/'mine.csv', index=False)
    code, out, err = run_cli('data', '--dataset', 'manifest', '--data-dir', tmp_path/'mine.csv', '--split', 'speaker', '--json')
    assert code == 0, err
    d = json.loads(out)
    assert (d['n_clips'], d['n_speakers'], d['n_task_clips']) == (176, 4, 176)
    assert sorted(p['reason'] for p in d['problem_files']) == ['no such file', "unknown emotion label 'bored' (see EMOTION_NAMES)"]
    assert all(s.startswith('mine_') for s in d['per_speaker'])
    run = tmp_path/'run'
    code, out, err = run_cli('train', '--dataset', 'manifest', '--data-dir', tmp_path/'mine.csv', '--protocol', 'speaker', '--out', run)
    assert code == 0, err
    code, out, err = run_cli('evaluate', run, '--json')
    assert code == 0, err
    m = json.loads(out)
    assert 0 <= m['accuracy'] <= 1 and m['n'] > 0
    code, out, err = run_cli('predict', sample_clips[5], '--model', run, '--format', 'json')
    assert code == 0 and json.loads(out)[0]['emotion'] in ('angry', 'disgust', 'fear', 'happy', 'neutral', 'sad'), err
    code, _, err = run_cli('data', '--dataset', 'manifest', '--data-dir', tmp_path/'nothere.csv')
    assert code == 1 and 'a manifest corpus needs --data-dir FILE' in err
    assert_one_line_error(err)

def test_cross_corpus_matrix_from_a_two_corpus_manifest(sample_clips, tmp_path):
    "Two corpora in one manifest (`corpus` column): each trained on, each tested on, whole or by held-out speakers."
    import pandas as pd
    from voice_emotion.data import parse_ravdess_name
    rows = []
    for c in sample_clips:
        f = parse_ravdess_name(c.name)
        rows.append(dict(path=str(c), emotion=f['emotion'], speaker=f['speaker'], sex=f['sex'],
                         corpus='left' if f['speaker'] in ('ravdess_01', 'ravdess_02') else 'right'))
    pd.DataFrame(rows).to_csv(tmp_path/'two.csv', index=False)
    code, out, err = run_cli('cross-corpus', '--dataset', 'manifest', '--data-dir', tmp_path/'two.csv', '--recipe', 'whisper-linear',
                             '--folds', '2', '--normalise', 'none', 'corpus', '--out', tmp_path/'matrix', '--json')
    assert code == 0, err
    r = json.loads(out)
    assert r == json.loads((tmp_path/'matrix'/'cross_corpus.json').read_text())
    cells = {(x['normalise'], x['train'], x['test']): x for x in r['records']}
    assert set(cells) == {(n, t, s) for n in ('none', 'corpus') for t in ('left', 'right', 'left+right') for s in ('left', 'right')}
    assert cells['none', 'left', 'right']['held_out'] == 'corpus' and cells['none', 'left+right', 'right']['held_out'] == 'speakers'
    assert all(x['clips'] == 88 and x['chance'] == pytest.approx(1 / 6) and x['restricted_accuracy'] >= x['accuracy'] for x in r['records'])
    code, _, err = run_cli('cross-corpus', '--dataset', 'sample')
    assert code == 1 and 'needs two corpora or more (got ravdess)' in err
    assert_one_line_error(err)

def test_corpora_weighed_equally_from_the_command_line(sample_clips, tmp_path):
    "Two corpora of unequal size (88 and 44 clips) weighed the same: training and the matrix record it; a network refuses it."
    import pandas as pd
    from voice_emotion.data import parse_ravdess_name
    rows = []
    for i, c in enumerate(sample_clips):
        f = parse_ravdess_name(c.name)
        big = f['speaker'] in ('ravdess_01', 'ravdess_02')
        if big or i % 2:  # the small corpus: every other clip of two actors
            rows.append(dict(path=str(c), emotion=f['emotion'], speaker=f['speaker'], corpus='big' if big else 'small'))
    pd.DataFrame(rows).to_csv(tmp_path/'two.csv', index=False)
    run = tmp_path/'run'
    code, out, err = run_cli('train', '--dataset', 'manifest', '--data-dir', tmp_path/'two.csv', '--protocol', 'random',
                             '--recipe', 'whisper-linear', '--corpus-weights', 'equal', '--out', run)
    assert code == 0, err
    assert json.loads((run/'config.json').read_text())['corpus_weights'] == 'equal'
    code, out, err = run_cli('cross-corpus', '--dataset', 'manifest', '--data-dir', tmp_path/'two.csv', '--recipe', 'whisper-linear',
                             '--folds', '2', '--normalise', 'none', '--corpus-weights', 'equal', '--out', tmp_path/'matrix', '--json')
    assert code == 0, err
    r = json.loads(out)
    assert r['corpus_weights'] == 'equal' and {x['test'] for x in r['records'] if x['train'] == 'big+small'} == {'big', 'small'}
    code, _, err = run_cli('train', '--recipe', 'ensemble', '--corpus-weights', 'equal', '--out', tmp_path/'net')
    assert code == 1 and "corpus_weights must be 'clips' for a network head (got equal)" in err
    assert_one_line_error(err)
