"`predict --format html`: the page opened in headless Chromium, clicked through its own JavaScript."
import json, re, subprocess
import pytest
from conftest import run_cli
from test_report import _browser

PROBE = """<script>window.addEventListener('load', () => setTimeout(() => {
  const b = document.body, audio = document.querySelector('audio'), windows = [...document.querySelectorAll('.ve-window')];
  b.setAttribute('data-windows', windows.length);
  b.setAttribute('data-legend', JSON.stringify([...document.querySelectorAll('.ve-legend li')].map(li => li.textContent)));
  b.setAttribute('data-players', document.querySelectorAll('audio').length);
  b.setAttribute('data-band', JSON.stringify(windows.map(w => [+w.dataset.start, w.getAttribute('fill')])));
  if (windows.length > 4) {
    windows[4].dispatchEvent(new MouseEvent('click', {bubbles: true}));
    b.setAttribute('data-clicked', JSON.stringify([+windows[4].dataset.start, audio.currentTime]));
  }
  const table = document.querySelector('table.ve-batch');
  if (table) {
    table.querySelectorAll('th')[2].dispatchEvent(new MouseEvent('click', {bubbles: true}));  // sort by confidence
    b.setAttribute('data-sorted', JSON.stringify([...table.tBodies[0].rows].map(r => +r.cells[2].dataset.value)));
  }
}, 300));</script>"""

def _opened(page, tmp_path) -> dict:
    "The page in headless Chromium (a screenshot first: it draws), then what the probe found, as a dict."
    probe = page.with_name('probe.html')
    probe.write_text(page.read_text(encoding='utf-8').replace('</body>', PROBE + '</body>'), encoding='utf-8')
    shot = tmp_path/'shot.png'
    r = _browser(probe.as_uri(), tmp_path, f'--screenshot={shot}', '--autoplay-policy=no-user-gesture-required')
    assert shot.exists() and shot.stat().st_size > 10_000, r.stderr[-500:]
    dom = _browser(probe.as_uri(), tmp_path, '--virtual-time-budget=5000', '--autoplay-policy=no-user-gesture-required', '--dump-dom').stdout
    found = dict(re.findall(r'data-(windows|legend|players|band|clicked|sorted)="([^"]*)"', dom))
    return {k: json.loads(v.replace('&quot;', '"')) for k, v in found.items()}

def test_a_timeline_page_draws_every_window_and_a_click_plays_from_its_start(tmp_path):
    from voice_emotion.inference import sample_recording
    page = tmp_path/'talk.html'
    code, out, err = run_cli('predict', sample_recording(), '--segment', '--format', 'html', '-o', page)
    assert code == 0, err
    code, out, err = run_cli('predict', sample_recording(), '--segment', '--format', 'json')
    windows = json.loads(out)[0]['timeline']
    seen = _opened(page, tmp_path)
    assert seen['windows'] == len(windows) == 18 and seen['players'] == 1
    assert seen['legend'] == ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad', 'uncertain', 'no speech', 'silence']
    from voice_emotion.output import EMOTION_COLOURS, STATE_COLOURS
    assert [(s, f) for s, f in seen['band']] == [(w['start'], EMOTION_COLOURS.get(w['emotion']) or STATE_COLOURS[w['emotion']]) for w in windows]
    start, now = seen['clicked']
    assert start == windows[4]['start'] == 6.0 and now == pytest.approx(start)  # the player moved to the window's start
    assert 'http' not in re.sub(r'https?://creativecommons[^"\s]*', '', page.read_text())  # nothing fetched from a network

def test_a_batch_page_sorts_by_a_column_and_has_a_player_per_file(tmp_path, sample_clips):
    page = tmp_path/'batch.html'
    code, out, err = run_cli('predict', *sample_clips[:6], tmp_path/'missing.wav', '--format', 'html', '-o', page)
    assert code == 1 and 'missing.wav' in err  # the failure said, the page still written
    seen = _opened(page, tmp_path)
    assert seen['players'] == 6 and seen['windows'] == 0
    assert seen['sorted'] == sorted(seen['sorted']) and len(seen['sorted']) == 7  # ascending after one click
    assert seen['legend'] == ['angry', 'disgust', 'fear', 'happy', 'neutral', 'sad']
