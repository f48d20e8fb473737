// Photo -> CLIP input, the same steps as celeblook/preprocess.py (photo_to_clip; tensorToClip at the end is
// tensor_to_clip, for scoring generated faces):
// transparency composited on white, shortest side to 224 with Pillow's bicubic filter, centre crop, [0,1],
// (x - mean) / std. The resize is a port of Pillow's ImagingResample for 8-bit images (same kernel, a = -0.5,
// widened when shrinking; same 22-bit fixed-point coefficients; horizontal pass, rounding to 8 bits, vertical
// pass), so for the same RGB pixels the result is Pillow's, bit for bit. The canvas's own drawImage scaling is
// implementation-defined and is not used. What can still differ from Python is decoding: the browser's
// JPEG/PNG decoders and colour management versus Pillow's (EXIF orientation is applied by both).

const PRECISION_BITS = 32 - 8 - 2;
const ONE = 2 ** PRECISION_BITS;

function bicubic(x) {
  const a = -0.5;
  x = Math.abs(x);
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}
bicubic.support = 2;

function sinc(x) {
  if (x === 0) return 1;
  x *= Math.PI;
  return Math.sin(x) / x;
}

/** Pillow's lanczos_filter (a = 3): photo_to_pixels' resize, what the refiner compares. */
function lanczos(x) {
  return x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0;
}
lanczos.support = 3;

/**
 * Pillow's precompute_coeffs for resizing inSize -> outSize (box 0..inSize): per output index the first input
 * index and the normalised float weights. torch's antialiased bicubic (``antialias=True``) computes the same.
 */
function weights(inSize, outSize, filter = bicubic) {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1);
  const support = filter.support * filterscale;
  const rows = [];
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    const xmin = Math.max(Math.trunc(center - support + 0.5), 0);
    const xmax = Math.min(Math.trunc(center + support + 0.5), inSize) - xmin;
    const w = [];
    let total = 0;
    for (let x = 0; x < xmax; x++) {
      w.push(filter((x + xmin - center + 0.5) / filterscale));
      total += w[x];
    }
    rows.push({xmin, weights: total !== 0 ? w.map((k) => k / total) : w});
  }
  return rows;
}

/** Pillow's normalize_coeffs_8bpc: the weights in 22-bit fixed point. */
function coefficients(inSize, outSize, filter) {
  return weights(inSize, outSize, filter).map(({xmin, weights: w}) => ({xmin,
    fixed: w.map((k) => Math.trunc(k < 0 ? -0.5 + k * ONE : 0.5 + k * ONE))}));
}

function clip8(sum) {
  if (sum >= ONE * 256) return 255;
  if (sum <= 0) return 0;
  return Math.floor(sum / ONE);
}

/** One resampling pass over an interleaved RGB uint8 image along x (horizontal) or y. */
function pass(src, width, height, outSize, horizontal, filter) {
  const rows = coefficients(horizontal ? width : height, outSize, filter);
  const outW = horizontal ? outSize : width;
  const outH = horizontal ? height : outSize;
  const out = new Uint8ClampedArray(outW * outH * 3);
  const stride = horizontal ? 3 : width * 3;
  for (let y = 0; y < outH; y++) {
    for (let x = 0; x < outW; x++) {
      const {xmin, fixed} = rows[horizontal ? x : y];
      const start = horizontal ? (y * width + xmin) * 3 : (xmin * width + x) * 3;
      for (let c = 0; c < 3; c++) {
        let sum = ONE / 2;
        for (let k = 0; k < fixed.length; k++) sum += src[start + k * stride + c] * fixed[k];
        out[(y * outW + x) * 3 + c] = clip8(sum);
      }
    }
  }
  return out;
}

/** One float pass over planar channels (C planes of width x height) along x or y, as torch's antialiased bicubic. */
function passFloat(src, channels, width, height, outSize, horizontal) {
  const rows = weights(horizontal ? width : height, outSize);
  const outW = horizontal ? outSize : width;
  const outH = horizontal ? height : outSize;
  const out = new Float32Array(channels * outW * outH);
  const stride = horizontal ? 1 : width;
  for (let c = 0; c < channels; c++) {
    const inBase = c * width * height;
    const outBase = c * outW * outH;
    for (let y = 0; y < outH; y++) {
      for (let x = 0; x < outW; x++) {
        const {xmin, weights: w} = rows[horizontal ? x : y];
        const start = inBase + (horizontal ? y * width + xmin : xmin * width + x);
        let sum = 0;
        for (let k = 0; k < w.length; k++) sum += src[start + k * stride] * w[k];
        out[outBase + y * outW + x] = sum;
      }
    }
  }
  return out;
}

