"Training and evaluation end to end on real data, and proof that the test part never reaches fitting."
import json, hashlib, re
from pathlib import Path
import numpy as np, pandas as pd, pytest
from conftest import run_cli, assert_one_line_error

@pytest.mark.slow
def test_train_then_evaluate_ravdess(tmp_path, ravdess):
    run = tmp_path/'run'
    code, out, err = run_cli('train', '--dataset', 'ravdess', '--data-dir', ravdess, '--protocol', 'speaker', '--epochs', '3',
                             '--recipe', 'ensemble', '--out', run)
    assert code == 0, err[-2000:]
    assert len(re.findall(r'^Epoch \d/3$', out, re.M)) == 2 * 3 and 'total' in out  # two networks, 3 epochs each
    for f in ('config.json', 'clips.csv', 'training.json', 'bundle/model.keras', 'bundle/scaler.npz', 'bundle/bundle.json', 'bundle/split.csv'):
        assert (run/f).exists(), f
    code, out, err = run_cli('evaluate', run, '--json')
    assert code == 0, err[-2000:]
    m = json.loads(out)
    assert {'accuracy', 'balanced_accuracy', 'macro_f1', 'n', 'per_class', 'confusion'} <= set(m)
    assert m['n'] == 176 and m['n_speakers'] == 4 and np.array(m['confusion']).sum() == 176
    assert m['protocol'] == 'speaker' and m['recipe'] == 'ensemble'
    preds = pd.read_csv(run/'predictions.csv')
    assert len(preds) == 176 and m['accuracy'] == pytest.approx((preds.emotion == preds.predicted).mean())
    assert np.trace(np.array(m['confusion'])) == (preds.emotion == preds.predicted).sum()
    # the same bundle on another labelled folder: every six-class clip of the bundled sample
    code, out, err = run_cli('evaluate', run/'bundle', '--dataset', 'sample', '--json')
    assert code == 0, err[-2000:]
    assert json.loads(out)['n'] == 176

@pytest.mark.slow
def test_default_recipe_reports_both_figures_on_ravdess(tmp_path, ravdess):
    "The default recipe on RAVDESS: per-clip and speaker-normalised figures, the second said in words."
    run = tmp_path/'run'
    code, out, err = run_cli('train', '--dataset', 'ravdess', '--data-dir', ravdess, '--protocol', 'speaker', '--out', run)
    from voice_emotion.core import DEFAULT_RECIPE
    assert code == 0 and f'training {DEFAULT_RECIPE} ' in out, err[-2000:]
    assert (run/'bundle'/'speaker_head.npz').exists() and not (run/'bundle'/'model.keras').exists()
    code, out, err = run_cli('evaluate', run, '--json')
    m = json.loads(out)
    sn = m['speaker_normalised']
    assert code == 0 and m['n'] == 176  # 4 test actors, 44 clips each
    # whole actors are normalised; one whose per-clip answers are mostly one emotion stays per clip (the guard)
    assert sn['clips_normalised'] % 44 == 0 and sn['clips_normalised'] >= 88, sn['clips_normalised']
    assert 0 <= sn['accuracy'] <= 1 and "never their labels" in sn['text']
    code, text, _ = run_cli('evaluate', run)
    assert code == 0 and 'speaker-normalised: accuracy' in text and "speaker's own test clips" in text

def test_evaluate_bad_target(tmp_path):
    code, _, err = run_cli('evaluate', tmp_path/'nothing')
    assert code == 1 and 'no such run folder or bundle' in err; assert_one_line_error(err)
    code, _, err = run_cli('evaluate', tmp_path)
    assert code == 1 and 'neither a run folder' in err; assert_one_line_error(err)

def _row_hashes(X):
    return {hashlib.blake2b(np.ascontiguousarray(x).tobytes(), digest_size=12).hexdigest() for x in X}

@pytest.mark.slow
@pytest.mark.parametrize('recipe', ['seed', 'attention', 'ensemble'])
def test_test_part_never_reaches_scaler_fit_or_callbacks(tmp_path, monkeypatch, recipe):
    "Spy on everything that sees training data; none of it may contain a test clip's features."
    import keras
    from voice_emotion import training
    from voice_emotion.core import Config
    from voice_emotion.store import extract_features
    seen = {'scaler': [], 'fit_x': [], 'validation_x': [], 'stats_x': []}
    real_fit_scaler, real_fit, real_batches, real_stats = training.fit_scaler, keras.Model.fit, training.training_batches, training.fit_statistics_member
    def spy_scaler(X, **kw): seen['scaler'].append(X.copy()); return real_fit_scaler(X, **kw)
    def spy_batches(X, Y, W, cfg): seen['fit_x'].append(np.array(X)); return real_batches(X, Y, W, cfg)
    def spy_stats(X, y, speakers, *args, **kw): seen['stats_x'].append(np.array(X)); return real_stats(X, y, speakers, *args, **kw)
    def spy_fit(self, x=None, y=None, validation_data=None, **kw):
        if isinstance(x, np.ndarray): seen['fit_x'].append(np.array(x))
        if validation_data is not None: seen['validation_x'].append(np.array(validation_data[0]))
        return real_fit(self, x, y, validation_data=validation_data, **kw)
    monkeypatch.setattr(training, 'fit_scaler', spy_scaler)
    monkeypatch.setattr(training, 'training_batches', spy_batches)
    monkeypatch.setattr(training, 'fit_statistics_member', spy_stats)
    monkeypatch.setattr(keras.Model, 'fit', spy_fit)
    from voice_emotion.experiments import named_recipe
    cfg = named_recipe(recipe, protocol='speaker', epochs=1)
    training.train_run(cfg, tmp_path/'run', log=None)
    assert seen['scaler'] and seen['fit_x'] and bool(seen['validation_x']) == cfg.early_stopping and bool(seen['stats_x']) == cfg.stats_member
    from voice_emotion.bundle import load_bundle
    pred = load_bundle(tmp_path/'run'/'bundle')
    split = pred.split()
    test = split[split.split == 'test']
    assert len(test) > 0
    raw = extract_features(test.path, progress=False)
    scaled = pred.scaler.transform(raw.X)
    assert not _row_hashes(raw.X) & _row_hashes(np.concatenate(seen['scaler']))
    assert not _row_hashes(scaled) & _row_hashes(np.concatenate(seen['fit_x']))
    for watched in seen['validation_x'] + seen['stats_x']:  # what early stopping and the LR schedule watch; the statistics model's data
        assert not _row_hashes(scaled) & _row_hashes(watched)
    # and the spies do see what they should: the training clips themselves
    tr = split[split.split == 'train']
    tr_raw = extract_features(tr.path[:3], progress=False).X
    assert _row_hashes(tr_raw) <= _row_hashes(np.concatenate(seen['scaler']))
    assert _row_hashes(pred.scaler.transform(tr_raw)) <= _row_hashes(np.concatenate(seen['fit_x']))

