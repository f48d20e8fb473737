// The camera coach: what to change before the shot, from the landmarks align() already gives (68 points, iBUG
// order) and the frame's pixels. Thresholds keep the face where the FFHQ crop and the inversion work best: big
// enough to have detail, inside the frame with margin for the crop, level, frontal and lit.

const MIN_EYE_SPAN = 0.12; // eye distance / the frame's shorter side (a face this small loses detail in the crop)
const MAX_OFF_CENTRE = 0.15; // face centre's distance from the frame centre, per side length
const MAX_TILT_DEG = 8; // eye line from horizontal
const MAX_TURN = 0.2; // nose tip's sideways offset from the eyes' midpoint, per eye distance
const MIN_LUMA = 70; // mean brightness (0-255) inside the face box

const mean = (points) => points.reduce(([x, y], [px, py]) => [x + px / points.length, y + py / points.length], [0, 0]);

/** Mean BT.601 luma of ImageData inside box [x0, y0, x1, y1] (every 2nd pixel: enough for a mean). */
function luma(image, [x0, y0, x1, y1]) {
  const {data, width, height} = image;
  let sum = 0;
  let n = 0;
  for (let y = Math.max(0, Math.floor(y0)); y < Math.min(height, y1); y += 2) {
    for (let x = Math.max(0, Math.floor(x0)); x < Math.min(width, x1); x += 2) {
      const i = 4 * (y * width + x);
      sum += 0.299 * data[i] + 0.587 * data[i + 1] + 0.114 * data[i + 2];
      n += 1;
    }
  }
  return n ? sum / n : 0;
}

/**
 * Advice for one camera frame: {ready, advice: [short sentences]}; ``face`` is align()'s first face (or
 * undefined when none was found), ``image`` the frame's ImageData the landmarks are in.
 */
export function coach(face, image) {
  if (!face) return {ready: false, advice: ['No face in view: look at the camera.']};
  const {width, height} = image;
  const points = face.landmarks;
  const [left, right] = [mean(points.slice(36, 42)), mean(points.slice(42, 48))];
  const eyeSpan = Math.hypot(right[0] - left[0], right[1] - left[1]);
  const centre = mean([left, right, points[48], points[54]]);
  const advice = [];
  if (eyeSpan < MIN_EYE_SPAN * Math.min(width, height)) advice.push('Too far: come closer.');
  const [dx, dy] = [(centre[0] - width / 2) / width, (centre[1] - height / 2) / height];
  if (Math.max(Math.abs(dx), Math.abs(dy)) > MAX_OFF_CENTRE) advice.push('Off centre: move your face to the middle.');
  const tilt = (Math.atan2(right[1] - left[1], right[0] - left[0]) * 180) / Math.PI;
  if (Math.abs(tilt) > MAX_TILT_DEG) advice.push('Tilted: hold your head level.');
  const turn = (points[30][0] - (left[0] + right[0]) / 2) / eyeSpan;
  if (Math.abs(turn) > MAX_TURN) advice.push('Turned: look straight at the camera.');
  if (luma(image, face.box) < MIN_LUMA) advice.push('Too dark: face a light.');
  return advice.length ? {ready: false, advice} : {ready: true, advice: ['Good: take the photo.']};
}
