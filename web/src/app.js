// The page: wires the controls to window.celeblook (src/celeblook.js), which the tests also drive directly: each
// button is one pipeline verb (src/pipeline.js), and the controls' ranges and defaults are the site's limits
// (site.json, from the Python modules). ?backend=wasm|webgpu|auto (default auto) and ?threads=N override the
// automatic choices.

import {createCelebLook} from './celeblook.js';
import {coach} from './coach.js';
import {share} from './share.js';
import {describeIdentity} from './identity.js';
import {wireLive} from './live_ui.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;
const num = (x, digits = 3) => (typeof x === 'number' ? x.toFixed(digits) : '–');

const state = {
  current: null, // {wplus, image, size}: the face in section 2
  png: null, // the current face as a PNG Blob (download, share)
  kept: null, // W+ the morph goes towards when 'the kept face' is chosen
  photo: null, // {image (ImageData), faces, chosen} of the uploaded photo, for paste-back
  edits: {}, // manual / learned results
  textEncoderLoaded: false,
};

function status(text) { $('status').textContent = text; }

function showDownloads(files) {
  $('downloads').replaceChildren(...Object.entries(files).map(([file, {loaded, total, cached}]) => {
    const item = document.createElement('li');
    const bar = Object.assign(document.createElement('progress'), {max: total || 1, value: loaded});
    item.append(bar, ` ${file}: ${cached ? `${mb(total)} from this browser's cache` : `${mb(loaded)} of ${total ? mb(total) : '?'}`}`);
    return item;
  }));
}

const downloads = {};
let busyNow = false;
function onProgress(event) {
  if (event.type === 'download') {
    downloads[event.file] = event;
    showDownloads(downloads);
    if (!event.cached && event.loaded < event.total) work(`Downloading ${event.file}`, event.loaded / event.total, false);
    else if (!busyNow) $('work').hidden = true;
    if (event.file.startsWith('text_encoder')) state.textEncoderLoaded = event.loaded === event.total;
  } else if (event.type === 'progress') {
    work(`${event.label} ${Math.min(event.done + 1, event.total)} of ${event.total}`, event.done / event.total, true);
  }
}

function work(label, fraction, cancellable) {
  $('work').hidden = false;
  $('work-label').textContent = label;
  $('work-progress').value = fraction;
  $('cancel').disabled = !cancellable;
}

// The service worker (sw.js) serves the page from this browser when the network is off.
const worker = navigator.serviceWorker?.register(new URL('../sw.js', import.meta.url)).catch((err) => {
  console.warn(`no offline use: ${err.message}`);
  return null;
});

/** Hands the service worker every file this visit loaded (page and worker) to keep for offline visits. */
async function keepForOffline() {
  const registration = await worker;
  if (!registration) return;
  const {active} = await navigator.serviceWorker.ready;
  const urls = [location.href, ...performance.getEntriesByType('resource').map((e) => e.name),
    ...await window.celeblook.resources()];
  const channel = new MessageChannel();
  const kept = new Promise((resolve) => { channel.port1.onmessage = resolve; });
  active.postMessage({type: 'keep', urls}, [channel.port2]);
  await kept;
  $('offline').hidden = false;
  $('offline').textContent = 'This page works offline now: the next visit needs no network for what you used.';
  $('offline').dataset.kept = String(Number($('offline').dataset.kept ?? 0) + 1); // how many times (tests wait on it)
}

const threads = params.has('threads') ? Number(params.get('threads')) : undefined;
const ready = createCelebLook({backend: params.get('backend') ?? 'auto', threads, onProgress});
window.celeblook = {ready: ready.then(() => window.celeblook)};

// The control whose event is being handled (a click, a chosen file, a drop, a paste: photos pasted anywhere go to
// the drop zone): an action it starts shows its error next to it, not in the header a screen away on a phone.
let trigger = null;
for (const type of ['click', 'change', 'drop', 'paste']) {
  document.addEventListener(type, (event) => { trigger = type === 'paste' ? $('drop') : event.target; }, true);
}

/** An error under the control that caused it (a labelled input: under its label); where that control is hidden
 * now (the camera's shot button), at the end of its fieldset or section. Replaced by the next action's. */
function showError(control, text) {
  const error = Object.assign(document.createElement('p'), {className: 'error', textContent: text});
  error.setAttribute('role', 'alert');
  const anchor = control instanceof Element && control.closest('main') ? control.closest('.drop, label') ?? control : null;
  if (!anchor) status(text);
  else if (anchor.checkVisibility()) anchor.after(error);
  else anchor.closest('fieldset, section').append(error);
}

/** An action's notes under its result (the element it reveals), replacing the previous ones there. */
function showNotes(reveal, text) {
  const place = $(reveal);
  let notes = place.querySelector(':scope > .notes');
  if (!notes) {
    notes = Object.assign(document.createElement('p'), {className: 'notes'});
    notes.setAttribute('role', 'status');
    place.append(notes);
  }
  notes.textContent = text;
  notes.hidden = !text;
}

async function busy(label, work_, reveal) {
  const origin = trigger;
  document.querySelectorAll('main .error').forEach((error) => error.remove());
  if (reveal) showNotes(reveal, '');
  const buttons = document.querySelectorAll('main button');
  buttons.forEach((b) => { b.disabled = true; });
  busyNow = true;
  status(`${label}…`);
  work(label, 0, false);
  const start = performance.now();
  try {
    const note = await work_();
    status(`${label}: done in ${((performance.now() - start) / 1000).toFixed(1)} s`);
    if (reveal) {
      showNotes(reveal, note ?? '');
      $(reveal).scrollIntoView({block: 'nearest'});
    }
  } catch (err) {
    status(err.cancelled ? `${label}: cancelled` : `${label} failed: ${err.message}`);
    if (!err.cancelled) {
      showError(origin, `${label} failed: ${err.message}`);
      console.error(err);
    }
  } finally {
    buttons.forEach((b) => { b.disabled = b.dataset.unavailable === 'true'; });
    busyNow = false;
    $('work').hidden = true;
    $('cancel').disabled = true;
    refreshCache();
    keepForOffline();
  }
}

function draw(canvasId, image, size) {
  const canvas = $(canvasId);
  canvas.width = canvas.height = size;
  canvas.getContext('2d').putImageData(image instanceof ImageData ? image : window.celeblook.toImageData(image, size), 0, 0);
  return canvas;
}

/** W+ (slots x style float32) as a .npy file, loadable with numpy.load (the app's latent format). */
function npy(wplus) {
  const slots = window.celeblook.info.limits.n_slots;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${slots}, ${wplus.length / slots}), }`;
  header += ' '.repeat(64 - ((10 + header.length + 1) % 64)) + '\n';
  const head = new Uint8Array(10 + header.length);
  head.set([0x93, ...'NUMPY'].map((c) => (typeof c === 'string' ? c.charCodeAt(0) : c)));
  head.set([1, 0, header.length & 0xff, header.length >> 8], 6);
  head.set(new TextEncoder().encode(header), 10);
  return new Blob([head, wplus], {type: 'application/octet-stream'});
}

// What each clip format is called in the page ('mp4' is WebM where the browser has no H.264 encoder: src/clips.js)
const CLIP_NAMES = {gif: 'GIF', mp4: 'MP4', webm: 'WebM'};

/**
 * A clip (a sweep's, a morph's, a live recording's): its download link ``linkId`` and share button ``shareId``
 * hand over the clip itself, named ``celeblook-<stem>.<format>``; where a card shows it, in its image ``img``
 * (a GIF) or video ``video``.
 */
function showClip(clip, {img, video, linkId, shareId, stem}) {
  const name = `celeblook-${stem}.${clip.format}`;
  link(linkId, new Blob([clip.bytes], {type: clip.mime}));
  Object.assign($(linkId), {download: name, textContent: CLIP_NAMES[clip.format]});
  if (img) {
    const isVideo = clip.format !== 'gif';
    $(img).hidden = isVideo;
    $(video).hidden = !isVideo;
    (isVideo ? $(img) : $(video)).removeAttribute('src');
    $(isVideo ? video : img).src = $(linkId).href;
  }
  $(shareId).hidden = false;
  $(shareId).onclick = async () => {
    const how = await share({bytes: clip.bytes, mime: clip.mime, name}).catch((err) => `failed: ${err.message}`);
    status(`Share: ${how}`);
  };
}

function link(id, blob) {
  const a = $(id);
  if (a.href.startsWith('blob:')) URL.revokeObjectURL(a.href);
  a.href = URL.createObjectURL(blob);
  a.hidden = false;
}

const pngOf = (canvas) => new Promise((resolve) => { canvas.toBlob(resolve, 'image/png'); });

async function setFace(face, caption) {
  state.current = face;
  const canvas = draw('face', face.image, face.size);
  $('face-scores').textContent = caption;
  state.png = await pngOf(canvas);
  link('png', state.png); // ready before the action reports 'done'
  $('share').hidden = false;

  link('latent', npy(face.wplus));
  $('paste').hidden = !state.photo;
}

/** A picture (bitmap, video frame) as ImageData, at most ``maxSide`` px a side (larger ones downscaled). */
function pixelsOf(source, width, height, maxSide) {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  const [w, h] = [Math.round(width * scale), Math.round(height * scale)];
  const context = new OffscreenCanvas(w, h).getContext('2d');
  context.imageSmoothingQuality = 'high';
  context.drawImage(source, 0, 0, w, h);
  return context.getImageData(0, 0, w, h);
}

/** A photo of the app's sizes as ImageData: at least the photo min side, at most its max side (downscaled). */
function photoPixels(source, width, height) {
  const {photo_max_side: maxSide, photo_min_side: minSide} = window.celeblook.info.limits;
  if (Math.min(width, height) < minSide) throw new Error(`the photo is ${width}x${height}: at least ${minSide} px a side is needed`);
  return pixelsOf(source, width, height, maxSide);
}

/** An uploaded, dropped or pasted photo as ImageData, upright (EXIF). */
async function imageDataOf(file) {
  if (!file) throw new Error('choose a photo first');
  const bitmap = await createImageBitmap(file, {imageOrientation: 'from-image', premultiplyAlpha: 'none', colorSpaceConversion: 'none'})
    .catch(() => { throw new Error(`${file.name ?? 'the pasted file'} is not an image this browser can read`); });
  return photoPixels(bitmap, bitmap.width, bitmap.height);
}

/** The camera: a preview with the coach's advice (from the face landmarks) until the shot or Stop. */
const camera = {stream: null, timer: null};
function stopCamera() {
  camera.stream?.getTracks().forEach((track) => track.stop());
  camera.stream = null;
  clearTimeout(camera.timer);
  $('camera-video').srcObject = null;
  $('camera-box').hidden = true;
  $('camera').hidden = false;
}

async function startCamera() {
  try {
    camera.stream = await navigator.mediaDevices.getUserMedia({audio: false,
      video: {facingMode: 'user', width: {ideal: 1280}, height: {ideal: 720}}});
  } catch (err) {
    status(`Camera failed: ${err.message}`);
    showError($('camera'), `Camera failed: ${err.message}`);
    return;
  }
  $('camera-video').srcObject = camera.stream;
  $('camera-box').hidden = false;
  $('camera').hidden = true;
  $('coach').textContent = 'Looking for your face…';
  coachTick();
}

const COACH_SIDE = 320; // the coach's frames: enough for the landmarks, quick enough to follow the face
async function coachTick() {
  const video = $('camera-video');
  if (!camera.stream) return;
  if (video.videoWidth && !busyNow) {
    const image = pixelsOf(video, video.videoWidth, video.videoHeight, COACH_SIDE);
    const {faces} = await window.celeblook.align(image);
    if (!camera.stream) return;
    const {ready, advice} = coach(faces[0], image);
    $('coach').textContent = advice.join(' ');
    $('coach').dataset.ready = String(ready);
  }
  camera.timer = setTimeout(coachTick, 250);
}

async function refreshCache() {
  const cl = window.celeblook;
  if (!cl.cached) return;
  const files = await cl.cached();
  const bytes = files.reduce((n, f) => n + f.bytes, 0);
  $('cache-summary').textContent = files.length ? `${files.length} file(s), ${mb(bytes)} kept by this browser` : 'none kept yet';
  $('cache-info').textContent = files.length ? `Cached: ${files.map((f) => f.file).join(', ')}. A later visit loads them from here.` : '';
}

/** Under a prompt box: whether the prompt needs the text encoder (its size said before any download). */
async function promptNote(input, note) {
  const cl = window.celeblook;
  const text = $(input).value;
  const known = text.trim() ? await cl.inBank(text).catch(() => false) : true;
  const cached = (await cl.cached()).some((f) => f.file === cl.fileFor('text_encoder'));
  $(note).textContent = known || !cl.has('text_encoder') ? ''
    : state.textEncoderLoaded || cached ? 'Free text: the text encoder is loaded.'
      : `Free text: this needs the text encoder, a ${mb(cl.info.bytes.textEncoder)} download (once). The suggested prompts need none.`;
}

/** The photo's crop over the result, cut where the before/after slider says (arrow keys move it). */
function showOriginal(shown) {
  $('original-card').hidden = $('compare-label').hidden = !shown;
  $('original-card').style.clipPath = `inset(0 ${100 - Number($('compare').value)}% 0 0)`;
}

async function usePhotoFace(index) {
  const cl = window.celeblook;
  const {image, faces} = state.photo;
  state.photo.chosen = index;
  [...$('faces').children].forEach((b, i) => b.setAttribute('aria-pressed', String(i === index)));
  const photo = faces.length ? {source: image, quad: faces[index].quad} : {source: image, aligned: true};
  // the refiner's own count unless the visitor changed it (the control shows only where the site has a refiner)
  const refineIterations = $('refine-box').hidden ? undefined : Number($('refine-iterations').value);
  const result = await cl.pipeline.invert(photo, {size: Number($('size').value), refineIterations});
  showOriginal(true);
  draw('original', result.photo.crop, result.photo.crop.width);
  state.photo.crop = result.photo.crop;
  const [face] = result.faces;
  const caption = `Inversion: similarity to the photo ${num(face.scores.clip_similarity)}`;
  await setFace(face, caption);
  showIdentity(face, 'face-scores', caption, () => state.current === face);
  return [...(faces.length > 1 ? [`${faces.length} faces found; face ${index} used`] : []), ...result.notices].join('; ');
}

/**
 * The app's identity line after an inversion or an edit of a photo, appended to ``caption`` in ``captionId`` once
 * measured (the first measurement downloads the recognition net): the action that showed ``face`` does not wait
 * for it, and the line is left out when ``stillShown()`` says a later action replaced the face meanwhile. A site
 * built without the recognition net says so in the line.
 */
function showIdentity(face, captionId, caption, stillShown) {
  const cl = window.celeblook;
  cl.identity(state.photo.crop, cl.toImageData(face.image, face.size))
    .catch((err) => ({distance: null, reason: err.message}))
    .then((identity) => {
      if (stillShown()) $(captionId).textContent = `${caption}; ${describeIdentity(identity, cl.info.limits.same_person)}`;
    });
}

// The page's controls that are request fields (site.json's limits.requests, from celeblook/pipeline/requests):
// their labels, help and ranges come from there, as the app's and the CLI's do. The page keeps its own defaults
// where it asks for less work than the app (fewer frames: clips are made on the visitor's device).
const SCHEMA_CONTROLS = {
  'seed': 'random_faces.seed', 'psi': 'random_faces.psi', 'text-seed': 'text_to_face.seed',
  'target': 'edit.target', 'source': 'edit.source', 'sweep-frames': 'sweep.n_frames', 'sweep-cmax': 'sweep.c_max',
  'frames': 'morph.n_frames', 'morph-mode': 'morph.mode', 'refine-iterations': 'invert.refine_iterations',
};

/** A control's label (the text before it in its label), help (its title) and range from the request schema. */
function describeControl(control, path) {
  const [verb, name] = path.split('.');
  const field = window.celeblook.info.limits.requests[verb][name];
  const label = control.closest('label');
  label.firstChild.textContent = `${field.label} `;
  control.title = field.help;
  if ('low' in field) [control.min, control.max] = [field.low, field.high].map(String);
}

async function showFaces(faces) {
  const cl = window.celeblook;
  const buttons = await Promise.all(faces.map(async (face, i) => {
    const button = Object.assign(document.createElement('button'), {type: 'button', title: `face ${i}`});
    const canvas = document.createElement('canvas');
    canvas.width = canvas.height = 72;
    canvas.getContext('2d').putImageData(await cl.cropQuad(state.photo.image, face.quad, 72), 0, 0);
    button.append(canvas);
    button.onclick = () => busy('Inversion', () => usePhotoFace(i), 'result');
    return button;
  }));
  $('faces').replaceChildren(...buttons);
}

async function friendPhoto() {
  const file = $('friend').files[0];
  if (!file) throw new Error("choose your friend's photo first");
  return {source: await imageDataOf(file), label: "your friend's photo"};
}

ready.then((cl) => {
  Object.assign(window.celeblook, cl);
  const {info} = cl;
  const size = () => Number($('size').value);
  // GIFs at most the largest GIF size the app offers (many frames at 1024 px would be tens of MB)
  const gifSize = () => Math.min(size(), Math.max(...info.limits.gif_sizes));
  $('size').replaceChildren(...cl.sizes.map((s) => new Option(`${s} px`, s, false, s === info.defaultSize)));
  for (const select of document.querySelectorAll('.clip-format')) {
    select.replaceChildren(...info.limits.clip_formats.map((f) => new Option(CLIP_NAMES[f], f)));
  }
  $('backend').textContent = `Running on ${cl.backend === 'webgpu' ? 'WebGPU' : 'wasm (CPU)'} with ${cl.precision} models: ${cl.reason}.`;
  status(`Ready. A first random face downloads ${mb(info.bytes.random)}, a photo ${mb(info.bytes.photo)}, an edit ${mb(info.bytes.edit)}; `
    + 'files are kept for later visits.');
  if (info.constants.trained === false) {
    $('notice').hidden = false;
    $('notice').textContent = `These are the ${info.constants.preset} preset's untrained random weights: faces will be patterns, not people.`;
  }
  const prompts = info.prompts?.prompts ?? [];
  $('prompt-list').replaceChildren(...[...(info.prompts?.examples ?? []), ...prompts].map((p) => new Option(p)));
  const {defaults} = info.limits;
  $('c').max = String(info.limits.c_max);
  for (const [id, field] of Object.entries(SCHEMA_CONTROLS)) describeControl($(id), field);
  $('refine-box').hidden = !info.constants.refiner_iterations;
  $('refine-iterations').value = String(info.constants.refiner_iterations);
  $('sweep-cmax').value = String(defaults.sweep.c_max);
  $('psi').value = $('psi-value').value = String(defaults.random_faces.psi);
  $('source').value = info.limits.default_source;
  const off = (what, ids) => {
    ids.forEach((id) => { $(id).disabled = true; $(id).dataset.unavailable = 'true'; });
    $('notice').hidden = false;
    $('notice').textContent += ` ${what}`;
  };
  if (!cl.has('strength')) {
    $('notice').hidden = false;
    $('notice').textContent += ' This site has no strength head: only the manual C is shown.';
  }
  if (!cl.has('mapper')) off('This site has no mapper: photos, text and edits are off.', ['photo', 'text-face', 'edit', 'sweep', 'friend', 'camera', 'live-start']);
  else if (!cl.has(info.constants.photo_encoder)) off(`This site has no ${info.constants.photo_encoder}.onnx: photos are off.`, ['photo', 'friend', 'camera', 'live-start']);
  for (const [input, note] of [['prompt', 'prompt-note'], ['target', 'target-note'], ['morph-prompt', 'target-note'], ['source', 'target-note']]) {
    $(input).addEventListener('input', () => promptNote(input, note));
  }
  promptNote('prompt', 'prompt-note');
  promptNote('target', 'target-note');
  refreshCache();
  keepForOffline();

  $('compare').oninput = () => showOriginal(true);
  $('psi').oninput = () => { $('psi-value').value = $('psi').value; };
  $('c').oninput = () => { $('c-value').value = $('c').value; };
  $('cancel').onclick = () => cl.cancel();
  $('clear-cache').onclick = async () => {
    await cl.clearCache();
    await refreshCache();
    status('Cached models cleared: the next use downloads them again.');
  };

  $('random').onclick = () => busy('Random face', async () => {
    const {faces: [face]} = await cl.pipeline.randomFaces(Number($('seed').value), {psi: Number($('psi').value), size: size()});
    state.photo = null;
    showOriginal(false);
    await setFace(face, `Random face, seed ${face.scores.seed}`);
  }, 'result');

  const promptStart = (id) => ({text: $(id).value, seed: Number($('text-seed').value), psi: Number($('psi').value)});
  $('text-face').onclick = () => busy('Face from text', async () => {
    const {text, seed, psi} = promptStart('prompt');
    const r = await cl.pipeline.textToFace(text, {seed, psi, size: size()});
    state.photo = null;
    showOriginal(false);
    await setFace(r.faces[0], `Text score ${num(r.faces[0].scores.text_score)}`);
    return r.notices.join('; ');
  }, 'result');

  /** Every way in (file, drop, paste, camera) goes through the same detection and inversion. */
  const usePhoto = (imageOf) => busy('Photo', async () => {
    if ($('photo').disabled) throw new Error('this site cannot invert photos');
    const image = await imageOf();
    if ($('aligned').checked) {
      state.photo = {image, faces: [], chosen: null};
      $('faces').replaceChildren();
      return usePhotoFace(0);
    }
    status('Finding faces…');
    const {faces, chosen} = await cl.align(image);
    state.photo = {image, faces, chosen};
    if (!faces.length) {
      $('faces').replaceChildren();
      throw new Error('no face found in this photo: try a sharper, frontal photo, or tick "already aligned"');
    }
    await showFaces(faces);
    return usePhotoFace(chosen);
  }, 'result');
  $('photo').onchange = () => usePhoto(() => imageDataOf($('photo').files[0]));
  // a new count redoes the photo's inversion (the face chosen stays)
  $('refine-iterations').onchange = () => state.photo?.image
    && busy('Inversion', () => usePhotoFace(state.photo.chosen ?? 0), 'result');
  const drop = $('drop');
  drop.addEventListener('dragover', (event) => { event.preventDefault(); drop.classList.add('over'); });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer?.files[0];
    usePhoto(() => imageDataOf(file));
  });
  document.addEventListener('paste', (event) => {
    const file = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
    if (!file) return; // text pastes into the prompt boxes as usual
    event.preventDefault();
    usePhoto(() => imageDataOf(file));
  });
  $('camera').onclick = startCamera;
  $('camera-stop').onclick = stopCamera;
  $('shot').onclick = () => {
    const video = $('camera-video');
    let image;
    try {
      image = photoPixels(video, video.videoWidth, video.videoHeight);
    } catch (err) {
      status(`Photo failed: ${err.message}`);
      showError($('shot'), `Photo failed: ${err.message}`);
      return;
    }
    stopCamera();
    usePhoto(async () => image);
  };
  addEventListener('pagehide', stopCamera); // leaving the page (or the bfcache) releases the camera
  // Live section (src/live_ui.js)
  wireLive(cl, {kept: () => state.kept, status, showClip});
  document.addEventListener('visibilitychange', () => { if (document.hidden) stopCamera(); });

  $('share').onclick = async () => {
    const bytes = new Uint8Array(await state.png.arrayBuffer());
    const how = await cl.share({bytes, mime: 'image/png', name: 'celeblook.png'}).catch((err) => `failed: ${err.message}`);
    status(`Share: ${how}`);
  };

  $('keep').onclick = () => {
    state.kept = state.current?.wplus ?? null;
    status(state.kept ? 'Kept: the morph can go towards this face.' : 'Make a face first.');
    if (!state.kept) showError($('keep'), 'Make a face first.');
  };

  $('paste').onclick = () => busy('Paste into the photo', async () => {
    const {image, faces, chosen} = state.photo;
    if (!faces.length) throw new Error('the photo was used as already aligned: there is no crop to paste back into');
    const pasted = await cl.pasteBack(image, faces[chosen].quad, state.current.image, state.current.size);
    $('pasted-card').hidden = false;
    link('pasted-png', await pngOf(draw('pasted', pasted, pasted.width)));
  }, 'pasted-card');

  $('edit').onclick = () => busy('Edit', async () => {
    if (!state.current) throw new Error('make or upload a face first');
    const strengths = [Number($('c').value), ...(cl.has('strength') ? ['learned'] : [])];
    const r = await cl.pipeline.edit(state.current.wplus, $('target').value, {source: $('source').value, strengths, size: size()});
    const notes = [...r.notices];
    for (const {name, face, notices} of r.variants) {
      notes.push(...notices);
      if (!face) continue;
      state.edits[name] = face;
      $(`${name}-card`).hidden = false;
      draw(name, face.image, face.size);
      const {C, clip_similarity: similarity, text_score: text} = face.scores;
      const caption = `${name === 'learned' ? 'Learned' : 'Manual'} C = ${num(C)} · similarity ${num(similarity)} · text ${num(text)}`;
      $(`${name}-scores`).textContent = caption;
      if (state.photo?.crop) showIdentity(face, `${name}-scores`, caption, () => state.edits[name] === face); // the edit of a photo
    }
    return notes.join('; ');
  }, 'manual-card');
  document.querySelectorAll('[data-use]').forEach((button) => {
    button.onclick = () => busy('Use the edit', async () => {
      const chosen = state.edits[button.dataset.use];
      if (chosen) await setFace(chosen, `Edited (${button.dataset.use} C)`);
    }, 'result');
  });

  $('sweep').onclick = () => busy('C-sweep GIF', async () => {
    if (!state.current) throw new Error('make or upload a face first');
    const r = await cl.pipeline.sweep(state.current.wplus, $('target').value, {source: $('source').value,
      nFrames: Number($('sweep-frames').value), cMax: Number($('sweep-cmax').value), size: gifSize(), format: $('sweep-format').value});
    showClip(r.clip, {img: 'sweep-gif', video: 'sweep-video', linkId: 'sweep-link', shareId: 'sweep-share', stem: 'sweep'});
    $('sweep-card').hidden = false;
    $('sweep-scores').textContent = r.faces.map(({scores: s}) => `C ${num(s.C, 2)}: sim ${num(s.clip_similarity, 2)}, text ${num(s.text_score, 2)}`)
      .join(' · ');
    return [mb(r.clip.bytes.length), ...r.notices].join('; ');
  }, 'sweep-card');

  $('morph-with').onchange = () => {
    $('friend').hidden = $('morph-with').value !== 'friend';
    $('morph-prompt').hidden = $('morph-with').value !== 'prompt';
  };
  $('morph').onclick = () => busy('Morph GIF', async () => {
    if (!state.current) throw new Error('make or upload a face first');
    const towards = $('morph-with').value;
    let other; // a start, as the pipeline takes it: a W+, a photo or a prompt
    if (towards === 'kept') {
      if (!state.kept) throw new Error('keep a face first ("Keep for morph"), then make or upload another');
      other = state.kept;
    } else {
      other = towards === 'friend' ? await friendPhoto() : promptStart('morph-prompt');
    }
    const r = await cl.pipeline.morph(state.current.wplus, other, {nFrames: Number($('frames').value), size: gifSize(),
      mode: $('morph-mode').value, format: $('morph-format').value});
    showClip(r.clip, {img: 'gif', video: 'gif-video', linkId: 'gif-link', shareId: 'gif-share', stem: 'morph'});
    $('gif-card').hidden = false;
    return [mb(r.clip.bytes.length), ...r.notices].join('; ');
  }, 'gif-card');
}).catch((err) => { status(`Could not start: ${err.message}`); console.error(err); });