/** Pillow's Image.resize(size, BICUBIC) on RGB bytes; a pass is skipped when that side keeps its size. */
export function resizeBicubic(rgb, width, height, outW, outH, filter = bicubic) {
  let pixels = rgb;
  if (outW !== width) pixels = pass(pixels, width, height, outW, true, filter);
  if (outH !== height) pixels = pass(pixels, outW, height, outH, false, filter);
  return pixels;
}

/**
 * An aligned photo (ImageData) -> (1,3,size,size) in [-1,1], Pillow's LANCZOS resize: preprocess.photo_to_pixels,
 * the photo the refiner compares with each reconstruction.
 */
export function photoToPixels(image, size) {
  const rgb = resizeBicubic(rgbaToRgb(image.data), image.width, image.height, size, size, lanczos);
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = rgb[i * 3 + c] / 127.5 - 1;
  }
  return out;
}

/** RGBA (ImageData.data) -> RGB bytes, transparency composited on white with Pillow's alpha_composite rounding. */
export function rgbaToRgb(rgba) {
  const n = rgba.length / 4;
  const rgb = new Uint8ClampedArray(n * 3);
  for (let i = 0; i < n; i++) {
    const a = rgba[i * 4 + 3];
    for (let c = 0; c < 3; c++) {
      const tmp = rgba[i * 4 + c] * a * 128 + 255 * (255 - a) * 128 + (0x80 << 7);
      rgb[i * 3 + c] = (((tmp >> 8) + tmp) >> 8) >> 7;
    }
  }
  return rgb;
}

/** torchvision's Resize(int) size rule and center_crop rounding (preprocess.resized_size / crop_offsets). */
export function resizedSize(width, height, size) {
  if (width <= height) return [size, Math.max(size, Math.trunc((height * size) / width))];
  return [Math.max(size, Math.trunc((width * size) / height)), size];
}

function pyRound(x) { // Python's round(): halves to even
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/** The centred size x size crop of a w x h image (torchvision's rounding), CHW, (at(c, y, x) - mean) / std. */
function centreCropNormalised(at, w, h, size, mean, std) {
  const left = pyRound((w - size) / 2);
  const top = pyRound((h - size) / 2);
  const out = new Float32Array(3 * size * size);
  for (let c = 0; c < 3; c++) {
    for (let y = 0; y < size; y++) {
      for (let x = 0; x < size; x++) out[(c * size + y) * size + x] = (at(c, y + top, x + left) - mean[c]) / std[c];
    }
  }
  return out;
}

/**
 * ImageData -> Float32Array (3*size*size), CHW, CLIP-normalised.
 * @param {{data: Uint8ClampedArray, width: number, height: number}} image
 */
export function photoToClip(image, mean, std, size = 224) {
  const {width, height} = image;
  if (!(width >= 1 && height >= 1)) throw new Error(`the image is empty (${width}x${height})`);
  const [w, h] = resizedSize(width, height, size);
  const rgb = resizeBicubic(rgbaToRgb(image.data), width, height, w, h);
  return centreCropNormalised((c, y, x) => rgb[(y * w + x) * 3 + c] / 255, w, h, size, mean, std);
}

/**
 * Generator output (N,3,S,S) in [-1,1] -> the CLIP input of image ``index`` (3*size*size): celeblook.preprocess
 * tensor_to_clip's steps (to [0,1] without clamping, torch's antialiased bicubic resize, centre crop, normalise).
 */
export function tensorToClip(image, side, mean, std, size = 224, index = 0) {
  const plane = side * side;
  let pixels = image.subarray(index * 3 * plane, (index + 1) * 3 * plane).map((v) => (v + 1) / 2);
  const [w, h] = resizedSize(side, side, size);
  if (w !== side) pixels = passFloat(pixels, 3, side, side, w, true);
  if (h !== side) pixels = passFloat(pixels, 3, w, side, h, false);
  return centreCropNormalised((c, y, x) => pixels[(c * h + y) * w + x], w, h, size, mean, std);
}
