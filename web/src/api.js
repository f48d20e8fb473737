// The page's JavaScript API besides the pipeline's verbs (window.celeblook, through src/celeblook.js): what the
// page shows before any model loads (info), the single steps (render, map, encodeText, align, ...) and the flat
// calls of the first API (invert, edit, textToFace with flat results, sweepGif, morphGif, sweepClip, morphClip). Each is a thin
// adapter over the engine, the processors and the pipeline: no maths of its own.

import {cachedFiles, clearCache} from './cache.js';
import {toImageData} from './image.js';
import {checkRange} from './limits.js';
import {encodeTexts, checkPrompt, embedPrompts} from './text.js';

/** The API of one site: ``sessions``, ``processors``, ``engine``, ``pipeline`` as src/worker.js makes them. */
export function createApi(sessions, processors, engine, pipeline) {
  const {site, manifest, constants, chosen, entryFor, bytesOf} = sessions;
  const {limits} = site;
  const defaultSize = Math.min(...pipeline.sizes); // the page's first choice: the quickest offered size
  const prompts = (texts) => texts.map((t) => checkPrompt(t, 'prompt', limits.prompt_max_chars)[0]);
  const cropSize = {name: 'crop size', low: limits.photo_min_side, high: limits.photo_max_side, integer: true};

  return {
    /** Everything the page shows before any model loads: backend, sizes, download sizes per feature, limits. */
    info() {
      const synthesis = `synthesis_${defaultSize}`;
      const filesBytes = (files) => (files ?? []).reduce((n, e) => n + e.bytes, 0);
      const alignBytes = filesBytes(site.align?.files);
      return {
        backend: chosen.backend, precision: sessions.precision, reason: chosen.reason, adapter: chosen.adapter,
        sizes: pipeline.sizes, defaultSize, threads: sessions.threads, isolated: Boolean(globalThis.crossOriginIsolated),
        constants: {preset: constants.preset, trained: constants.trained, c_max: limits.c_max, photo_encoder: engine.photoGraph,
          refiner_iterations: engine.refinerIterations},
        models: Object.fromEntries(manifest.files.map((f) => [f.model, entryFor(f.model)]).filter(([, e]) => e)
          .map(([m, e]) => [m, {file: e.file, bytes: e.bytes}])),
        prompts: site.prompts ? {prompts: site.prompts.prompts, examples: site.prompts.examples, bytes: site.prompts.bytes} : null,
        bytes: { // what each feature downloads first (at the default size), before anything is cached
          random: bytesOf(['mapping', synthesis]),
          // an inversion runs the refiner's own count of iterations by default: R and the exit it renders at
          photo: bytesOf([...new Set([engine.photoGraph, 'mapper', synthesis,
            ...(engine.refinerIterations ? ['refiner', `synthesis_${engine.refinerSize}`] : [])])]) + alignBytes,
          edit: bytesOf(['mapper', 'strength', engine.photoGraph, synthesis]) + (site.prompts?.bytes ?? 0),
          textEncoder: bytesOf(['text_encoder']),
          align: alignBytes,
          identity: filesBytes(site.identity?.files), // fetched the first time an identity distance is measured
        },
        models_url: sessions.modelsUrl,
        limits,
      };
    },

    /** W+ (N*slots*style) -> images (N,3,size,size) in [-1,1]. */
    render: (wplus, n = 1, size = defaultSize) => engine.synthesize(pipeline.checkLatents(wplus, n), n, pipeline._size(size)),
    /** z (N*style) -> w (N*style). */
    mapping: (z, n = 1) => engine.mapping(z, n),
    /** A seeded face: {z, w, wplus} (pipeline.randomFaces' latent). */
    randomLatent: (seed, psi = pipeline.defaults.randomFaces.psi) => pipeline.seededWplus(checkRange(limits.ranges.seed, seed),
      checkRange(limits.ranges.psi, psi)),
    /** ImageData -> the CLIP input (3*S*S), exactly celeblook.preprocess.photo_to_clip's steps. */
    preprocess: (image) => processors.image.photo(image)[0],
    /** An aligned face (ImageData) -> its unit image embedding. */
    encodeImage: (image) => engine.embedPhotos(image),
    /** Generated image(s) (N,3,S,S) -> the embedding of image ``index``. */
    embedFace: (image, side, index = 0) => engine.embedPixels(image, side, index),
    /** CLIP embeddings (N*dim) -> W+ (N*slots*style). */
    map: (embedding, n = 1) => engine.map(embedding, n),
    /** An aligned crop (ImageData, used as it is) -> {wplus, image, similarity}. */
    async invert(image, {size = pipeline.defaults.invert.size} = {}) {
      const [face] = (await pipeline.invertCrop({crop: image, notices: []}, pipeline._size(size))).faces;
      return {wplus: face.wplus, image: face.image, similarity: face.scores.clip_similarity};
    },

    tokenize: (text) => processors.text.tokenize(text),
    /** Prompts -> {embedding, truncated, columns} from the text encoder. */
    async encodeText(texts) {
      texts = Array.isArray(texts) ? texts : [texts];
      if (texts.length === 0) throw new Error('no prompts given');
      return encodeTexts(engine, processors, prompts(texts));
    },
    /** Whether a prompt's embedding ships with the site (no text encoder needed for it). */
    async inBank(text) { return (await processors.text.bank()).has(processors.text.cleanText(text)); },
    /** Prompts -> {embedding, truncated, fromBank}: the bank's where it has them, the text encoder for the rest. */
    embedPrompts: (texts) => embedPrompts(engine, processors, prompts(texts)),
    /** {delta, targetEmbedding, truncated, fromBank}: f(e_T(target)) - f(e_T(source)), zero for equal embeddings. */
    direction: (target, source) => pipeline.direction(target, source),
    /** The learned C for editing ``wplus`` along ``delta`` towards the target embedding. */
    strength: (wplus, targetEmbedding, delta) => engine.strength(wplus, targetEmbedding, delta),

    /** One edit (C a number or 'learned'): {wplus, C, image, similarity, textScore, delta, truncated, fromBank}. */
    async edit(wplus, target, {source, strength = 'learned', size = pipeline.defaults.edit.size} = {}) {
      const {variants: [variant], direction} = await pipeline.edit(wplus, target, {source, strengths: [strength], size});
      if (!variant.face) throw new Error(variant.notices[0]);
      const {face} = variant;
      return {wplus: face.wplus, C: face.scores.C, image: face.image, similarity: face.scores.clip_similarity,
        textScore: face.scores.text_score, delta: direction.delta, truncated: direction.truncated, fromBank: direction.fromBank};
    },
    /** Text to face: {wplus, image, textScore, embedding (the varied one), truncated, fromBank}. */
    async textToFace(prompt, {seed, psi, size} = {}) {
      const {faces: [face], embedding, truncated, fromBank} = await pipeline.textToFace(prompt, {seed, psi, size});
      return {wplus: face.wplus, image: face.image, textScore: face.scores.text_score, embedding, truncated, fromBank};
    },
    /** A morph as GIF89a bytes (pipeline.morph with frames = nFrames). */
    async morphGif(a, b, {frames, size, mode, crossover, progress} = {}) {
      return (await pipeline.morph(a, b, {nFrames: frames, size, mode, crossover, progress})).gif;
    },
    /** A morph as a clip, format 'gif' | 'mp4' | 'webm' (src/clips.js): {bytes, mime, format, codec, notices}. */
    async morphClip(a, b, {format = 'gif', frames, size, mode, crossover, progress} = {}) {
      return (await pipeline.morph(a, b, {nFrames: frames, size, mode, crossover, progress, format})).clip;
    },
    /** A C-sweep as a GIF with each frame's C, similarity to the first and text score. */
    async sweepGif(wplus, target, {source, frames, cMax, size, progress} = {}) {
      const {gif, faces} = await pipeline.sweep(wplus, target, {source, nFrames: frames, cMax, size, progress});
      return {gif, C: faces.map((f) => f.scores.C), similarity: faces.map((f) => f.scores.clip_similarity),
        textScore: faces.map((f) => f.scores.text_score)};
    },
    /** A C-sweep as a clip, format 'gif' | 'mp4' | 'webm': {bytes, mime, format, codec, notices}. */
    async sweepClip(wplus, target, {format = 'gif', source, frames, cMax, size, progress} = {}) {
      return (await pipeline.sweep(wplus, target, {source, nFrames: frames, cMax, size, progress, format})).clip;
    },

    /** Faces in a photo: {faces: [{box, eye_left, eye_right, mouth_left, mouth_right, quad, score, landmarks}], chosen}. */
    async align(image, {detector = 'ssd', refine = true} = {}) {
      const faces = await processors.faces.detect(image, {detector, refine});
      return {faces, chosen: faces.length ? 0 : null}; // the largest face, as the Python side chooses
    },
    /** The FFHQ crop (ImageData size x size) of face ``faceIndex`` (default: the largest). */
    async alignedCrop(image, faceIndex = 0, size = limits.crop_size) {
      return (await pipeline.alignPhoto({source: image, face: faceIndex}, checkRange(cropSize, size))).crop;
    },
    /** The crop of ``quad`` (as align returns it), without detecting again. */
    cropQuad: (image, quad, size = limits.crop_size) => processors.faces.crop(image, quad, checkRange(cropSize, size)),
    /** A result face (ImageData, or an image (1,3,S,S) in [-1,1] with its size) blended back into the photo. */
    async pasteBack(photo, quad, face, size) {
      if (!Array.isArray(quad) || quad.length !== 4) throw new Error('pasteBack needs the face quad from align(): 4 corners');
      return processors.faces.pasteBack(photo, quad, face instanceof ImageData ? face : toImageData(face, size));
    },

    /** Identity distance of two ImageData faces (their largest): {distance, sameperson} | {distance: null, reason}. */
    identity: (a, b) => processors.faces.identity(a, b),

    /** The model files kept by this browser (Cache Storage): [{file, sha256, bytes}]. */
    cached: cachedFiles,
    clearCache,
  };
}
