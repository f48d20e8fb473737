// The pipeline: the page's one door to the models, the web twin of celeblook.pipeline.Pipeline. The same verbs
// with the same arguments (camelCase: n_frames -> nFrames), the same defaults and limits (site.json, written
// from the Python modules), the same steps and scores, so one request gives one answer in Python and here
// (tests/test_web.py replays requests answered by the Python pipeline):
//
//   randomFaces(seed, {count, psi, size})                          -> Result
//   invert(photo, {refineIterations, refineSteps, size})           -> Result (with .photo: the crop, quad, faces)
//   textToFace(prompt, {seed, psi, size, optimizeSteps})           -> Result (+ embedding, truncated, fromBank)
//   edit(start, target, {source, strengths, size, optimizeSteps})  -> EditResult {original, variants, notices, direction}
//   sweep(start, target, {source, cMax, nFrames, size, progress, format})  -> Result (+ clip, + gif for a GIF)
//   morph(a, b, {nFrames, size, mode, crossover, progress, format})        -> Result (+ clip, + gif for a GIF)
//
// Result: {faces: [Face], notices}; Face: {wplus (Float32Array slots*style), image ((1,3,S,S) in [-1,1]), size,
// scores ({seed, psi, C, t, clip_similarity, text_score, generator_calls} as Python names them)}; Variant:
// {name: 'manual'|'learned'|'oracle', face (null when it could not run), notices}. A start (edit, sweep, morph)
// is a W+ latent (Float32Array), a Face, a photo {source: ImageData, aligned, face, quad} or a prompt {text,
// seed, psi}. Sweep and morph frames go straight into the clip (src/clips.js: ``format`` 'gif' (the default),
// 'mp4' or 'webm'; clip: {bytes, mime, format, codec, notices}; a 48-frame 1024 px morph would otherwise hold
// 200 MB): their faces keep W+ and scores, not images. ``progress(done, total, label)`` is awaited before each
// frame and may throw (Cancelled) to stop between frames.
//
// What the browser cannot do: the slow paths (refinement, CLIP-guided optimisation) need gradients, so they
// are refused as in the runtime install. Identity distances (face-api's port of dlib's descriptor, src/identity.js)
// and paste-back are separate steps, so a verb never fetches the recognition net.

import {clipEncoder} from './clips.js';
import {toImageData} from './image.js';
import {checkChoice, checkRange, shown} from './limits.js';
import {centreQuad} from './processors.js';
import {seededNormal} from './prng.js';
import {iterationsOf, refined} from './refiner.js';
import {checkPrompt, editDirection, embedPrompts, varyEmbedding} from './text.js';

export class Cancelled extends Error {
  constructor() { super('cancelled'); this.name = 'Cancelled'; }
}

/** A variant that cannot run on this site (no strength head): the others still run. */
class Unavailable extends Error {}

export function cosine(a, b) {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) { dot += a[i] * b[i]; na += a[i] * a[i]; nb += b[i] * b[i]; }
  return dot / Math.sqrt(na * nb);
}

/** w_avg + psi (w - w_avg) for w or W+ (flat, any number of style vectors): celeblook.engine.truncate. */
export function truncate(w, wAvg, psi) {
  return w.map((v, i) => wAvg[i % wAvg.length] + psi * (v - wAvg[i % wAvg.length]));
}

/** numpy.linspace(start, stop, n) as a list (the last value is ``stop`` exactly). */
function linspace(start, stop, n) {
  const step = (stop - start) / (n - 1);
  return Array.from({length: n}, (_, i) => (i === n - 1 ? stop : start + i * step));
}

/** snake_case -> camelCase: Python's argument names as the page's options. */
const camel = (name) => name.replace(/_([a-z])/g, (_, c) => c.toUpperCase());

/**
 * The bisection for the C in [0, cMax] whose similarity(C) is within ``tol`` of ``target``: celeblook.strength_oracle.
 * The first probe is at cMax; when even cMax keeps the similarity above the target, cMax is returned (bracketed false).
 */
