// The live camera's steps in the worker: one frame (an ImageBitmap) -> the face tracked (src/tracking.js) ->
// its crop drawn by the canvas at the encoder's input side -> E_I -> the mapper -> W+ smoothed over time (a
// one-euro filter, src/smoothing.js) -> optionally an edit (a prompt's direction, manual or learned C) and a morph
// towards a kept face -> G at the live size -> an ImageBitmap, handed back with the frame (both transferred, not
// copied) and each stage's milliseconds. The page (src/live.js) sends a frame only when the last one is done, so
// frames are dropped there, never queued here. Pipelined, G runs in a second worker (synth) on the W+ this one
// made, while this one takes the next frame.

import {drawCrop} from './align.js';
import {toImageData} from './image.js';
import {checkRange, shown} from './limits.js';
import {OneEuro} from './smoothing.js';
import {FaceTracker} from './tracking.js';

// The quad (photo pixels) is smoothed too, so the crop the encoder sees does not jitter with the landmarks.
const QUAD_SMOOTHING = {minCutoff: 1, beta: 0.01, dCutoff: 1};
// W+: a still face settles within a few frames, a new face comes through within ~0.5 s at 4 fps
export const LATENT_SMOOTHING = {minCutoff: 1, beta: 0.3, dCutoff: 1};
const UNIT = {name: 'morph t', low: 0, high: 1};

/** The live steps over the worker's pipeline (src/pipeline.js) and processors: start, update, frame, stop. */
export function createStream(pipeline, processors) {
  const {engine} = pipeline;
  let run = null;

  /** {edit: {delta, targetEmbedding, strength} | null, morph: {wplus, t} | null} from the caller's options. */
  async function changes(size, {edit = null, morph = null} = {}) {
    const made = {edit: null, morph: null};
    if (edit) {
      const strength = pipeline._checkStrength(edit.strength ?? 'learned');
      if (strength === 'oracle') throw new Error("live edits take a number C or 'learned' (the oracle renders many faces per frame)");
      if (strength === 'learned' && !engine.has('strength')) throw new Error('this site has no strength head: give a number C');
      if (typeof edit.source === 'string' && edit.source.trim() === pipeline.limits.source_from_image) {
        throw new Error(`live edits take a source prompt, not ${pipeline.limits.source_from_image}`);
      }
      const direction = await pipeline.direction(edit.target, edit.source);
      made.edit = {delta: direction.delta, targetEmbedding: direction.targetEmbedding, strength, notices: direction.notices};
    }
    if (morph) {
      if (!morph.towards) throw new Error(`a live morph goes towards a face: a W+ latent, a face, a photo or a prompt, got ${shown(morph.towards)}`);
      const {faces: [face]} = await pipeline.faceOf(morph.towards, {size, render: false});
      made.morph = {wplus: pipeline.checkWplus(face.wplus), t: checkRange(UNIT, morph.t ?? 0.5)};
    }
    return made;
  }

  /** W+ -> the face at ``size`` as an ImageBitmap. */
  async function render(wplus, size) {
    return createImageBitmap(toImageData(await engine.synthesize(wplus, 1, size), size));
  }

  function smoother(smoothing) {
    if (smoothing === false || smoothing === null) return null;
    return new OneEuro({...LATENT_SMOOTHING, ...(typeof smoothing === 'object' ? smoothing : {})});
  }

  return {
    /**
     * Start (or restart) live mode: {size, edit: {target, source, strength}, morph: {towards, t}, smoothing,
     * redetectEvery (frames between detections), detector ('ssd' | 'tiny': the one that looks for the face)}.
     */
    async start({size, edit, morph, smoothing, redetectEvery, detector = 'ssd'} = {}) {
      pipeline._needMapper('live mode');
      if (!engine.has(engine.photoGraph)) throw new Error(`live mode needs ${engine.photoGraph}.onnx, which this site lacks`);
      const s = pipeline._size(size ?? Math.min(...pipeline.sizes));
      const faces = await processors.faces.detector();
      const made = await changes(s, {edit, morph});
      const tracker = new FaceTracker(faces, {redetectEvery, detect: {detector, refine: false}});
      run = {size: s, ...made, tracker, quad: new OneEuro(QUAD_SMOOTHING), latent: smoother(smoothing), canvas: new OffscreenCanvas(1, 1)};
      return {size: s, latentLength: engine.slots * engine.style, notices: made.edit?.notices ?? []};
    },

    /** Change the edit, the morph or the smoothing while live (the tracking goes on). */
    async update(options = {}) {
      if (!run) throw new Error('live mode is not running');
      const made = await changes(run.size, options);
      if ('edit' in options) run.edit = made.edit;
      if ('morph' in options) run.morph = made.morph;
      if ('smoothing' in options) run.latent = smoother(options.smoothing);
      return {notices: made.edit?.notices ?? []};
    },

    /**
     * One camera frame seen at ``time`` seconds -> {found, frame (given back), face (ImageBitmap), quad, wplus, C,
     * detected, stages: {track, crop, encode, map, edit, synth} in ms}. ``render`` false: no face (and no synth):
     * another worker renders the W+ (live.synth), while this one takes the next frame.
     */
    async frame(frame, time, {render: rendered = true} = {}) {
      if (!run) throw new Error('live mode is not running');
      const current = run;
      const stages = {};
      let mark = performance.now();
      const lap = (name) => {
        const now = performance.now();
        stages[name] = now - mark;
        mark = now;
      };
      const located = await current.tracker.locate(frame);
      lap('track');
      if (!located) {
        current.quad.reset();
        return {found: false, frame, stages};
      }
      const flat = current.quad.filter(located.face.quad.flat(), time);
      const quad = [0, 1, 2, 3].map((i) => [flat[2 * i], flat[2 * i + 1]]);
      const crop = drawCrop(frame, quad, processors.clipSide, current.canvas);
      lap('crop');
      const embedding = await engine.embedPhotos(crop);
      lap('encode');
      const mapped = await engine.map(embedding, 1);
      let wplus = current.latent ? current.latent.filter(mapped, time) : mapped;
      lap('map');
      let c = null;
      if (current.edit) {
        const {delta, targetEmbedding, strength} = current.edit;
        c = strength === 'learned' ? await engine.strength(wplus, targetEmbedding, delta) : strength;
        wplus = pipeline._along(wplus, c, delta);
      }
      if (current.morph) {
        const {wplus: towards, t} = current.morph;
        wplus = wplus.map((v, i) => v + t * (towards[i] - v));
      }
      lap('edit');
      const face = rendered ? await render(wplus, current.size) : null;
      if (rendered) lap('synth');
      return {found: true, frame, face, quad, wplus, C: c, detected: located.detected, size: current.size, stages};
    },

    /** W+ -> {face (ImageBitmap), stages: {synth}}: the render of a frame whose W+ another worker made. */
    async synth(wplus, size) {
      const start = performance.now();
      const face = await render(pipeline.checkWplus(wplus), pipeline._size(size));
      return {face, stages: {synth: performance.now() - start}};
    },

    stop() { run = null; },
  };
}
