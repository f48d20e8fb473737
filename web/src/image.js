// Generator output (N,3,S,S) in [-1,1] -> ImageData, shared by the page and its worker.

/** Image ``index`` as ImageData: clamp, round((x+1)*127.5) with halves to even (celeblook.media.to_uint8). */
export function toImageData(image, size, index = 0) {
  const plane = size * size;
  const rgba = new Uint8ClampedArray(plane * 4);
  const base = index * 3 * plane;
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) {
      const x = (Math.min(1, Math.max(-1, image[base + c * plane + i])) + 1) * 127.5;
      const r = Math.round(x);
      rgba[i * 4 + c] = x % 1 === 0.5 && r % 2 ? r - 1 : r; // numpy rint: halves to even
    }
    rgba[i * 4 + 3] = 255;
  }
  return new ImageData(rgba, size, size);
}