export async function oracleStrength(similarity, {target, cMax, tol, maxIter}) {
  let calls = 0;
  const probe = (c) => { calls += 1; return similarity(c); };
  let lo = 0;
  let hi = cMax;
  const simHi = await probe(hi);
  if (simHi >= target - tol) return {strength: cMax, generatorCalls: calls, similarity: simHi, bracketed: simHi < target + tol};
  let best = [hi, simHi];
  for (let i = 0; i < maxIter; i++) {
    const mid = 0.5 * (lo + hi);
    const sim = await probe(mid);
    if (Math.abs(sim - target) < Math.abs(best[1] - target)) best = [mid, sim];
    if (Math.abs(sim - target) < tol) break;
    [lo, hi] = sim > target ? [mid, hi] : [lo, mid];
  }
  return {strength: best[0], generatorCalls: calls, similarity: best[1], bracketed: true};
}

export class Pipeline {
  /** ``engine`` (src/engine.js), ``processors`` (src/processors.js), ``limits``: site.json's limits. */
  constructor(engine, processors, limits) {
    this.engine = engine;
    this.processors = processors;
    this.limits = limits;
    this.ranges = limits.ranges;
    this.sizes = engine.sizes.filter((s) => limits.sizes.includes(s)); // offered and exported
    this.defaults = Object.fromEntries(Object.entries(limits.defaults).map(([verb, args]) => [camel(verb),
      Object.fromEntries(Object.entries(args).map(([name, value]) => [camel(name), value]))]));
  }

  // --- the user's requests ---------------------------------------------------------------------------------

  /** Faces of seeds seed .. seed + count - 1. */
  async randomFaces(seed, options = {}) {
    const {count, psi, size} = this._options('randomFaces', options);
    seed = checkRange(this.ranges.seed, seed);
    const n = checkRange(this.ranges.faces, count);
    if (seed + n - 1 > this.ranges.seed.high) throw new Error(`seed must be at most ${this.ranges.seed.high - n + 1} for ${n} faces`);
    const p = checkRange(this.ranges.psi, psi);
    const s = this._size(size);
    const faces = [];
    for (let k = seed; k < seed + n; k++) faces.push(await this._face((await this.seededWplus(k, p)).wplus, s, {seed: k, psi: p, generator_calls: 1}));
    return this._result(faces);
  }

  /** A photo (aligned here, or already aligned) -> its face, scored against the crop it came from. */
  async invert(photo, options = {}) {
    const {refineSteps, refineIterations, size} = this._options('invert', options);
    const s = this._size(size);
    const iterations = iterationsOf(this.engine, this.ranges, refineIterations);
    this._noSlowPath(checkRange(this.ranges.steps, refineSteps), 'refinement', 'inverting a photo');
    return this.invertCrop(await this.alignPhoto(photo), s, iterations);
  }

  /** Fast path: W+ = truncate(f(e + a seeded variation), psi); the slow path needs gradients (refused here). */
  async textToFace(prompt, options = {}) {
    const {seed, psi, size, optimizeSteps} = this._options('textToFace', options);
    const [text, notices] = checkPrompt(prompt, 'prompt', this.limits.prompt_max_chars);
    const k = checkRange(this.ranges.seed, seed);
    const p = checkRange(this.ranges.psi, psi);
    const s = this._size(size);
    this._noSlowPath(checkRange(this.ranges.steps, optimizeSteps), 'CLIP-guided optimisation', 'text to face');
    const embedded = await embedPrompts(this.engine, this.processors, [text]);
    const varied = varyEmbedding(embedded.embedding, this.limits.text_variation * this.engine.eScale, k);
    const wplus = truncate(await this.engine.map(varied, 1), this.engine.wAvg, p);
    const face = await this._face(wplus, s, {seed: k, psi: p, generator_calls: 1});
    face.scores.text_score = cosine(await this.engine.embedPixels(face.image, s), embedded.embedding);
    return {...this._result([face], [...notices, ...embedded.notices]), embedding: varied, truncated: embedded.truncated,
      fromBank: embedded.fromBank};
  }

