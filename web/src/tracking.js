// Face tracking for the live camera (in the worker): detect once, then follow the landmarks from frame to frame
// with one landmark pass on the square around the last frame's (src/align.js follow), and detect again when the
// face is lost or every ``redetectEvery`` frames (a larger face may have come in: the largest is chosen, as in
// a photo). The detector runs on a few frames only; the landmark pass (a 112 px net) on every frame.

import {ffhqFace} from './align.js';

const mean = (points) => [points.reduce((s, p) => s + p[0], 0) / points.length, points.reduce((s, p) => s + p[1], 0) / points.length];

/** The landmarks' larger extent and centre. */
function extent(points) {
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  return {side: Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys)),
    centre: [(Math.min(...xs) + Math.max(...xs)) / 2, (Math.min(...ys) + Math.max(...ys)) / 2]};
}

// Followed landmarks that jump or change size by more than these between frames (fractions of the face's
// extent), or whose eyes span under MIN_EYE_SPAN of the extent (a frontal face: ~0.45), or whose centre leaves
// the frame, mean the face was lost: detect again.
const MAX_JUMP = 0.5;
const MAX_RESIZE = 1.5;
const MIN_EYE_SPAN = 0.25;

/** Whether ``next`` (followed landmarks) still is the face ``last`` was, in a frame of width x height. */
export function plausible(last, next, width, height) {
  const a = extent(last);
  const b = extent(next);
  const jump = Math.hypot(b.centre[0] - a.centre[0], b.centre[1] - a.centre[1]) / a.side;
  const resize = Math.max(b.side / a.side, a.side / b.side);
  const [left, right] = [mean(next.slice(36, 42)), mean(next.slice(42, 48))];
  const eyes = Math.hypot(right[0] - left[0], right[1] - left[1]) / b.side;
  const inside = b.centre[0] >= 0 && b.centre[1] >= 0 && b.centre[0] <= width && b.centre[1] <= height;
  return jump <= MAX_JUMP && resize <= MAX_RESIZE && eyes >= MIN_EYE_SPAN && inside && b.side >= 16;
}

export class FaceTracker {
  /**
   * ``detector``: src/align.js's (detect(ImageData, options), follow(source, points)); ``detect``: its options when
   * the face is looked for (which detector; the follow pass on the next frame refines the landmarks anyway).
   */
  constructor(detector, {redetectEvery = 60, detect = {detector: 'ssd', refine: false}} = {}) {
    this.detector = detector;
    this.redetectEvery = redetectEvery;
    this.detectOptions = detect;
    this.canvas = null;
    this.reset();
  }

  reset() {
    this.points = null;
    this.sinceDetection = 0;
  }

  /**
   * The face in ``frame`` (an ImageBitmap): {face (the align CLI's format: quad, landmarks, ...), detected (the
   * detector ran)}, or null when no face is in view.
   */
  async locate(frame) {
    if (this.points && this.sinceDetection < this.redetectEvery) {
      const next = await this.detector.follow(frame, this.points);
      if (plausible(this.points, next, frame.width, frame.height)) {
        this.points = next;
        this.sinceDetection += 1;
        return {face: ffhqFace(next), detected: false};
      }
    }
    const [found] = await this.detector.detect(this.pixels(frame), this.detectOptions);
    if (!found) {
      this.reset();
      return null;
    }
    this.points = found.landmarks;
    this.sinceDetection = 0;
    return {face: found, detected: true};
  }

  /** The frame's pixels for the detector. */
  pixels(frame) {
    if (this.canvas?.width !== frame.width || this.canvas?.height !== frame.height) {
      this.canvas = new OffscreenCanvas(frame.width, frame.height);
    }
    const context = this.canvas.getContext('2d', {willReadFrequently: true});
    context.drawImage(frame, 0, 0);
    return context.getImageData(0, 0, frame.width, frame.height);
  }
}
