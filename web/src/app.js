// The page: wires the controls to window.celeblook (src/celeblook.js), which tests drive directly.
// ?backend=wasm|webgpu|auto (default auto) and ?threads=N override the automatic choices.

import {createCelebLook} from './celeblook.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const mb = (bytes) => `${(bytes / 2 ** 20).toFixed(1)} MB`;

const encoderOf = (cl) => (cl.manifest.constants.mapper_encoder === 'teacher' ? 'image_encoder_teacher' : 'image_encoder');

function status(text) { $('status').textContent = text; }

function showDownloads(files) {
  $('downloads').replaceChildren(...Object.entries(files).map(([file, {loaded, total}]) => {
    const item = document.createElement('li');
    const bar = Object.assign(document.createElement('progress'), {max: total || 1, value: loaded});
    item.append(bar, ` ${file}: ${mb(loaded)} of ${total ? mb(total) : '?'}`);
    return item;
  }));
}

const threads = params.has('threads') ? Number(params.get('threads')) : undefined;
const ready = createCelebLook({backend: params.get('backend') ?? 'auto', threads, onProgress: ({files}) => showDownloads(files)});
window.celeblook = {ready: ready.then(() => window.celeblook)};

let current = null; // W+ of the face on screen
let kept = null; // W+ the morph starts from

async function busy(label, work) {
  const buttons = document.querySelectorAll('button');
  buttons.forEach((b) => { b.disabled = true; });
  status(`${label}…`);
  const start = performance.now();
  try {
    const note = await work();
    status(`${label}: done in ${((performance.now() - start) / 1000).toFixed(1)} s${note ? ` (${note})` : ''}`);
  } catch (err) {
    status(`${label} failed: ${err.message}`);
    console.error(err);
  } finally {
    buttons.forEach((b) => { b.disabled = b.dataset.unavailable === 'true'; });
  }
}

function show(cl, image, size) {
  const canvas = $('face');
  canvas.width = canvas.height = size;
  canvas.getContext('2d').putImageData(cl.toImageData(image, size), 0, 0);
  $('png').href = canvas.toDataURL('image/png');
}

async function imageDataOf(file) {
  const bitmap = await createImageBitmap(file, {imageOrientation: 'from-image', premultiplyAlpha: 'none', colorSpaceConversion: 'none'});
  const canvas = new OffscreenCanvas(bitmap.width, bitmap.height);
  const context = canvas.getContext('2d');
  context.drawImage(bitmap, 0, 0);
  return context.getImageData(0, 0, bitmap.width, bitmap.height);
}

ready.then((cl) => {
  Object.assign(window.celeblook, cl);
  const size = () => Number($('size').value);
  $('size').replaceChildren(...cl.sizes.map((s) => new Option(`${s} px`, s, false, s === Math.min(512, Math.max(...cl.sizes)))));
  const adapter = cl.adapter ? ` (${cl.adapter.vendor ?? ''} ${cl.adapter.architecture ?? ''}${cl.adapter.fallback ? ', software fallback' : ''})` : '';
  const total = cl.manifest.files.filter((f) => f.file === cl.fileFor(f.model)).reduce((n, f) => n + f.bytes, 0);
  status(`Ready: ${cl.backend}${adapter}, ${cl.precision} models, ${mb(total)} to download in all (each model loads on first use).`);
  if (cl.manifest.constants.trained === false) {
    $('notice').hidden = false;
    $('notice').textContent = `These are the ${cl.manifest.constants.preset} preset's untrained random weights: faces will be noise-like.`;
  }
  const missing = ['mapper', 'text_encoder', encoderOf(cl)].filter((m) => !cl.has(m));
  if (missing.length) {
    $('photo').disabled = $('edit').disabled = true;
    $('edit').dataset.unavailable = 'true';
    $('notice').hidden = false;
    const hint = missing.includes('image_encoder_teacher')
      ? 'the mapper reads the CLIP teacher\'s image space: export with `export onnx --teacher`, or train the mapper on the student'
      : 'train the mapper with `python -m celeblook train mapper`, then rebuild the site';
    $('notice').textContent += ` Photo inversion and text edits are off: this site has no ${missing.join(', ')} model (${hint}).`;
  }
  $('psi').oninput = () => { $('psi-value').value = $('psi').value; };
  $('c').oninput = () => { $('c-value').value = $('c').value; };
  $('learned').disabled = !cl.has('strength');
  if (!cl.has('strength')) $('learned').checked = false;
  $('random').onclick = () => busy('Random face', async () => {
    const {wplus} = await cl.randomLatent(Number($('seed').value), Number($('psi').value));
    current = wplus;
    show(cl, await cl.render(wplus, 1, size()), size());
  });
  $('photo').onchange = () => busy('Inversion', async () => {
    current = await cl.invert(await imageDataOf($('photo').files[0]));
    show(cl, await cl.render(current, 1, size()), size());
  });
  $('edit').onclick = () => busy('Edit', async () => {
    if (!current) throw new Error('make or upload a face first');
    const strength = $('learned').checked ? 'learned' : Number($('c').value);
    const result = await cl.edit(current, $('target').value, {source: $('source').value, strength, size: size()});
    show(cl, result.image, size());
    $('c').value = $('c-value').value = result.C.toFixed(2);
    return `C = ${result.C.toFixed(3)}${result.truncated.some(Boolean) ? ', prompt cut to 77 tokens' : ''}`;
  });
  $('keep').onclick = () => { kept = current; status(kept ? 'Kept as the morph start.' : 'Make a face first.'); };
  $('morph').onclick = () => busy('Morph GIF', async () => {
    if (!kept || !current) throw new Error('keep one face, then make another');
    const bytes = await cl.morphGif(kept, current, {frames: Number($('frames').value), size: Math.min(size(), 512),
      onFrame: (i, n) => status(`Morph GIF: frame ${i} of ${n}…`)});
    const url = URL.createObjectURL(new Blob([bytes], {type: 'image/gif'}));
    Object.assign($('gif'), {src: url, hidden: false});
    Object.assign($('gif-link'), {href: url, hidden: false});
    return mb(bytes.length);
  });
}).catch((err) => { status(`Could not start: ${err.message}`); console.error(err); });
