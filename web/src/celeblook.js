// CelebrityLook's models in the browser: onnxruntime-web sessions over the exported ONNX files.
//
// One object, created by createCelebLook(), that the page and the tests use alike (window.celeblook):
// random faces (seeded z -> mapping -> truncation -> synthesis), photo inversion (CLIP preprocessing ->
// image encoder -> mapper), text edits (int8 text encoder, delta = f(e_T(target)) - f(e_T(source)), C from
// a slider or the learned strength head) and morph GIFs. Latents are W+ as flat Float32Arrays (N*23*512);
// images are Float32Arrays (N,3,S,S) in [-1,1], as the ONNX graphs produce them.
//
// Execution: WebGPU when the browser gives an adapter (fp16 files when it has 'shader-f16', else fp32),
// otherwise wasm (fp32). Every session lists 'wasm' after 'webgpu', so an op WebGPU lacks runs on the CPU.

import {GIFEncoder, applyPalette, quantize} from '../vendor/gifenc/gifenc.esm.js';
import {photoToClip} from './preprocess.js';
import {seededNormal} from './prng.js';
import {loadTokenizer} from './tokenizer.js';

const SLOTS = 23;
const DEFAULT_SOURCE = 'a face'; // celeblook/text.py DEFAULT_SOURCE
const GIF_LIMITS = {frames: [2, 48], size: [64, 512]};

/** Which backend to use: 'webgpu' needs an adapter; 'auto' takes WebGPU when there is one. */
async function chooseBackend(requested) {
  let adapter = null;
  if (requested !== 'wasm' && typeof navigator !== 'undefined' && navigator.gpu) {
    adapter = await navigator.gpu.requestAdapter().catch(() => null);
  }
  if (requested === 'webgpu' && !adapter) throw new Error('WebGPU was requested but the browser gives no WebGPU adapter');
  if (!adapter) return {backend: 'wasm', f16: false, adapter: null};
  const info = adapter.info ?? {};
  return {backend: 'webgpu', f16: adapter.features.has('shader-f16'),
    adapter: {vendor: info.vendor, architecture: info.architecture, fallback: Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter)}};
}

