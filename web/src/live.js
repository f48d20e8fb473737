// Live mode on the page (celeblook.live): the camera's frames go to the worker (src/stream.js) one at a time,
// as ImageBitmaps (transferred, not copied); a frame that comes while the last is still in the worker is dropped,
// never queued, so the result lags the camera by one inference at most. The result is drawn beside the camera
// image and, with pasteBack, blended into the frame it came from (the canvas does it: the crop's transform and
// a feathered ellipse, as src/align.js's pasteBack). The page's own work per frame is a few draws: nothing long
// on the main thread.
//
//   start({video (a MediaStream or a <video>; default: the front camera), size, edit: {target, source, strength},
//          morph: {towards, t}, smoothing (false | {minCutoff, beta, dCutoff}), pasteBack, canvas, composite,
//          pipelined (default true: G in a second worker, so it renders frame n while the first tracks and
//          encodes frame n + 1), detector ('ssd' | 'tiny'), redetectEvery, onResult, onError})
//   update({edit, morph, smoothing})      stop()       running()       latest() -> the last result's {wplus, C, quad}
//   synth(wplus, size) -> {face (ImageBitmap), stages}: a render in this instance's worker (the pipelined G)
//   stats() -> {frames, dropped, fps, latencyMs, stages: {track, crop, encode, map, edit, synth, paste}}
//   record(ms, {format}) -> {bytes, mime, format, notices}: 'webm' (default) the shown result (the composite with pasteBack)
//     from MediaRecorder; 'mp4' | 'gif' the faces through src/clips.js (MP4 falls back to WebM where no H.264)

import {cropTransform} from './align.js';
import {clipEncoder} from './clips.js';

