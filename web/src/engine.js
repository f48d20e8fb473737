// CelebrityLook's models in the browser: every feature over onnxruntime-web sessions of the exported ONNX files.
//
// createEngine() runs inside the page's Web Worker (src/worker.js), so inference never blocks the page; the page
// and the tests talk to it through src/celeblook.js. Latents are W+ as flat Float32Arrays (N*23*512); images are
// Float32Arrays (N,3,S,S) in [-1,1], as the ONNX graphs produce them.
//
// Backend: WebGPU only on a hardware adapter (a software fallback such as SwiftShader is slower than wasm:
// 183 s against 3.9 s for a morph GIF here), with the fp16 files when it has 'shader-f16', else fp32; wasm
// (fp32) otherwise. Every WebGPU session lists 'wasm' after 'webgpu', so an op WebGPU lacks runs on the CPU.
// Model files come through src/cache.js (Cache Storage, sha256-checked). Curated prompts' text embeddings come
// precomputed with the site (models/prompts_fp16.bin), so only free text needs the text encoder.

import {GIFEncoder, applyPalette, quantize} from '../vendor/gifenc/gifenc.esm.js';
import {createDetector, pasteBack, renderCrop} from './align.js';
import {cachedFiles, clearCache, fetchVerified} from './cache.js';
import {photoToClip, tensorToClip} from './preprocess.js';
import {seededNormal} from './prng.js';
import {toImageData} from './image.js';
import {cleanText, loadTokenizer} from './tokenizer.js';

// The app's limits and defaults (frames, |C|, C_max, the text variation, the default source, photo sizes) come
// from site.json's "limits", written by the build from the Python modules that define them.
const SLOTS = 23;
const CROP_SIZES = [64, 1024]; // alignedCrop's output side
const CROSSOVER = 8; // style mixing: slots >= 8 move (pipeline.morph's default)
const REFERENCE_SIZE = 256; // the original face is scored at 256 px (pipeline.edit)

export class Cancelled extends Error {
  constructor() { super('cancelled'); this.name = 'Cancelled'; }
}

/** A software WebGPU adapter (SwiftShader, llvmpipe, ...) as the adapter describes itself. */
export function isSoftwareAdapter(adapter) {
  const info = adapter.info ?? {};
  const text = `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.device ?? ''} ${info.description ?? ''}`;
  return Boolean(info.isFallbackAdapter ?? adapter.isFallbackAdapter) || /swiftshader|llvmpipe|lavapipe|software/i.test(text);
}

/**
 * Which backend runs: {backend, f16, adapter (a description), gpu (the GPUAdapter), reason}.
 * 'auto' takes WebGPU only on a hardware adapter; 'webgpu' insists (any adapter, for testing); 'wasm' never asks.
 */
export async function chooseBackend(requested = 'auto') {
  if (!['auto', 'wasm', 'webgpu'].includes(requested)) throw new Error(`backend must be auto, wasm or webgpu, got ${requested}`);
  if (requested === 'wasm') return {backend: 'wasm', f16: false, adapter: null, gpu: null, reason: 'wasm was asked for'};
  const gpu = globalThis.navigator?.gpu;
  const adapter = gpu ? await gpu.requestAdapter({powerPreference: 'high-performance'}).catch(() => null) : null;
  if (!adapter) {
    if (requested === 'webgpu') throw new Error('WebGPU was asked for but the browser gives no WebGPU adapter');
    return {backend: 'wasm', f16: false, adapter: null, gpu: null, reason: 'this browser offers no WebGPU adapter'};
  }
  const info = adapter.info ?? {};
  const software = isSoftwareAdapter(adapter);
  const described = {vendor: info.vendor ?? '', architecture: info.architecture ?? '', description: info.description ?? '',
    fallback: software};
  const name = [described.vendor, described.architecture].filter(Boolean).join(' ') || 'unnamed';
  if (software && requested !== 'webgpu') {
    return {backend: 'wasm', f16: false, adapter: described, gpu: null,
      reason: `the WebGPU adapter (${name}) is a software fallback, slower than wasm`};
  }
  const f16 = adapter.features.has('shader-f16');
  return {backend: 'webgpu', f16, adapter: described, gpu: adapter,
    reason: `${software ? 'WebGPU was asked for; software' : 'hardware'} adapter ${name}, ${f16 ? 'with' : 'without'} shader-f16`};
}

