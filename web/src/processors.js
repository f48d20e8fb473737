// What goes into the models and comes out of a photo: images -> the CLIP input (celeblook/preprocess.py, ported
// exactly in src/preprocess.js), prompts -> token rows (src/tokenizer.js) and the curated prompts' precomputed
// embeddings, photos -> faces and their FFHQ crops (src/align.js) and identity distances (src/identity.js).
// No ONNX model runs here.

import {createDetector, pasteBack, renderCrop} from './align.js';
import {createIdentity} from './identity.js';
import {photoToClip, tensorToClip} from './preprocess.js';
import {CONTEXT_LENGTH, cleanText, loadTokenizer} from './tokenizer.js';

/** IEEE half floats (Uint16Array) -> Float32Array. */
export function halfToFloat(half) {
  const out = new Float32Array(half.length);
  for (let i = 0; i < half.length; i++) {
    const h = half[i];
    const exponent = (h >> 10) & 0x1f;
    const fraction = h & 0x3ff;
    const value = exponent === 0 ? fraction * 2 ** -24 : exponent === 31 ? (fraction ? NaN : Infinity)
      : (1 + fraction / 2 ** 10) * 2 ** (exponent - 15);
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

/** The centred square of a width x height photo as a quad (TL, BL, BR, TR): celeblook.align.centre_quad. */
export function centreQuad(width, height) {
  const side = Math.min(width, height);
  const left = (width - side) / 2;
  const top = (height - side) / 2;
  return [[left, top], [left, top + side], [left + side, top + side], [left + side, top]];
}

/**
 * The processors of a site (``sessions`` from src/sessions.js): {image, text, faces}.
 * image.photo(ImageData) / image.generated(images, side, index) -> [pixels, dims], the CLIP input;
 * text.tokenize(text), text.tokens(texts) -> {tokens: [ids, dims], truncated, counts}, text.bank() -> Map;
 * faces.detect(ImageData) -> faces (largest first), faces.crop(ImageData, quad, size), faces.pasteBack(...),
 * faces.identity(a, b) -> {distance, sameperson} | {distance: null, reason}.
 */
export function createProcessors(sessions, base) {
  const {clip} = sessions.constants;
  const side = clip.size;

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
      const {prompts} = sessions.site;
      if (!prompts) return new Map();
      const bytes = await sessions.fetchFile(prompts, new URL(`models/${prompts.file}`, base).href);
      const vectors = halfToFloat(new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2));
      return new Map(prompts.prompts.map((p, i) => [cleanText(p), vectors.subarray(i * prompts.dim, (i + 1) * prompts.dim)]));
    })();
    bank.catch(() => { bank = null; });
    return bank;
  };

  const detector = createDetector(base);
  const alignEntries = sessions.site.align?.files ?? [];
  const getDetector = async () => {
    if (!alignEntries.length) throw new Error('this site has no face-alignment model: rebuild it with python -m celeblook web build');
    await detector.load(alignEntries, (entry) => sessions.fetchFile(entry, new URL(`vendor/face-api/model/${entry.file}`, base).href));
    return detector;
  };
  const {identity} = createIdentity({loadDetector: getDetector, entries: sessions.site.identity?.files ?? [],
    loadFile: (entry) => sessions.fetchFile(entry, new URL(`vendor/face-api/identity/${entry.file}`, base).href),
    samePerson: sessions.site.limits.same_person});

  return {
    image: {
      /** ImageData -> the CLIP input, exactly celeblook.preprocess.photo_to_clip's steps. */
      photo: (image) => [photoToClip(image, clip.mean, clip.std, side), [1, 3, side, side]],
      /** Generated image(s) (N,3,S,S) in [-1,1] -> image ``index``'s CLIP input (tensor_to_clip). */
      generated: (images, size, index = 0) => [tensorToClip(images, size, clip.mean, clip.std, side, index), [1, 3, side, side]],
    },
    text: {
      cleanText,
      async tokenize(text) { return (await getTokenizer()).tokenize(text); },
      /**
       * Prompts -> {tokens: [ids, dims], truncated, counts}; ``anyLength``: the text encoder takes any token length,
       * so the columns after the last end-of-text token are cut (celeblook.runtime.ort.OrtEngine.embed_tokens).
       */
      async tokens(texts, anyLength) {
        const tok = await getTokenizer();
        const rows = texts.map((t) => tok.tokenize(t));
        const ids = new Int32Array(rows.length * CONTEXT_LENGTH);
        rows.forEach((r, i) => ids.set(r.ids, i * CONTEXT_LENGTH));
        return {tokens: anyLength ? cutAfterLastEot(ids, rows.length, CONTEXT_LENGTH) : [ids, [rows.length, CONTEXT_LENGTH]],
          truncated: rows.map((r) => r.truncated), counts: rows.map((r) => r.count)};
      },
      /** The curated prompts' embeddings by cleaned text. */
      bank: getBank,
    },
    faces: {
      /** Faces in a photo, largest first: [{box, eye_left, eye_right, mouth_left, mouth_right, quad, score, landmarks}]. */
      async detect(image) { return (await getDetector()).detect(image); },
      crop: renderCrop,
      pasteBack,
      identity,
    },
  };
}
