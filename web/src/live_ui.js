// The page's Live section: wires its controls to celeblook.live (src/live.js). The edit (a prompt, manual or
// learned C), the morph towards the kept face and the smoothing change while live; stats show under the images.

const $ = (id) => document.getElementById(id);
const ms = (x) => (typeof x === 'number' ? x.toFixed(0) : '–');

/**
 * ``cl``: window.celeblook; ``kept()``: the kept face's W+ (or null); ``status(text)``: the page's status line;
 * ``showClip(clip, where)``: the page's download link and Share button of a clip (src/app.js).
 */
export function wireLive(cl, {kept, status, showClip}) {
  let timer = null;
  const live = cl.live;

  const options = () => {
    const target = $('live-target').value.trim();
    const t = Number($('live-morph').value);
    return {
      edit: target ? {target, strength: $('live-learned').checked ? 'learned' : Number($('live-c').value)} : null,
      morph: t > 0 && kept() ? {towards: kept(), t} : null,
      smoothing: $('live-smooth').checked ? {} : false,
    };
  };

  function showStats() {
    const s = live.stats();
    const stages = Object.entries(s.stages).map(([name, value]) => `${name} ${ms(value)}`).join(' · ');
    $('live-stats').textContent = `${s.fps.toFixed(1)} fps · latency ${ms(s.latencyMs)} ms · ${s.frames} frames, `
      + `${s.dropped} dropped · ms per stage: ${stages}`;
  }

  function shown(running) {
    $('live-start').hidden = running;
    $('live-stop').hidden = !running;
    $('live-record').hidden = !running;
  }

  async function stop() {
    clearInterval(timer);
    timer = null;
    shown(false);
    await live.stop();
  }

  $('live-start').onclick = async () => {
    try {
      status('Live: starting the camera…');
      await live.start({size: Number($('size').value), pasteBack: $('live-paste').checked, canvas: $('live-face'),
        composite: $('live-camera'), ...options(), onError: (err) => status(`Live: ${err.message}`)});
      shown(true);
      status('Live: running');
      timer = setInterval(showStats, 500);
    } catch (err) {
      status(`Live failed: ${err.message}`);
    }
  };
  $('live-stop').onclick = () => stop().then(() => status('Live: stopped, camera released'));
  const change = () => {
    if (live.running()) live.update(options()).catch((err) => status(`Live: ${err.message}`));
  };
  for (const id of ['live-target', 'live-learned', 'live-smooth']) $(id).addEventListener('change', change);
  for (const [input, output] of [['live-c', 'live-c-value'], ['live-morph', 'live-morph-value']]) {
    $(input).addEventListener('input', () => { $(output).value = $(input).value; });
    $(input).addEventListener('change', change);
  }
  $('live-learned').disabled = !cl.has('strength');
  // WebM: what is shown (with the camera image where pasted back); MP4 (WebM without H.264) and GIF: the faces
  $('live-format').value = 'webm';
  $('live-record').onclick = async () => {
    try {
      status('Live: recording 3 s…');
      const clip = await live.record(3000, {format: $('live-format').value});
      showClip(clip, {linkId: 'live-video', shareId: 'live-share', stem: 'live'});
      status([`Live: recorded ${(clip.bytes.length / 1024).toFixed(0)} KB of ${clip.mime}`, ...clip.notices].join('; '));
    } catch (err) {
      status(`Live: recording failed: ${err.message}`);
    }
  };
  addEventListener('pagehide', stop); // leaving the page releases the camera
  document.addEventListener('visibilitychange', () => { if (document.hidden && live.running()) stop(); });
}