  /**
   * The face an edit or morph starts from: a photo inverted, a prompt's face, a face made earlier or W+ rendered
   * (``render`` false: a W+ start is only checked; edits, sweeps and morphs need its image no more).
   */
  async faceOf(start, {size = this.defaults.edit.size, render = true} = {}) {
    const s = this._size(size);
    if (start instanceof Float32Array || Array.isArray(start)) {
      const wplus = this.checkWplus(start);
      return this._result([render ? await this._face(wplus, s, {generator_calls: 1}) : {wplus, image: null, size: s, scores: {}}]);
    }
    if (start?.wplus) return this._result([start]);
    if (start?.source) return this.invertCrop(await this.alignPhoto(start), s);
    if (typeof start?.text === 'string') return this.textToFace(start.text, {seed: start.seed, psi: start.psi, size: s});
    throw new Error(`cannot start from ${shown(start)}: give a photo, a prompt, a face or a W+ latent`);
  }

  /**
   * One edit per asked strength (a number C, 'learned' or 'oracle') of the same face and direction. A strength
   * that cannot run gives a variant without a face whose notice says why. ``source``: empty = the neutral prompt,
   * '<image>' = the face's own image embedding.
   */
  async edit(start, target, options = {}) {
    const {source, strengths, size, optimizeSteps} = this._options('edit', options);
    const s = this._size(size);
    checkRange(this.ranges.steps, optimizeSteps); // with a mapper the steps are not used (Python: the slow path's only)
    this._needMapper('editing');
    checkPrompt(target, 'target prompt', this.limits.prompt_max_chars); // before any render (again in direction)
    if (!Array.isArray(strengths) || !strengths.length) throw new Error("ask for at least one strength: a number C, 'learned' or 'oracle'");
    const asked = strengths.map((c) => this._checkStrength(c));
    const origin = await this.faceOf(start, {size: s, render: false});
    const original = origin.faces[0];
    const wplus = this.checkWplus(original.wplus);
    const direction = await this.direction(target, source, wplus);
    const reference = await this._embedRender(wplus, this.limits.score_size);
    const variants = [];
    for (const strength of asked) {
      const name = typeof strength === 'string' ? strength : 'manual';
      try {
        variants.push({name, ...await this._editOne(wplus, direction, reference, strength, s)});
      } catch (err) {
        if (!(err instanceof Unavailable)) throw err;
        variants.push({name, face: null, notices: [`${name} C unavailable: ${err.message}`]});
      }
    }
    return {original, variants, notices: [...origin.notices, ...direction.notices], photo: origin.photo ?? null, direction};
  }

  /** Frames of the edit at C = 0 .. cMax, as a GIF; each frame scored against the first (C = 0). */
  async sweep(start, target, options = {}) {
    const {source, cMax, nFrames, size, progress} = this._options('sweep', options);
    const s = this._size(size);
    const top = checkRange(this.ranges.c_max, cMax);
    const n = checkRange(this.ranges.frames, nFrames);
    checkPrompt(target, 'target prompt', this.limits.prompt_max_chars); // before any render (again in direction)
    const origin = await this.faceOf(start, {size: s, render: false});
    const wplus = this.checkWplus(origin.faces[0].wplus);
    const direction = await this.direction(target, source, wplus);
    let reference = null;
    const frames = linspace(0, top, n).map((c) => ({wplus: this._along(wplus, c, direction.delta), scores: {C: c, generator_calls: 1}}));
    const clip = await this._clip(frames, s, options.format, 'sweep frame', progress, async (face, image) => {
      const embedding = await this.engine.embedPixels(image, s);
      reference ??= embedding; // the first frame (C = 0) is the unedited face
      face.scores.clip_similarity = cosine(embedding, reference);
      face.scores.text_score = cosine(embedding, direction.targetEmbedding);
    });
    return this._clipResult(frames, [...origin.notices, ...direction.notices], clip);
  }

