// ONNX Runtime sessions of the site's exported models: which backend runs, which file of each model (fp16,
// int8, fp32), its bytes from Cache Storage (sha256-checked), one session per model, one inference at a time.
// The web twin of celeblook/runtime/ort.py's session handling.
//
// Backend: WebGPU only on a hardware adapter (a software fallback such as SwiftShader is slower than wasm:
// 183 s against 3.9 s for a morph GIF here), with the fp16 files when it has 'shader-f16', else fp32; wasm
// (fp32) otherwise. Every WebGPU session lists 'wasm' after 'webgpu', so an op WebGPU lacks runs on the CPU.

import {fetchVerified} from './cache.js';

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

/**
 * The site's sessions. ``base``: the site's URL; ``backend``: 'auto' | 'wasm' | 'webgpu'; ``onDownload({file,
 * loaded, total, cached})`` reports model downloads. Returns {site, manifest, constants, chosen, precision, threads,
 * modelsUrl, entryFor, has, bytesOf, fetchFile, run}.
 */
export async function openSessions({base, backend = 'auto', threads, onDownload = () => {}} = {}) {
  const chosen = await chooseBackend(backend);
  const [site, manifest] = await Promise.all([new URL('site.json', base), new URL('models/manifest.json', base)]
    .map(async (url) => (await fetch(url)).json()));
  const modelsUrl = new URL(site.models_url ?? 'models/', base).href;
  const ort = await import(new URL(chosen.backend === 'webgpu' ? 'vendor/ort/ort.webgpu.min.mjs' : 'vendor/ort/ort.wasm.min.mjs', base).href);
  ort.env.wasm.wasmPaths = new URL('vendor/ort/', base).href;
  ort.env.logLevel = 'error'; // not the per-session 'nodes not assigned to the preferred EP' notes
  // wasm threads need cross-origin isolation (COOP/COEP headers); on 2 cores one thread was as fast
  ort.env.wasm.numThreads = threads ?? (globalThis.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1);
  if (chosen.gpu) ort.env.webgpu.adapter = chosen.gpu; // the adapter checked above, not another one
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

  /** A file listed with its sha256 (a model, the prompt bank, the alignment nets): cached, checked, with progress. */
  const fetchFile = (entry, url) => fetchVerified(url, entry,
    (loaded, total, cached) => onDownload({file: entry.file, loaded, total, cached}));

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
        const bytes = await fetchFile(entry, new URL(entry.file, modelsUrl).href);
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
  /** Run ``model`` on feeds {input name: [data, dims]} (int64 inputs from plain numbers); its first output's data. */
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

  return {
    site, manifest, constants: manifest.constants, chosen, precision, modelsUrl, threads: ort.env.wasm.numThreads,
    entryFor, fetchFile, run,
    has: (model) => entryFor(model) !== null,
    /** Bytes of the files that run ``models`` (those exported). */
    bytesOf: (models) => models.reduce((n, m) => n + (entryFor(m)?.bytes ?? 0), 0),
  };
}