function checkLatents(wplus, n, style) {
  if (!(wplus instanceof Float32Array) || wplus.length !== n * SLOTS * style) {
    throw new Error(`a latent batch must be a Float32Array of ${n}x${SLOTS}x${style} values, got ${wplus?.length}`);
  }
  if (!wplus.every(Number.isFinite)) throw new Error('the latent contains NaN or infinite values');
}

function checkFrames(frames, [lo, hi]) {
  if (!(Number.isInteger(frames) && frames >= lo && frames <= hi)) throw new Error(`frames must be an integer from ${lo} to ${hi}, got ${frames}`);
}

function checkStrength(c, most, name = 'strength C') {
  if (!(typeof c === 'number' && Number.isFinite(c) && Math.abs(c) <= most)) {
    throw new Error(`${name} must be a number in [-${most}, ${most}], got ${c}`);
  }
  return c;
}

function checkPrompt(text, name = 'prompt') {
  if (typeof text !== 'string' || !text.trim()) throw new Error(`the ${name} is empty; type a description such as 'a smiling woman with red hair'`);
  return text.trim();
}

function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
}

/** IEEE half floats (Uint16Array) -> Float32Array. */
function halfToFloat(half) {
  const out = new Float32Array(half.length);
  for (let i = 0; i < half.length; i++) {
    const h = half[i];
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    const value = exponent === 0 ? fraction * 2 ** -24 : exponent === 31 ? (fraction ? NaN : Infinity)
      : (1 + fraction / 1024) * 2 ** (exponent - 15);
    out[i] = h & 0x8000 ? -value : value;
  }
  return out;
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

/** A job context for long calls: frame progress, and a cancellation point between frames. */
const NO_JOB = {step: async () => {}};

/**
 * The engine. ``base``: the site's URL; ``backend``: 'auto' | 'wasm' | 'webgpu'; ``onDownload({file, loaded, total,
 * cached})`` reports model downloads.
 */
export async function createEngine({base, backend = 'auto', threads, onDownload = () => {}} = {}) {
  const chosen = await chooseBackend(backend);
  const site = await (await fetch(new URL('site.json', base))).json();
  const manifest = await (await fetch(new URL('models/manifest.json', base))).json();
  const modelsUrl = new URL(site.models_url ?? 'models/', base).href;
  const ort = await import(new URL(chosen.backend === 'webgpu' ? 'vendor/ort/ort.webgpu.min.mjs' : 'vendor/ort/ort.wasm.min.mjs', base).href);
  ort.env.wasm.wasmPaths = new URL('vendor/ort/', base).href;
  ort.env.logLevel = 'error'; // not the per-session 'nodes not assigned to the preferred EP' notes
  // wasm threads need cross-origin isolation (COOP/COEP headers); on 2 cores one thread was as fast
  ort.env.wasm.numThreads = threads ?? (globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1);
  if (chosen.gpu) ort.env.webgpu.adapter = chosen.gpu; // the adapter checked above, not another one
  const constants = manifest.constants;
  const style = constants.w_avg.length;
  const wAvg = Float32Array.from(constants.w_avg);
  const precision = chosen.backend === 'webgpu' && chosen.f16 ? 'fp16' : 'fp32';
  const providers = chosen.backend === 'webgpu' ? ['webgpu', 'wasm'] : ['wasm'];
  const clip = constants.clip;
  const limits = site.limits;
  const cMax = constants.c_max ?? limits.c_max;
  const DEFAULT_SOURCE = limits.default_source;
  // the graph photos and generated faces are embedded with: the Pipeline's E_I (export.onnx.photo_encoder)
  const photoEncoder = constants.photo_encoder ?? (constants.mapper_encoder === 'teacher' ? 'image_encoder_teacher' : 'image_encoder');

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

  const load = (entry, url) => fetchVerified(url, entry, (loaded, total, cached) => onDownload({file: entry.file, loaded, total, cached}));

  const sessions = new Map();
  function session(model) {
    if (!sessions.has(model)) {
      const entry = entryFor(model);
      if (!entry) {
        const how = ['mapper', 'strength'].includes(model) ? `train it (python -m celeblook train ${model}), then rebuild the site`
          : 'rebuild the site with python -m celeblook web build';
        return Promise.reject(new Error(`this site has no ${model}.onnx: ${how}`));
      }
      const made = (async () => {
        const bytes = await load(entry, new URL(entry.file, modelsUrl).href);
        const s = await ort.InferenceSession.create(bytes, {executionProviders: providers, graphOptimizationLevel: 'all'});
        return {session: s, entry};
      })();
      sessions.set(model, made);
      made.catch(() => sessions.delete(model)); // a failed download can be retried
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

  let tokenizer = null;
  const getTokenizer = () => {
    tokenizer ??= loadTokenizer(new URL('vendor/bpe_simple_vocab_16e6.txt.gz', base).href, new URL('vendor/html5_entities.json', base).href);
    tokenizer.catch(() => { tokenizer = null; });
    return tokenizer;
  };

  // the curated prompts' embeddings (fp16, made at build time by the fp32 text encoder): no text encoder needed
  let bank = null;
  const getBank = () => {
    bank ??= (async () => {
      if (!site.prompts) return new Map();
      const bytes = await load(site.prompts, new URL(`models/${site.prompts.file}`, base).href);
      const vectors = halfToFloat(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
      const dim = site.prompts.dim;
      return new Map(site.prompts.prompts.map((p, i) => [cleanText(p), vectors.subarray(i * dim, (i + 1) * dim)]));
    })();
    bank.catch(() => { bank = null; });
    return bank;
  };

  const detector = createDetector(base);
  const alignEntries = site.align?.files ?? [];
  const getDetector = async () => {
    if (!alignEntries.length) throw new Error('this site has no face-alignment model: rebuild it with python -m celeblook web build');
    await detector.load(alignEntries, (entry) => load(entry, new URL(`vendor/face-api/model/${entry.file}`, base).href));
    return detector;
  };

  const sizes = [...new Set(manifest.files.filter((f) => f.model.startsWith('synthesis_')).map((f) => Number(f.model.split('_')[1])))]
    .sort((a, b) => a - b);
  const defaultSize = Math.min(...sizes.filter((s) => s >= 256), Math.max(...sizes));
  const checkSize = (size) => {
    if (!sizes.includes(size)) throw new Error(`size must be one of ${sizes.join(', ')}, got ${size}`);
    return size;
  };
  const has = (model) => entryFor(model) !== null;
  const embedDim = entryFor('mapper')?.inputs[0].shape[1] ?? 768;
  const bytesOf = (models) => models.reduce((n, m) => n + (entryFor(m)?.bytes ?? 0), 0);

  /** GIF89a bytes from rendered frames (W+ each), frames rendered one by one with progress. */
  async function renderGif(latents, size, {delay = 100, job = NO_JOB, label = 'frame', scores} = {}) {
    const gif = GIFEncoder();
    for (let f = 0; f < latents.length; f++) {
      await job.step(f, latents.length, label);
      const image = await engine.render(latents[f], 1, size);
      const {data} = toImageData(image, size);
      const palette = quantize(data, 256);
      gif.writeFrame(applyPalette(data, palette), size, size, {palette, delay, repeat: 0});
      if (scores) await scores(image, f);
    }
    await job.step(latents.length, latents.length, label);
    gif.finish();
    return gif.bytes();
  }

  const engine = {
    /** Everything the page shows before any model loads: backend, sizes, download sizes per feature. */
    info() {
      const synthesis = `synthesis_${defaultSize}`;
      const alignBytes = alignEntries.reduce((n, e) => n + e.bytes, 0);
      return {
        backend: chosen.backend, precision, reason: chosen.reason, adapter: chosen.adapter, sizes, defaultSize,
        threads: ort.env.wasm.numThreads, isolated: Boolean(globalThis.crossOriginIsolated),
        constants: {preset: constants.preset, trained: constants.trained, c_max: cMax, photo_encoder: photoEncoder},
        models: Object.fromEntries(manifest.files.map((f) => [f.model, entryFor(f.model)]).filter(([, e]) => e)
          .map(([m, e]) => [m, {file: e.file, bytes: e.bytes}])),
        prompts: site.prompts ? {prompts: site.prompts.prompts, examples: site.prompts.examples, bytes: site.prompts.bytes} : null,
        bytes: { // what each feature downloads first (at the default size), before anything is cached
          random: bytesOf(['mapping', synthesis]),
          photo: bytesOf([photoEncoder, 'mapper', synthesis]) + alignBytes,
          edit: bytesOf(['mapper', 'strength', photoEncoder, synthesis]) + (site.prompts?.bytes ?? 0),
          textEncoder: bytesOf(['text_encoder']),
          align: alignBytes,
        },
        models_url: modelsUrl,
        limits,
      };
    },

    has,

    /** W+ (N*23*512) -> images (N,3,size,size) in [-1,1]. */
    async render(wplus, n = 1, size = defaultSize) {
      checkSize(size);
      checkLatents(wplus, n, style);
      return run(`synthesis_${size}`, {wplus: [wplus, [n, SLOTS, style]]});
    },

    /** z (N*512) -> w (N*512). */
    mapping: (z, n = 1) => run('mapping', {z: [z, [n, style]]}),

    /** A seeded face: z ~ N(0,I) from the seed, w = mapping(z), truncated to w_avg + psi (w - w_avg), on every slot. */
    async randomLatent(seed, psi = 0.7) {
      if (!(psi >= 0 && psi <= 1)) throw new Error(`psi must be between 0 and 1, got ${psi}`);
      const z = seededNormal(seed, style);
      const w = await engine.mapping(z, 1);
      const wplus = new Float32Array(SLOTS * style);
      for (let s = 0; s < SLOTS; s++) {
        for (let i = 0; i < style; i++) wplus[s * style + i] = wAvg[i] + psi * (w[i] - wAvg[i]);
      }
      return {z, w, wplus};
    },

    /** ImageData -> the CLIP input (3*224*224), exactly celeblook.preprocess.photo_to_clip's steps. */
    preprocess: (image) => photoToClip(image, clip.mean, clip.std, clip.size ?? 224),

    /** ImageData (an aligned face) -> unit image embedding (768) from the encoder the mapper reads. */
    async encodeImage(image) {
      const size = clip.size ?? 224;
      return run(photoEncoder, {pixels: [engine.preprocess(image), [1, 3, size, size]]});
    },

    /** Generated image(s) (N,3,S,S) -> the embedding of image ``index`` (tensor_to_clip + E_I): for scores. */
    async embedFace(image, side, index = 0) {
      const size = clip.size ?? 224;
      return run(photoEncoder, {pixels: [tensorToClip(image, side, clip.mean, clip.std, size, index), [1, 3, size, size]]});
    },

    /** CLIP embeddings (N*768) -> W+ (N*23*512). */
    map: (embedding, n = 1) => run('mapper', {embedding: [embedding, [n, embedding.length / n]]}),

    /** An aligned face (ImageData) -> {wplus, image at ``size``, similarity (cosine of E_I embeddings, as the app)}. */
    async invert(image, {size = defaultSize} = {}) {
      checkSize(size);
      const embedding = await engine.encodeImage(image);
      const wplus = await engine.map(embedding, 1);
      const rendered = await engine.render(wplus, 1, size);
      return {wplus, image: rendered, similarity: cosine(await engine.embedFace(rendered, size), embedding)};
    },

    async tokenize(text) { return (await getTokenizer()).tokenize(text); },

    /** Prompts -> unit text embeddings (N*768) from the text encoder, which prompts were cut to 77 tokens, columns run. */
    async encodeText(texts) {
      texts = Array.isArray(texts) ? texts : [texts];
      if (texts.length === 0) throw new Error('no prompts given');
      texts.forEach((t) => checkPrompt(t));
      const tok = await getTokenizer();
      const rows = texts.map((t) => tok.tokenize(t));
      if (rows.some((r) => r.count <= 2)) throw new Error('a prompt has no words the text encoder can read');
      const ids = new Int32Array(rows.length * 77);
      rows.forEach((r, i) => ids.set(r.ids, i * 77));
      // a named token axis in the manifest (not a fixed 77) means the graph takes any length: cut after the last EOT
      const anyLength = typeof entryFor('text_encoder')?.inputs[0].shape[1] === 'string';
      const tokens = anyLength ? cutAfterLastEot(ids, rows.length, 77) : [ids, [rows.length, 77]];
      const embedding = await run('text_encoder', {tokens});
      return {embedding, truncated: rows.map((r) => r.truncated), columns: tokens[1][1]}; // columns: token positions run
    },

    /** Whether a prompt's embedding ships with the site (no text encoder needed for it). */
    async inBank(text) { return (await getBank()).has(cleanText(text)); },

    /** Prompts -> embeddings (N*768): the curated bank's where it has them, the text encoder for the rest. */
    async embedPrompts(texts) {
      const known = await getBank();
      const keys = texts.map((t) => cleanText(checkPrompt(t)));
      const free = texts.filter((_, i) => !known.has(keys[i]));
      const encoded = free.length ? await engine.encodeText(free) : {embedding: new Float32Array(0), truncated: []};
      const dim = embedDim;
      const embedding = new Float32Array(texts.length * dim);
      const truncated = [];
      let next = 0;
      texts.forEach((_, i) => {
        if (known.has(keys[i])) {
          embedding.set(known.get(keys[i]), i * dim);
          truncated.push(false);
        } else {
          embedding.set(encoded.embedding.subarray(next * dim, (next + 1) * dim), i * dim);
          truncated.push(encoded.truncated[next]);
          next += 1;
        }
      });
      return {embedding, truncated, fromBank: keys.map((k) => known.has(k))};
    },

    /** delta = f(e_T(target)) - f(e_T(source)) (23*512), exactly zero when both embeddings are equal. */
    async direction(target, source = DEFAULT_SOURCE) {
      const {embedding, truncated, fromBank} = await engine.embedPrompts([checkPrompt(target, 'target prompt'), checkPrompt(source, 'source prompt')]);
      const dim = embedding.length / 2;
      const targetEmbedding = embedding.slice(0, dim);
      const same = targetEmbedding.every((v, i) => v === embedding[dim + i]);
      const mapped = await engine.map(embedding, 2);
      const half = mapped.length / 2;
      const delta = same ? new Float32Array(half) : mapped.slice(0, half).map((v, i) => v - mapped[half + i]);
      return {delta, targetEmbedding, truncated, fromBank};
    },

    /** The learned C for editing ``wplus`` along ``delta`` towards the target embedding. */
    async strength(wplus, targetEmbedding, delta) {
      const c = await run('strength', {wplus: [wplus, [1, SLOTS, style]], embedding: [targetEmbedding, [1, targetEmbedding.length]],
        delta: [delta, [1, SLOTS, style]]});
      return c[0];
    },

    /**
     * W+ + C * delta with C a number or 'learned' -> {wplus, C, image, similarity (to the original at 256 px),
     * textScore (to the target), delta, truncated}: pipeline.edit's result.
     */
    async edit(wplus, target, {source = DEFAULT_SOURCE, strength = 'learned', size = defaultSize} = {}) {
      checkLatents(wplus, 1, style);
      checkSize(size);
      if (strength !== 'learned') checkStrength(strength, limits.max_strength);
      const {delta, targetEmbedding, truncated, fromBank} = await engine.direction(target, source);
      let c = strength;
      if (strength === 'learned') {
        if (!has('strength')) throw new Error('this site has no strength.onnx: train the strength head, re-export, or set C by hand');
        c = await engine.strength(wplus, targetEmbedding, delta);
      }
      const reference = await engine.embedFace(await engine.render(wplus, 1, REFERENCE_SIZE), REFERENCE_SIZE);
      const edited = wplus.map((v, i) => v + c * delta[i]);
      const image = await engine.render(edited, 1, size);
      const embedding = await engine.embedFace(image, size);
      return {wplus: edited, C: c, image, similarity: cosine(embedding, reference), textScore: cosine(embedding, targetEmbedding),
        delta, truncated, fromBank};
    },

    /** Text to face (the fast path): W+ = truncate(f(e_T + seeded variation), psi) -> {wplus, image, textScore, embedding}. */
    async textToFace(prompt, {seed = 0, psi = 0.7, size = defaultSize} = {}) {
      checkSize(size);
      if (!(psi >= 0 && psi <= 1)) throw new Error(`psi must be between 0 and 1, got ${psi}`);
      const {embedding: text, truncated, fromBank} = await engine.embedPrompts([checkPrompt(prompt)]);
      const noise = seededNormal(seed, text.length);
      const norm = Math.hypot(...noise);
      const spread = limits.text_variation * (entryFor('mapper')?.meta?.e_scale ?? 1);
      const varied = text.map((v, i) => v + spread * noise[i] / norm);
      const mapped = await engine.map(varied, 1);
      const wplus = mapped.map((v, i) => wAvg[i % style] + psi * (v - wAvg[i % style]));
      const image = await engine.render(wplus, 1, size);
      return {wplus, image, textScore: cosine(await engine.embedFace(image, size), text), embedding: varied, truncated, fromBank};
    },

    /**
     * Frames between two faces as a looping GIF89a (Uint8Array). mode 'interpolate': (1-t) a + t b on every slot;
     * 'style_mix': slots >= crossover move from a to b, the rest stay a's (pipeline.morph).
     */
    async morphGif(a, b, {frames = 8, size = defaultSize, mode = 'interpolate', crossover = CROSSOVER, delay = 100, job} = {}) {
      checkLatents(a, 1, style);
      checkLatents(b, 1, style);
      checkFrames(frames, limits.frames);
      checkSize(size);
      if (!['interpolate', 'style_mix'].includes(mode)) throw new Error(`mode must be 'interpolate' or 'style_mix', got ${mode}`);
      if (!(Number.isInteger(crossover) && crossover >= 0 && crossover < SLOTS)) throw new Error(`crossover must be an integer 0..${SLOTS - 1}, got ${crossover}`);
      const first = mode === 'style_mix' ? crossover : 0;
      const latents = Array.from({length: frames}, (_, f) => {
        const t = f / (frames - 1);
        return a.map((v, i) => (Math.floor(i / style) >= first ? v + t * (b[i] - v) : v));
      });
      return renderGif(latents, size, {delay, job, label: 'morph frame'});
    },

    /** C from 0 to cMax over ``frames`` as a GIF, with each frame's C, similarity to the first and text score. */
    async sweepGif(wplus, target, {source = DEFAULT_SOURCE, frames = 8, cMax: top = cMax, size = defaultSize, delay = 150, job} = {}) {
      checkLatents(wplus, 1, style);
      checkFrames(frames, limits.frames);
      checkSize(size);
      checkStrength(top, limits.max_strength, 'cMax');
      const {delta, targetEmbedding} = await engine.direction(target, source);
      const C = Array.from({length: frames}, (_, f) => (top * f) / (frames - 1));
      const similarity = [];
      const textScore = [];
      let reference = null;
      const latents = C.map((c) => wplus.map((v, i) => v + c * delta[i]));
      const gif = await renderGif(latents, size, {delay, job, label: 'sweep frame', scores: async (image) => {
        const embedding = await engine.embedFace(image, size);
        reference ??= embedding;
        similarity.push(cosine(embedding, reference));
        textScore.push(cosine(embedding, targetEmbedding));
      }});
      return {gif, C, similarity, textScore};
    },

    /** Faces in a photo: {faces: [{box, eye_left, eye_right, mouth_left, mouth_right, quad, score, landmarks}], chosen}. */
    async align(image) {
      const faces = await (await getDetector()).detect(image);
      return {faces, chosen: faces.length ? 0 : null}; // the largest face, as the Python side chooses
    },

    /** The FFHQ crop (ImageData size x size) of face ``faceIndex`` (default: the largest). */
    async alignedCrop(image, faceIndex = 0, size = 512) {
      if (!(Number.isInteger(size) && size >= CROP_SIZES[0] && size <= CROP_SIZES[1])) {
        throw new Error(`crop size must be an integer ${CROP_SIZES[0]}..${CROP_SIZES[1]}, got ${size}`);
      }
      const {faces} = await engine.align(image);
      if (!faces.length) throw new Error('no face found in this photo: try a sharper, frontal photo, or upload an aligned face');
      if (!(Number.isInteger(faceIndex) && faceIndex >= 0 && faceIndex < faces.length)) {
        throw new Error(`face index must be 0..${faces.length - 1} (${faces.length} face(s) found), got ${faceIndex}`);
      }
      return renderCrop(image, faces[faceIndex].quad, size);
    },

    /** The crop of ``quad`` (as align returns it), without detecting again. */
    cropQuad: (image, quad, size = 512) => renderCrop(image, quad, size),

    /** A result face (ImageData, or an image (1,3,S,S) in [-1,1] with its size) blended back into the photo. */
    async pasteBack(photo, quad, face, size) {
      if (!Array.isArray(quad) || quad.length !== 4) throw new Error('pasteBack needs the face quad from align(): 4 corners');
      return pasteBack(photo, quad, face instanceof ImageData ? face : toImageData(face, size));
    },

    /** The model files kept by this browser (Cache Storage): [{file, sha256, bytes}]. */
    cached: cachedFiles,
    clearCache,
  };
  return engine;
}