const WINDOW = 12; // results the medians and the fps are taken over
const STAGES = ['track', 'crop', 'encode', 'map', 'edit', 'synth', 'paste'];
const median = (values) => {
  if (!values.length) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

/** A feathered ellipse around the face of a size x size crop (celeblook.photo.paste's shape), as a mask canvas. */
function faceMask(size) {
  const canvas = new OffscreenCanvas(size, size);
  const context = canvas.getContext('2d');
  context.setTransform(0.4 * size, 0, 0, 0.46 * size, 0.5 * size, 0.53 * size); // FFHQ crops sit the face low
  const gradient = context.createRadialGradient(0, 0, 0, 0, 0, 1);
  gradient.addColorStop(0, '#000');
  gradient.addColorStop(0.8, '#000');
  gradient.addColorStop(1, 'rgba(0,0,0,0)');
  context.fillStyle = gradient;
  context.fillRect(-1, -1, 2, 2);
  return canvas;
}

/**
 * The live API over the worker's ``call(method, args, onFrame, transfer)`` (src/celeblook.js); ``spawn()`` makes
 * a second celeblook instance (its own worker), which renders when live mode is pipelined.
 */
export function createLive(call, spawn) {
  let session = null;
  let renderer = null;

  const empty = () => ({frames: 0, dropped: 0, done: [], latency: [], stages: Object.fromEntries(STAGES.map((s) => [s, []]))});
  let record = empty();

  function keep(list, value) {
    list.push(value);
    if (list.length > WINDOW) list.shift();
  }

  async function videoOf(source) {
    if (source instanceof HTMLVideoElement) return {video: source, stream: null, made: false};
    const stream = source instanceof MediaStream ? source
      : await navigator.mediaDevices.getUserMedia({audio: false, video: {facingMode: 'user', width: {ideal: 640}, height: {ideal: 480}}});
    // in the document (out of sight), so Chromium decodes and presents its frames (requestVideoFrameCallback)
    const video = Object.assign(document.createElement('video'), {muted: true, playsInline: true, autoplay: true, srcObject: stream});
    video.style.cssText = 'position:fixed;left:0;top:0;width:2px;height:2px;opacity:0;pointer-events:none';
    document.body.append(video);
    return {video, stream, made: true};
  }

  function draw(s, result) {
    const start = performance.now();
    const {canvas, composite} = s;
    if (result.found) {
      if (canvas.width !== result.size) Object.assign(canvas, {width: result.size, height: result.size});
      canvas.getContext('2d').drawImage(result.face, 0, 0);
    }
    if (s.pasteBack && composite) {
      const {frame} = result;
      if (composite.width !== frame.width || composite.height !== frame.height) {
        Object.assign(composite, {width: frame.width, height: frame.height});
      }
      const context = composite.getContext('2d');
      context.setTransform(1, 0, 0, 1, 0, 0);
      context.drawImage(frame, 0, 0);
      if (result.found) {
        s.mask ??= faceMask(result.size);
        if (s.mask.width !== result.size) s.mask = faceMask(result.size);
        s.masked ??= new OffscreenCanvas(result.size, result.size);
        Object.assign(s.masked, {width: result.size, height: result.size});
        const m = s.masked.getContext('2d');
        m.drawImage(result.face, 0, 0);
        m.globalCompositeOperation = 'destination-in';
        m.drawImage(s.mask, 0, 0);
        m.globalCompositeOperation = 'source-over';
        // crop pixels -> frame pixels: the inverse of the crop's transform
        const [a, b, c, d, e, f] = cropTransform(result.quad, result.size);
        const det = a * d - b * c;
        const inverse = [d / det, -b / det, -c / det, a / det, (c * f - d * e) / det, (b * e - a * f) / det];
        context.setTransform(...inverse);
        context.drawImage(s.masked, 0, 0);
        context.setTransform(1, 0, 0, 1, 0, 0);
      }
    }
    return performance.now() - start;
  }

  /** A result drawn: the stats and the latest result kept, the frame and the face closed. */
  function show(s, result, seen) {
    const paste = draw(s, result);
    result.frame.close();
    result.face?.close();
    const now = performance.now();
    record.frames += 1;
    keep(record.done, now);
    keep(record.latency, now - seen);
    for (const name of STAGES) keep(record.stages[name], name === 'paste' ? paste : (result.stages[name] ?? 0));
    if (s.clip && result.found) {
      const face = s.canvas.getContext('2d').getImageData(0, 0, s.canvas.width, s.canvas.height);
      s.clip.added = s.clip.added.then(() => s.clip.encoder.add(face));
    }
    s.latest = {found: result.found, wplus: result.wplus ?? null, C: result.C ?? null, quad: result.quad ?? null,
      detected: result.detected ?? null, time: now};
    s.onResult?.(s.latest);
  }

  function stats() {
    const {done} = record;
    const span = done.length > 1 ? (done[done.length - 1] - done[0]) / 1000 : 0;
    return {frames: record.frames, dropped: record.dropped, fps: span > 0 ? (done.length - 1) / span : 0,
      latencyMs: median(record.latency), stages: Object.fromEntries(STAGES.map((n) => [n, median(record.stages[n])]))};
  }

  const closeAll = (result) => { result.frame.close(); result.face?.close(); };

  /**
   * Pipelined: G in the second worker; a W+ that comes while it renders waits (one at most: the first worker takes
   * no frame while one waits).
   */
  async function render(s, result, seen) {
    if (s.rendering) {
      s.waiting = {result, seen};
      return;
    }
    s.rendering = true;
    try {
      let next = {result, seen};
      while (next && session === s) {
        const drawn = next.result.found ? await s.renderer.live.synth(next.result.wplus, s.size) : null;
        if (session !== s) { closeAll(next.result); drawn?.face.close(); break; }
        show(s, drawn ? {...next.result, face: drawn.face, stages: {...next.result.stages, ...drawn.stages}} : next.result, next.seen);
        next = s.waiting;
        s.waiting = null;
      }
    } finally {
      s.rendering = false;
    }
  }

  async function step(s, seen) {
    s.busy = true;
    try {
      const bitmap = await createImageBitmap(s.video);
      if (session !== s) { bitmap.close(); return; }
      const result = await call('live.frame', [bitmap, seen / 1000, {render: !s.renderer}], undefined, [bitmap]);
      if (session !== s) { closeAll(result); return; }
      if (s.renderer) render(s, result, seen).catch((err) => s.onError?.(err));
      else show(s, result, seen);
    } catch (err) {
      s.error = err;
      s.onError?.(err);
    } finally {
      s.busy = false;
    }
  }

  function watch(s) {
    const onFrame = (now, metadata) => {
      if (session !== s) return;
      // the frame's capture time where the camera gives it, else when it was presented
      const captured = metadata?.captureTime;
      const seen = captured > now - 5000 && captured <= now ? captured : now;
      // pipelined, the first worker waits while a W+ waits for G: work it would do now would be replaced unseen
      if (s.busy || s.waiting) record.dropped += 1;
      else step(s, seen);
      s.handle = s.video.requestVideoFrameCallback(onFrame);
    };
    s.handle = s.video.requestVideoFrameCallback(onFrame);
  }

  return {
    running: () => session !== null,

    async start({video, size, edit = null, morph = null, smoothing, pasteBack = false, canvas, composite, onResult, onError,
      redetectEvery, detector, pipelined = true} = {}) {
      if (session) throw new Error('live mode is already running: stop it first');
      const started = await call('live.start', [{size, edit, morph, smoothing, redetectEvery, detector}]);
      if (pipelined) {
        renderer ??= spawn().catch((err) => { renderer = null; throw err; });
        await (await renderer).live.synth(new Float32Array(started.latentLength), started.size).then(({face}) => face.close());
      }
      const source = await videoOf(video);
      const s = {...source, pasteBack, busy: false, latest: null, onResult, onError, size: started.size,
        renderer: pipelined ? await renderer : null, rendering: false, waiting: null,
        canvas: canvas ?? document.createElement('canvas'), composite: composite ?? (pasteBack ? document.createElement('canvas') : null)};
      try {
        if (s.video.paused) await s.video.play();
      } catch (err) {
        if (s.made) { s.stream.getTracks().forEach((t) => t.stop()); s.video.remove(); }
        throw new Error(`the camera video does not play: ${err.message}`);
      }
      record = empty();
      session = s;
      watch(s);
      return {size: started.size, notices: started.notices, canvas: s.canvas, composite: s.composite};
    },

    update: (options) => call('live.update', [options]),

    /** Stop: no more frames, the camera's tracks ended (a stream live mode opened or was given). */
    async stop() {
      const s = session;
      if (!s) return;
      session = null;
      s.video.cancelVideoFrameCallback?.(s.handle);
      if (s.waiting) closeAll(s.waiting.result);
      s.stream?.getTracks().forEach((t) => t.stop());
      if (s.made) { s.video.srcObject = null; s.video.remove(); }
      await call('live.stop', []);
    },

    latest: () => session?.latest ?? null,

    /** W+ -> {face (ImageBitmap), stages: {synth}} in this instance's worker: the pipelined render. */
    synth: (wplus, size) => call('live.synth', [wplus, size]),

    stats,

    /**
     * ``ms`` of live results: {bytes, mime, format (as made), notices}. 'webm': what is shown (the camera image with the face pasted
     * in, with pasteBack), from MediaRecorder on the canvas's stream; 'mp4' | 'gif': the faces alone through
     * src/clips.js (MP4 with H.264 where this browser encodes it, else WebM, with a notice), each frame shown for
     * the live rate's frame time.
     */
    async record(ms = 3000, {format = 'webm'} = {}) {
      const s = session;
      if (!s) throw new Error('start live mode first: there is nothing to record');
      if (!(Number.isFinite(ms) && ms >= 100 && ms <= 60000)) throw new Error(`record takes 100 to 60000 ms, got ${ms}`);
      if (!['webm', 'mp4', 'gif'].includes(format)) throw new Error(`record's format must be webm, mp4 or gif, got ${format}`);
      if (format !== 'webm') {
        if (s.clip) throw new Error('a recording is already running');
        const frameMs = Math.round(1000 / Math.min(30, Math.max(1, stats().fps || 5)));
        s.clip = {encoder: await clipEncoder(format, s.size, frameMs), added: Promise.resolve()};
        await new Promise((resolve) => { setTimeout(resolve, ms); });
        const {clip} = s;
        s.clip = null;
        await clip.added;
        const {bytes, mime, format: made, notices} = await clip.encoder.finish();
        return {bytes, mime, format: made, notices};
      }
      const canvas = s.pasteBack && s.composite ? s.composite : s.canvas;
      const mime = ['video/webm;codecs=vp9', 'video/webm;codecs=vp8', 'video/webm'].find((m) => MediaRecorder.isTypeSupported(m));
      if (!mime) throw new Error('this browser cannot record WebM video');
      const stream = canvas.captureStream(30);
      const recorder = new MediaRecorder(stream, {mimeType: mime});
      const chunks = [];
      recorder.ondataavailable = (event) => { if (event.data.size) chunks.push(event.data); };
      const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
      recorder.start(250);
      await new Promise((resolve) => { setTimeout(resolve, ms); });
      recorder.stop();
      await stopped;
      stream.getTracks().forEach((t) => t.stop());
      return {bytes: new Uint8Array(await new Blob(chunks, {type: mime}).arrayBuffer()), mime: mime.split(';')[0], format: 'webm',
        notices: []};
    },
  };
}