  /** interpolate: (1-t) a + t b on every slot; style_mix: slots >= crossover move from a to b, the rest stay a's. */
  async morph(a, b, options = {}) {
    const {nFrames, size, mode, crossover, progress} = this._options('morph', options);
    const s = this._size(size);
    const n = checkRange(this.ranges.frames, nFrames);
    const picked = typeof mode === 'string' ? mode.trim().replace(/ /g, '_') : mode;
    if (!this.limits.morph_modes.includes(picked)) throw new Error(`mode must be 'interpolate' or 'style_mix', got ${shown(mode)}`);
    const first = picked === 'style_mix' ? checkRange(this.ranges.crossover, crossover) : 0;
    const one = await this.faceOf(a, {size: s, render: false});
    const two = await this.faceOf(b?.source && !b.label ? {...b, label: 'the second photo'} : b, {size: s, render: false});
    const wa = this.checkWplus(one.faces[0].wplus);
    const wb = this.checkWplus(two.faces[0].wplus);
    const {style} = this.engine;
    const frames = linspace(0, 1, n).map((t) => {
      const weight = Math.fround(t);
      // float32 steps as numpy's; a + 1 * (b - a) is b only up to rounding: the last frame takes b's moving slots exactly
      const wplus = wa.map((v, i) => (Math.floor(i / style) < first ? v : weight === 1 ? wb[i]
        : v + Math.fround(weight * Math.fround(wb[i] - v))));
      return {wplus, scores: {t, generator_calls: 1}};
    });
    const clip = await this._clip(frames, s, options.format, 'morph frame', progress);
    return this._clipResult(frames, [...one.notices, ...two.notices], clip);
  }

  // --- steps the verbs share (and the page's API uses) -------------------------------------------------------

  /** The seed's face: z from src/prng.js (celeblook.seeds), w = mapping(z) truncated by psi, on every slot. */
  async seededWplus(seed, psi) {
    const {style, slots, wAvg} = this.engine;
    const z = seededNormal(seed, style);
    const w = await this.engine.mapping(z, 1);
    const truncated = truncate(w, wAvg, psi);
    const wplus = new Float32Array(slots * style);
    for (let k = 0; k < slots; k++) wplus.set(truncated, k * style);
    return {z, w, wplus};
  }

  /**
   * A photo start -> {crop (the FFHQ crop, by default at site.json's crop_size), quad, faces, chosen, notices}.
   * {source: ImageData, aligned: true}: its centred square; {quad}: that face (found earlier, not detected again);
   * else the faces are detected and ``face`` (default the largest) is cropped.
   */
  async alignPhoto(photo, size = this.limits.crop_size) {
    const start = photo instanceof ImageData ? {source: photo} : photo;
    const {source, aligned = false, face = null, quad = null, label = 'the photo'} = start ?? {};
    if (!(source instanceof ImageData)) throw new Error(`${label} must be an ImageData, got ${shown(source)}`);
    const notices = [];
    let faces = [];
    let chosen = null;
    let picked = quad;
    if (aligned) {
      picked = centreQuad(source.width, source.height);
      if (source.width !== source.height) notices.push(`${label} is marked as already aligned: using its centred square`);
    } else if (!picked) {
      faces = await this.processors.faces.detect(source);
      if (!faces.length) {
        throw new Error(`no face found in ${label}: use an upright photo with a clear, frontal face, or mark it as already `
          + 'aligned to use its centred square as it is');
      }
      chosen = face === null ? 0 : checkRange(this.ranges.face_index, face);
      if (chosen >= faces.length) throw new Error(`face ${face} asked for, but ${label} has ${faces.length} face(s): pick 0 to ${faces.length - 1}`);
      if (faces.length > 1) notices.push(`${faces.length} faces found in ${label}: using face ${chosen} (${chosen === 0 ? 'the largest' : 'as asked'})`);
      picked = faces[chosen].quad;
    }
    // the photo itself stays with the caller (a 2048 px photo is 16 MB to copy out of the worker)
    return {crop: this.processors.faces.crop(source, picked, size), quad: picked, faces, chosen, notices};
  }