@pytest.mark.slow
def test_test_speakers_never_reach_the_statistics_head_its_scaler_or_calibration(tmp_path, monkeypatch):
    "The shipped model's path (a head on frame statistics, with training copies and a speaker head): spy on every fit."
    from voice_emotion import heads, training
    from voice_emotion.core import Config, DEFAULT_RECIPE
    from voice_emotion.features import frame_statistics
    from voice_emotion.store import extract_features
    seen = {'head': [], 'scaler': [], 'speakers': [], 'calibration': 0}
    real_head, real_std, real_cal = training.fit_linear_head, heads._standardisation, heads.fit_calibration
    def spy_head(X, y, speakers, *a, **kw):
        seen['head'].append(frame_statistics(X) if X.ndim == 3 else np.array(X)); seen['speakers'].append(np.array(speakers))
        return real_head(X, y, speakers, *a, **kw)
    def spy_std(S): seen['scaler'].append(np.array(S)); return real_std(S)
    def spy_cal(logits, y):
        seen['calibration'] += 1; assert len(logits) <= sum(len(s) for s in seen['speakers'])
        return real_cal(logits, y)
    monkeypatch.setattr(training, 'fit_linear_head', spy_head)
    monkeypatch.setattr(heads, '_standardisation', spy_std)
    monkeypatch.setattr(heads, 'fit_calibration', spy_cal)
    cfg = Config.recipe(DEFAULT_RECIPE, protocol='speaker')
    training.train_run(cfg, tmp_path/'run', log=None)
    assert len(seen['head']) == 2 and seen['scaler'] and seen['calibration']  # the head and the speaker head; both calibrated
    from voice_emotion.bundle import load_bundle
    pred = load_bundle(tmp_path/'run'/'bundle')
    split = pred.split()
    test, train = split[split.split == 'test'], split[split.split == 'train']
    assert len(test) > 0 and not set(test.speaker) & set(np.concatenate(seen['speakers']))
    test_rows = _row_hashes(frame_statistics(extract_features(test.path, pred.settings, progress=False).X))
    for S in seen['head'] + seen['scaler']:
        assert not test_rows & _row_hashes(S)
    train_rows = _row_hashes(frame_statistics(extract_features(train.path[:3], pred.settings, progress=False).X))
    assert train_rows <= _row_hashes(np.concatenate(seen['head'])) and train_rows <= _row_hashes(np.concatenate(seen['scaler']))

def test_evaluating_on_voices_it_was_trained_on_says_so():
    code, out, err = run_cli('evaluate', 'default', '--dataset', 'sample', '--json')
    assert code == 0, err[-1500:]
    m = json.loads(out)
    assert m['n'] == 176 and m['speakers_seen_in_training'] == ['ravdess_01', 'ravdess_02', 'ravdess_03', 'ravdess_04']
    assert "not a test on unseen speakers" in err
    code, _, err = run_cli('evaluate', 'default')
    assert code == 1 and 'no test part' in err

def test_every_layer_recipe_trains_records_its_layers_and_predicts(tmp_path):
    "encoder_layers: the bundle records the outputs it reads; a learned weighting leaves one weight per output, summing to 1."
    run = tmp_path/'run'
    code, out, err = run_cli('train', '--dataset', 'sample', '--recipe', 'every-layer', '--set', 'layer_weighting=learned',
                             '--out', run)
    assert code == 0 and 'every-layer with layer_weighting=learned' in out, err[-2000:]
    meta = json.loads((run/'bundle'/'bundle.json').read_text())
    s = meta['feature_settings']
    assert (s['layers'], s['width'], s['max_len']) == ([0, 1, 2, 3, 4, 5], 6 * 384, 2)
    history = json.loads((run/'bundle'/'history.json').read_text())
    assert len(history['layer_weights']) == 6 and sum(history['layer_weights']) == pytest.approx(1, abs=1e-3), history
    from voice_emotion.data import sample_dir
    code, out, err = run_cli('predict', '--model', run/'bundle', sample_dir()/'Actor_01', '--format', 'json')
    rows = json.loads(out)
    assert code == 0 and len(rows) == 44 and all(r['emotion'] for r in rows), err
    code, out, err = run_cli('train', '--dataset', 'sample', '--recipe', 'every-layer', '--set', 'head=network', '--out', tmp_path/'n')
    assert code == 2 or code == 1, (code, err)
    assert_one_line_error(err)
    assert "head must be 'linear' with encoder_layers" in err, err
