// The engine: every forward the pipeline runs, Float32Arrays in and out, over the site's ONNX sessions; the web
// twin of celeblook/engine.py's Engine (as celeblook/runtime/ort.py's OrtEngine implements it). Latents are flat
// W+ (N*slots*style); images are (N,3,S,S) in [-1,1], as the graphs produce them; embeddings are unit (N*dim).

/**
 * The engine of ``sessions`` (src/sessions.js) with ``processors`` (src/processors.js):
 * {wAvg, eScale, style, sizes, photoGraph, refinerIterations, refinerSize, has, mapping, synthesize, embedPhotos,
 * embedPixels, embedTokens, map, strength, refine}.
 */
export function createEngine(sessions, processors) {
  const {constants, entryFor, run} = sessions;
  const style = constants.w_avg.length;
  const slots = sessions.site.limits.n_slots;
  // photos and generated faces go through the graph the mapper reads (export.onnx's photo_encoder)
  const photoGraph = constants.photo_encoder ?? (constants.mapper_encoder === 'teacher' ? 'image_encoder_teacher' : 'image_encoder');
  const sizes = [...new Set(sessions.manifest.files.filter((f) => f.model.startsWith('synthesis_'))
    .map((f) => Number(f.model.split('_')[1])))].sort((a, b) => a - b);
  const textEntry = entryFor('text_encoder');
  const refiner = entryFor('refiner')?.meta; // the exported refiner's default count and render size
  const refinerSize = refiner?.render_size ?? 256;

  return {
    wAvg: Float32Array.from(constants.w_avg),
    /** The mapper's embedding spread (text to face varies a prompt by it); 1 without a mapper. */
    eScale: entryFor('mapper')?.meta?.e_scale ?? 1,
    style,
    slots,
    sizes,
    photoGraph,
    /** The refiner's own iteration count (0 without refiner.onnx) and the generator exit it compares at. */
    refinerIterations: refiner?.iterations ?? 0,
    refinerSize,
    /** Whether a graph is exported: 'mapper', 'strength', 'text_encoder', a photo graph... */
    has: sessions.has,
    /** The text encoder takes any token length (a named axis): the columns after the last end-of-text are cut. */
    textAnyLength: typeof textEntry?.inputs[0].shape[1] === 'string',
    /** z (N*style) -> w (N*style). */
    mapping: (z, n = 1) => run('mapping', {z: [z, [n, style]]}),
    /** W+ (N*slots*style) -> images (N,3,size,size); ``size`` one of ``sizes``. */
    synthesize(wplus, n, size) {
      if (!sizes.includes(size)) throw new Error(`size must be one of ${sizes.join(', ')}, got ${size}`);
      return run(`synthesis_${size}`, {wplus: [wplus, [n, slots, style]]});
    },
    /** An aligned photo (ImageData) -> its unit embedding. */
    embedPhotos: (image) => run(photoGraph, {pixels: processors.image.photo(image)}),
    /** Generated images (N,3,size,size) -> the unit embedding of image ``index``. */
    embedPixels: (images, size, index = 0) => run(photoGraph, {pixels: processors.image.generated(images, size, index)}),
    /** Token rows [ids, dims] (src/processors.js text.tokens) -> unit text embeddings (N*dim). */
    embedTokens: (tokens) => run('text_encoder', {tokens}),
    /** CLIP embeddings (N*dim) -> W+ (N*slots*style): the mapper f. */
    map: (embedding, n = 1) => run('mapper', {embedding: [embedding, [n, embedding.length / n]]}),
    /** The learned edit strength C (a number) for W+, the target's text embedding and the edit direction. */
    async strength(wplus, embedding, delta) {
      const c = await run('strength', {wplus: [wplus, [1, slots, style]], embedding: [embedding, [1, embedding.length]],
        delta: [delta, [1, slots, style]]});
      return c[0];
    },
    /** One refiner iteration's W+ residual (slots*style) for photo and reconstruction (1,3,S,S), S = refinerSize. */
    refine: (photo, reconstruction) => run('refiner', {photo: [photo, [1, 3, refinerSize, refinerSize]],
      reconstruction: [reconstruction, [1, 3, refinerSize, refinerSize]]}),
  };
}