/** GET a file with progress callbacks; returns its bytes. */
async function download(url, expectedBytes, onBytes) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`cannot download ${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get('content-length')) || expectedBytes || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onBytes(loaded, total);
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) { bytes.set(chunk, offset); offset += chunk.length; }
  return bytes;
}

/**
 * Token rows (n x width ids) -> [ids, dims] without the columns after the batch's last end-of-text token
 * (EOT has the largest id, so it is each row's first maximum), when the text encoder takes any length:
 * exact for CLIP's causal text tower and several times less work for short prompts (celeblook.models.clip).
 */
export function cutAfterLastEot(ids, n, width) {
  let length = 1;
  for (let r = 0; r < n; r++) {
    const row = ids.subarray(r * width, (r + 1) * width);
    length = Math.max(length, row.indexOf(Math.max(...row)) + 1);
  }
  const cut = new Int32Array(n * length);
  for (let r = 0; r < n; r++) cut.set(ids.subarray(r * width, r * width + length), r * length);
  return [cut, [n, length]];
}

function checkLatents(wplus, n, style) {
  if (!(wplus instanceof Float32Array) || wplus.length !== n * SLOTS * style) {
    throw new Error(`a latent batch must be a Float32Array of ${n}x${SLOTS}x${style} values, got ${wplus?.length}`);
  }
  if (!wplus.every(Number.isFinite)) throw new Error('the latent contains NaN or infinite values');
}

/** (N,3,S,S) in [-1,1] -> ImageData of image ``index``: clamp, round((x+1)*127.5) (media.to_uint8). */
export function toImageData(image, size, index = 0) {
  const plane = size * size;
  const rgba = new Uint8ClampedArray(plane * 4);
  const base = index * 3 * plane;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const x = (Math.min(1, Math.max(-1, image[base + c * plane + i])) + 1) * 127.5;
      const r = Math.round(x);
      rgba[i * 4 + c] = x % 1 === 0.5 && r % 2 ? r - 1 : r; // numpy rint: halves to even
    }
    rgba[i * 4 + 3] = 255;
  }
  return new ImageData(rgba, size, size);
}

export async function createCelebLook({base = new URL('./', location.href).href, backend = 'auto', threads,
  onProgress = () => {}} = {}) {
  const chosen = await chooseBackend(backend);
  const ort = await import(new URL(chosen.backend === 'webgpu' ? 'vendor/ort/ort.webgpu.min.mjs'
    : 'vendor/ort/ort.wasm.min.mjs', base).href);
  ort.env.wasm.wasmPaths = new URL('vendor/ort/', base).href;
  ort.env.logLevel = 'error'; // not the per-session 'nodes not assigned to the preferred EP' notes
  // wasm threads need cross-origin isolation (COOP/COEP headers: `python -m celeblook web serve` sends them)
  ort.env.wasm.numThreads = threads ?? (globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1);
  const manifest = await (await fetch(new URL('models/manifest.json', base))).json();
  const constants = manifest.constants;
  const style = constants.w_avg.length;
  const wAvg = Float32Array.from(constants.w_avg);
  const precision = chosen.backend === 'webgpu' && chosen.f16 ? 'fp16' : 'fp32';
  const providers = chosen.backend === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'];

  /** The manifest entry for a model: the backend's precision if exported, else fp32 (text: int8 first). */
  function entryFor(model) {
    const entries = manifest.files.filter((f) => f.model === model);
    const order = model === 'text_encoder' ? ['int8', precision, 'fp32'] : [precision, 'fp32'];
    for (const p of order) {
      const found = entries.find((f) => f.precision === p);
      if (found) return found;
    }
    return null;
  }

  const sessions = new Map();
  const downloads = {}; // file -> {loaded, total}
  function report(file, loaded, total) {
    downloads[file] = {loaded, total};
    onProgress({file, loaded, total, files: {...downloads}});
  }

  function session(model) {
    if (!sessions.has(model)) {
      const entry = entryFor(model);
      if (!entry) {
        const how = ['mapper', 'strength'].includes(model) ? `train it (python -m celeblook train ${model}), then rebuild the site`
          : 'rebuild the site with python -m celeblook web build';
        return Promise.reject(new Error(`this site has no ${model}.onnx: ${how}`));
      }
      sessions.set(model, (async () => {
        const bytes = await download(new URL(`models/${entry.file}`, base).href, entry.bytes, (l, t) => report(entry.file, l, t));
        const session = await ort.InferenceSession.create(bytes, {executionProviders: providers, graphOptimizationLevel: 'all'});
        return {session, entry};
      })());
      sessions.get(model).catch(() => sessions.delete(model)); // a failed download can be retried
    }
    return sessions.get(model);
  }

  // one inference at a time: an onnxruntime-web session must not run concurrently with itself
  let queue = Promise.resolve();
  function run(model, feeds) {
    const job = queue.then(async () => {
      const {session: s, entry} = await session(model);
      const tensors = {};
      for (const spec of entry.inputs) {
        const [data, dims] = feeds[spec.name];
        tensors[spec.name] = spec.dtype === 'int64'
          ? new ort.Tensor('int64', BigInt64Array.from(data, (v) => BigInt(v)), dims)
          : new ort.Tensor('float32', data, dims);
      }
      const out = await s.run(tensors);
      return out[entry.outputs[0].name].data;
    });
    queue = job.catch(() => {});
    return job;
  }

  const tokenizer = loadTokenizer(new URL('vendor/bpe_simple_vocab_16e6.txt.gz', base).href);
  const sizes = manifest.files.filter((f) => f.model.startsWith('synthesis_')).map((f) => Number(f.model.split('_')[1]));
  const encoderModel = constants.mapper_encoder === 'teacher' ? 'image_encoder_teacher' : 'image_encoder';
  const clip = constants.clip;

  const api = {
    backend: chosen.backend,
    adapter: chosen.adapter,
    precision,
    manifest,
    sizes: [...new Set(sizes)].sort((a, b) => a - b),
    downloads,
    has: (model) => entryFor(model) !== null,
    fileFor: (model) => entryFor(model)?.file ?? null,

    /** Start downloading models now (e.g. while the user reads the page). */
    preload: (models) => Promise.all(models.filter((m) => entryFor(m)).map(session)),

    /** W+ (N*23*512) -> images (N,3,size,size) in [-1,1]. */
    async render(wplus, n = 1, size = Math.max(...api.sizes)) {
      if (!api.sizes.includes(size)) throw new Error(`size must be one of ${api.sizes.join(', ')}, got ${size}`);
      checkLatents(wplus, n, style);
      return run(`synthesis_${size}`, {wplus: [wplus, [n, SLOTS, style]]});
    },

    /** z (N*512) -> w (N*512). */
    mapping: (z, n = 1) => run('mapping', {z: [z, [n, style]]}),

    /** A seeded face: z ~ N(0,I) from the seed, w = mapping(z), truncated to w_avg + psi (w - w_avg), on every slot. */
    async randomLatent(seed, psi = 0.7) {
      if (!(psi >= 0 && psi <= 1)) throw new Error(`psi must be between 0 and 1, got ${psi}`);
      const z = seededNormal(seed, style);
      const w = await api.mapping(z, 1);
      const wplus = new Float32Array(SLOTS * style);
      for (let s = 0; s < SLOTS; s++) {
        for (let i = 0; i < style; i++) wplus[s * style + i] = wAvg[i] + psi * (w[i] - wAvg[i]);
      }
      return {z, w, wplus};
    },

    /** ImageData -> the CLIP input (3*224*224), exactly celeblook.preprocess.photo_to_clip's steps. */
    preprocess: (image) => photoToClip(image, clip.mean, clip.std, clip.size ?? 224),

    /** ImageData -> unit image embedding (768) from the encoder the mapper reads. */
    async encodeImage(image) {
      const size = clip.size ?? 224;
      return run(encoderModel, {pixels: [api.preprocess(image), [1, 3, size, size]]});
    },

    /** CLIP embeddings (N*768) -> W+ (N*23*512). */
    map: (embedding, n = 1) => run('mapper', {embedding: [embedding, [n, embedding.length / n]]}),

    /** A photo (ImageData, already aligned) -> W+ (23*512): mapper(E_I(photo)). */
    async invert(image) {
      return api.map(await api.encodeImage(image), 1);
    },

    async tokenize(text) { return (await tokenizer).tokenize(text); },

    /** Prompts -> unit text embeddings (N*768) and which prompts were cut to 77 tokens. */
    async encodeText(texts) {
      texts = Array.isArray(texts) ? texts : [texts];
      if (texts.length === 0) throw new Error('no prompts given');
      const tok = await tokenizer;
      const rows = texts.map((t) => {
        if (typeof t !== 'string' || !t.trim()) throw new Error("the prompt is empty; type a description such as 'a smiling woman with red hair'");
        return tok.tokenize(t);
      });
      const ids = new Int32Array(rows.length * 77);
      rows.forEach((r, i) => ids.set(r.ids, i * 77));
      // a named token axis in the manifest (not a fixed 77) means the graph takes any length: cut after the last EOT
      const anyLength = typeof entryFor('text_encoder')?.inputs[0].shape[1] === 'string';
      const tokens = anyLength ? cutAfterLastEot(ids, rows.length, 77) : [ids, [rows.length, 77]];
      const embedding = await run('text_encoder', {tokens});
      return {embedding, truncated: rows.map((r) => r.truncated)};
    },

    /** delta = f(e_T(target)) - f(e_T(source)) (23*512), exactly zero when both embeddings are equal. */
    async direction(target, source = DEFAULT_SOURCE) {
      const {embedding, truncated} = await api.encodeText([target, source]);
      const dim = embedding.length / 2;
      const targetEmbedding = embedding.slice(0, dim);
      const same = targetEmbedding.every((v, i) => v === embedding[dim + i]);
      const mapped = await api.map(embedding, 2);
      const half = mapped.length / 2;
      const delta = same ? new Float32Array(half) : mapped.slice(0, half).map((v, i) => v - mapped[half + i]);
      return {delta, targetEmbedding, truncated};
    },

    /** The learned C for editing ``wplus`` along ``delta`` towards the target embedding. */
    async strength(wplus, targetEmbedding, delta) {
      const c = await run('strength', {wplus: [wplus, [1, SLOTS, style]], embedding: [targetEmbedding, [1, targetEmbedding.length]],
        delta: [delta, [1, SLOTS, style]]});
      return c[0];
    },

    /** W+ + C * delta with C a number or 'learned'; returns the edited latent, C, and the image at ``size``. */
    async edit(wplus, target, {source = DEFAULT_SOURCE, strength = 'learned', size = Math.max(...api.sizes)} = {}) {
      checkLatents(wplus, 1, style);
      const {delta, targetEmbedding, truncated} = await api.direction(target, source);
      let c = strength;
      if (strength === 'learned') {
        if (!api.has('strength')) throw new Error('this site has no strength.onnx: train the strength head, re-export, or set C by hand');
        c = await api.strength(wplus, targetEmbedding, delta);
      } else if (!(typeof c === 'number' && Number.isFinite(c) && Math.abs(c) <= 2)) {
        throw new Error(`strength C must be a number in [-2, 2] or 'learned', got ${strength}`);
      }
      const edited = wplus.map((v, i) => v + c * delta[i]);
      return {wplus: edited, C: c, image: await api.render(edited, 1, size), delta, truncated};
    },

    /** Frames (1-t) a + t b, t = 0..1, as a looping GIF89a (Uint8Array); frames rendered one by one. */
    async morphGif(a, b, {frames = 8, size = Math.min(...api.sizes.filter((s) => s >= 256), 512), delay = 100, onFrame} = {}) {
      checkLatents(a, 1, style);
      checkLatents(b, 1, style);
      if (!(Number.isInteger(frames) && frames >= GIF_LIMITS.frames[0] && frames <= GIF_LIMITS.frames[1])) {
        throw new Error(`frames must be an integer from ${GIF_LIMITS.frames[0]} to ${GIF_LIMITS.frames[1]}, got ${frames}`);
      }
      const gif = GIFEncoder();
      for (let f = 0; f < frames; f++) {
        const t = f / (frames - 1);
        const image = await api.render(a.map((v, i) => v + t * (b[i] - v)), 1, size);
        const {data} = toImageData(image, size);
        const palette = quantize(data, 256);
        gif.writeFrame(applyPalette(data, palette), size, size, {palette, delay, repeat: 0});
        onFrame?.(f + 1, frames);
      }
      gif.finish();
      return gif.bytes();
    },

    toImageData,
  };
  return api;
}