  /**
   * An aligned crop -> encode, map, ``iterations`` learned refiner steps (default: the refiner's own count), render:
   * the inversion of pipeline.invert, scored against the crop.
   */
  async invertCrop(aligned, size, iterations = iterationsOf(this.engine, this.ranges)) {
    this._needMapper('inverting a photo');
    const embedding = await this.engine.embedPhotos(aligned.crop);
    let wplus = await this.engine.map(embedding, 1);
    const notices = [...aligned.notices];
    if (iterations) {
      wplus = await refined(this.engine, aligned.crop, wplus, iterations);
      notices.push(`refined by the learned refiner: ${iterations} iteration${iterations > 1 ? 's' : ''}`);
    }
    const face = await this._face(wplus, size, {generator_calls: 1 + iterations});
    face.scores.clip_similarity = cosine(await this.engine.embedPixels(face.image, size), embedding);
    return this._result([face], notices, {photo: aligned});
  }

  /**
   * The edit direction: {delta, targetEmbedding, truncated, fromBank, notices}; ``source`` empty = the neutral
   * prompt, '<image>' = the image embedding of ``wplus``'s face.
   */
  async direction(target, source, wplus = null) {
    this._needMapper('editing');
    const max = this.limits.prompt_max_chars;
    const [text, notices] = checkPrompt(target, 'target prompt', max);
    let from = this.limits.default_source;
    if (!(source === null || source === undefined || (typeof source === 'string' && !source.trim()))) {
      const [cleaned, more] = checkPrompt(source, 'source prompt', max);
      from = cleaned;
      notices.push(...more);
    }
    const fromImage = from === this.limits.source_from_image;
    const embedded = await embedPrompts(this.engine, this.processors, fromImage ? [text] : [text, from]);
    const dim = embedded.embedding.length / (fromImage ? 1 : 2);
    const targetEmbedding = embedded.embedding.slice(0, dim);
    if (fromImage && !wplus) throw new Error(`the source ${from} needs the face being edited`);
    const sourceEmbedding = fromImage ? await this._embedRender(wplus, this.limits.score_size) : embedded.embedding.slice(dim);
    return {delta: await editDirection(this.engine, targetEmbedding, sourceEmbedding), targetEmbedding,
      truncated: embedded.truncated, fromBank: embedded.fromBank, notices: [...notices, ...embedded.notices]};
  }

  /** A W+ latent (slots*style finite numbers) as a Float32Array. */
  checkWplus(wplus) {
    return this.checkLatents(wplus instanceof Float32Array ? wplus : Float32Array.from(wplus ?? []), 1);
  }

  /** A batch of ``n`` W+ latents (a Float32Array of n*slots*style finite numbers). */
  checkLatents(wplus, n) {
    const {slots, style} = this.engine;
    if (!(wplus instanceof Float32Array) || wplus.length !== n * slots * style) {
      throw new Error(`a latent batch must be a Float32Array of ${n}x${slots}x${style} values, got ${wplus?.length}`);
    }
    if (!wplus.every(Number.isFinite)) throw new Error('the latent contains NaN or infinite values');
    return wplus;
  }

  /** ``size`` one of the sizes offered (site.json) and exported. */
  _size(size) { return checkChoice('size', this.sizes, size); }

  // --- helpers -----------------------------------------------------------------------------------------------

  /** A verb's options over its Python defaults (site.json); undefined means the default. */
  _options(verb, options) {
    const given = Object.fromEntries(Object.entries(options ?? {}).filter(([, v]) => v !== undefined));
    return {...this.defaults[verb], ...given};
  }

