// The JavaScript API (window.celeblook): the page and the tests use it alike, and so can anyone embedding the page.
//
// Every model runs in a Web Worker (src/worker.js); this module forwards calls to it and resolves their promises.
// Latents are W+ as Float32Arrays (23*512 per face); images are Float32Arrays (N,3,S,S) in [-1,1] (toImageData
// turns one into an ImageData); photos are ImageData.
//
//   await createCelebLook({backend: 'auto'|'wasm'|'webgpu', threads, onProgress})
//   .backend 'webgpu'|'wasm', .precision 'fp16'|'fp32', .reason (why that backend), .adapter, .sizes, .info
//   .pipeline: the verbs of celeblook.pipeline.Pipeline (src/pipeline.js), same arguments, defaults and results:
//     randomFaces(seed, {count, psi, size}), invert(photo, {size}), textToFace(prompt, {seed, psi, size}),
//     faceOf(start, {size}), edit(start, target, {source, strengths, size}),
//     sweep(start, target, {source, cMax, nFrames, size, onFrame}), morph(a, b, {nFrames, size, mode, crossover, onFrame})
//   render(wplus, n, size) -> Float32Array (N,3,S,S)          randomLatent(seed, psi) -> {z, w, wplus}
//   align(imageData) -> {faces: [{box, eye_left, eye_right, mouth_left, mouth_right, quad, score, landmarks}], chosen}
//   alignedCrop(imageData, faceIndex, size) -> ImageData      invert(alignedImageData, {size}) -> {wplus, image, similarity}
//   textToFace(prompt, {seed, psi, size}) -> {wplus, image, textScore, embedding, truncated, fromBank}
//   edit(wplus, target, {source, strength: 'learned' | C, size}) -> {wplus, C, image, similarity, textScore, delta, ...}
//   sweepGif(wplus, target, {source, frames, cMax, size, onFrame}) -> {gif, C, similarity, textScore}
//   morphGif(a, b, {frames, size, mode: 'interpolate'|'style_mix', crossover, onFrame}) -> Uint8Array (GIF89a)
//   sweepClip(wplus, target, {format: 'gif'|'mp4'|'webm', source, frames, cMax, size, onFrame}) -> {bytes, mime, format,
//     codec, notices}; morphClip(a, b, {format, frames, size, mode, crossover, onFrame}) likewise. 'mp4' is H.264 where
//     the browser encodes it, else WebM (mime says which, a notice why): src/clips.js
//   pasteBack(photo, quad, face (ImageData | image), size) -> ImageData    cancel()
//   identity(a, b) -> {distance, sameperson} | {distance: null, reason}: two ImageData faces (face-api's dlib port)
//   cached() -> [{file, sha256, bytes}]     clearCache()      toImageData(image, size, index)
//   share({bytes, mime, name}) -> 'shared' | 'cancelled' | 'downloaded' (Web Share with files, else a download)
// Also: preprocess, encodeImage, embedFace, map, mapping, tokenize, encodeText, embedPrompts, inBank, direction, strength.

import {cachedFiles, clearCache} from './cache.js';
import {toImageData} from './image.js';
import {share} from './share.js';

const FORWARDED = ['render', 'mapping', 'randomLatent', 'preprocess', 'encodeImage', 'embedFace', 'map', 'invert', 'tokenize',
  'encodeText', 'inBank', 'embedPrompts', 'direction', 'strength', 'edit', 'textToFace', 'align', 'alignedCrop',
  'cropQuad', 'pasteBack', 'identity', 'resources'];
const VERBS = ['randomFaces', 'invert', 'textToFace', 'faceOf', 'edit'];
const FRAMED_VERBS = ['sweep', 'morph'];

/**
 * Start the worker and its engine. onProgress receives {type: 'download', file, loaded, total, cached} while
 * model files load and {type: 'progress', method, done, total, label} for each frame of long work.
 */
export function createCelebLook({base = new URL('../', import.meta.url).href, backend = 'auto', threads,
  onProgress = () => {}} = {}) {
  const worker = new Worker(new URL('./worker.js', import.meta.url), {type: 'module'});
  const pending = new Map();
  let nextId = 1;

  const ready = new Promise((resolve, reject) => {
    worker.onerror = (event) => reject(new Error(`the worker failed to start: ${event.message ?? 'script error'}`));
    worker.onmessage = ({data}) => {
      if (data.type === 'ready') resolve(data.info);
      else if (data.type === 'failed') reject(new Error(data.message));
      else if (data.type === 'download') onProgress(data);
      else if (data.type === 'progress') {
        const job = pending.get(data.id);
        if (job) {
          job.onFrame?.(data.done, data.total, data.label);
          onProgress({...data, method: job.method});
        }
      } else if (data.type === 'result' || data.type === 'error') {
        const job = pending.get(data.id);
        pending.delete(data.id);
        if (!job) return;
        if (data.type === 'result') job.resolve(data.value);
        else job.reject(Object.assign(new Error(data.message), {cancelled: data.cancelled}));
      }
    };
  });
  worker.postMessage({type: 'init', base, backend, threads});

  function call(method, args, onFrame) {
    return ready.then(() => new Promise((resolve, reject) => {
      const id = nextId++;
      pending.set(id, {resolve, reject, onFrame, method});
      worker.postMessage({type: 'call', id, method, args});
    }));
  }

  /** Calls with an options object whose onFrame callback stays here (functions cannot cross to the worker). */
  function framed(method) {
    return (...args) => {
      const {onFrame, ...options} = args[2] ?? {};
      return call(method, [args[0], args[1], options], onFrame);
    };
  }

  return ready.then((info) => {
    const api = {
      info,
      backend: info.backend,
      precision: info.precision,
      reason: info.reason,
      adapter: info.adapter,
      sizes: info.sizes,
      has: (model) => model in info.models,
      fileFor: (model) => info.models[model]?.file ?? null,
      morphGif: framed('morphGif'),
      sweepGif: framed('sweepGif'),
      morphClip: framed('morphClip'),
      sweepClip: framed('sweepClip'),
      pipeline: Object.fromEntries([...VERBS.map((verb) => [verb, (...args) => call(`pipeline.${verb}`, args)]),
        ...FRAMED_VERBS.map((verb) => [verb, framed(`pipeline.${verb}`)])]),
      /** Stop the frame-by-frame work in progress (sweeps and morphs); their promises reject with .cancelled. */
      cancel: () => worker.postMessage({type: 'cancel'}),
      cached: cachedFiles,
      clearCache,
      toImageData,
      share,
      terminate: () => worker.terminate(),
    };
    for (const method of FORWARDED) api[method] = (...args) => call(method, args);
    return api;
  });
}
