// The learned refiner's loop (celeblook/models/refiner.py, Pipeline._refined): w_{t+1} = w_t + R(x, G(w_t)), on the
// engine's refiner.onnx and the generator exit it renders at, so the page lands on Python's latents.

import {checkRange} from './limits.js';
import {photoToPixels} from './preprocess.js';

/** A request's refiner iterations (checked): none asked = the refiner's own count (0 without refiner.onnx). */
export function iterationsOf(engine, ranges, count) {
  if (count === undefined || count === null) return engine.has('refiner') ? engine.refinerIterations : 0;
  const n = checkRange(ranges.refine_iterations, count);
  if (n && !engine.has('refiner')) {
    throw new Error(`refine iterations ${n} needs a trained refiner: this site has no refiner.onnx (python -m celeblook `
      + 'train refiner, then export and rebuild the site)');
  }
  return n;
}

/** ``iterations`` refiner steps from W+ ``wplus`` for the aligned ``crop`` (ImageData), in float32 as numpy. */
export async function refined(engine, crop, wplus, iterations) {
  const size = engine.refinerSize;
  const photo = photoToPixels(crop, size); // preprocess.photo_to_pixels: Pillow's Lanczos to the render size
  for (let t = 0; t < iterations; t++) {
    const residual = await engine.refine(photo, await engine.synthesize(wplus, 1, size));
    wplus = wplus.map((w, i) => w + residual[i]);
  }
  return wplus;
}