  /** The slow paths need gradients, which the page has no models for (as the runtime install). */
  _noSlowPath(steps, slowPath, request) {
    this._needMapper(request);
    if (steps) throw new Error(`${slowPath} needs gradients, which the page has no models for: use the Python app`);
  }

  _needMapper(request) {
    if (!this.engine.has('mapper')) {
      throw new Error(`${request} needs the mapper, which this site lacks: train it (python -m celeblook train mapper), then rebuild the site`);
    }
  }

  _checkStrength(strength) {
    if (typeof strength === 'string' && ['learned', 'oracle'].includes(strength.trim())) return strength.trim();
    const {low, high} = this.ranges.strength;
    try {
      return checkRange(this.ranges.strength, strength);
    } catch {
      throw new Error(`strength C must be a number from ${low} to ${high}, 'learned' or 'oracle', got ${shown(strength)}`);
    }
  }

  async _editOne(wplus, direction, reference, strength, size) {
    const notices = [];
    let calls = 1; // the reference render
    let c = strength;
    if (strength === 'learned') {
      if (!this.engine.has('strength')) throw new Unavailable('this site has no strength.onnx: train it (python -m celeblook train strength), then rebuild the site');
      c = await this.engine.strength(wplus, direction.targetEmbedding, direction.delta);
    } else if (strength === 'oracle') {
      const {target_similarity: target, c_max: cMax, score_size: side, oracle} = this.limits;
      const found = await oracleStrength(async (x) => cosine(reference, await this._embedRender(this._along(wplus, x, direction.delta), side)),
        {target, cMax, tol: oracle.tol, maxIter: oracle.max_iter});
      c = found.strength;
      calls += found.generatorCalls;
      if (!found.bracketed) {
        notices.push(`similarity stays above the target up to C=${c} (reached ${found.similarity.toFixed(3)}); returned the bound`);
      }
    }
    const face = await this._face(this._along(wplus, c, direction.delta), size, {C: c, generator_calls: calls + 1});
    const embedding = await this.engine.embedPixels(face.image, size);
    face.scores.clip_similarity = cosine(embedding, reference);
    face.scores.text_score = cosine(embedding, direction.targetEmbedding);
    return {face, notices};
  }

  /** wplus + C delta in float32, as numpy computes it. */
  _along(wplus, c, delta) {
    const c32 = Math.fround(c);
    return wplus.map((v, i) => v + Math.fround(c32 * delta[i]));
  }

  async _embedRender(wplus, size) {
    return this.engine.embedPixels(await this.engine.synthesize(wplus, 1, size), size);
  }

  async _face(wplus, size, scores) {
    return {wplus, image: await this.engine.synthesize(wplus, 1, size), size, scores: {...scores}};
  }

  _result(faces, notices = [], extra = {}) {
    return {faces, notices, ...extra};
  }

  /** Frames rendered one by one into a clip; ``score(face, image)`` sees each image before it is dropped. */
  async _clip(frames, size, format = 'gif', label, progress = async () => {}, score = async () => {}) {
    const encoder = await clipEncoder(format, size, this.limits.gif_frame_ms); // a format it cannot make fails before any render
    try {
      for (let f = 0; f < frames.length; f++) {
        await progress(f, frames.length, label);
        const image = await this.engine.synthesize(frames[f].wplus, 1, size);
        await encoder.add(toImageData(image, size));
        await score(frames[f], image);
      }
      await progress(frames.length, frames.length, label);
    } catch (err) {
      await encoder.cancel(); // a cancelled or failed clip releases the browser's video encoder at once
      throw err;
    }
    return encoder.finish();
  }

  /** A sweep's or morph's Result with its clip (a fallback's notice among the notices) and, for a GIF, its bytes as .gif. */
  _clipResult(frames, notices, clip) {
    return {...this._result(frames, [...notices, ...clip.notices]), clip, ...(clip.format === 'gif' ? {gif: clip.bytes} : {})};
  }
}
