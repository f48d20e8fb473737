// Identity distance in the page, as celeblook/photo/identity.py measures it in Python: is the face in a result
// still the person in the photo? face-api's face recognition net is a port of dlib's ResNet face descriptor (the
// same 128 numbers, the same reading of their Euclidean distance: the same person below site.json's
// limits.same_person, dlib's 0.6). Its 6.4 MB are fetched the first time a distance is measured, then kept with
// the other model files (src/cache.js, sha256-checked), so it works offline too.
//
// The face is the largest one the alignment's detector finds (src/align.js: SSD boxes, refined 68 landmarks).
// Its chip is face-api's own recipe (FaceLandmarks.alignDlib: a square of side eye-to-mouth / 0.45 around the
// centre of the eyes and the mouth, 0.43 of the side above it), turned upright along the eye line as dlib's
// chips are, and rendered at the net's 150 px with src/align.js's supersampled crop (no aliasing from large photos).

import {loadNet, mean, renderCrop} from './align.js';

const NET = 'face_recognition_model';
const CHIP = 150; // the net's input side
const CHIP_SCALE = 0.45; // face-api's alignDlib: side = mean eye-to-mouth distance / this
const CHIP_ABOVE = 0.43; // and the centre of eyes and mouth lies this far down the chip

/** The chip's quad (TL, BL, BR, TR, as src/align.js's crops) for a face's 68 landmarks. */
function chipQuad(landmarks) {
  const eyes = [mean(landmarks.slice(36, 42)), mean(landmarks.slice(42, 48))];
  const mouth = mean(landmarks.slice(48, 68));
  const side = eyes.reduce((s, e) => s + Math.hypot(mouth[0] - e[0], mouth[1] - e[1]), 0) / 2 / CHIP_SCALE;
  const ref = mean([...eyes, mouth]);
  const along = [eyes[1][0] - eyes[0][0], eyes[1][1] - eyes[0][1]];
  const norm = Math.hypot(...along);
  const x = [along[0] / norm * side, along[1] / norm * side]; // the chip's sides: along the eye line and down
  const y = [-x[1], x[0]];
  const tl = [ref[0] - 0.5 * x[0] - CHIP_ABOVE * y[0], ref[1] - 0.5 * x[1] - CHIP_ABOVE * y[1]];
  return [tl, [tl[0] + y[0], tl[1] + y[1]], [tl[0] + x[0] + y[0], tl[1] + x[1] + y[1]], [tl[0] + x[0], tl[1] + x[1]]];
}

/**
 * identity(a, b) for two ImageData faces -> {distance, sameperson}, or {distance: null, reason} when a face is
 * missing. ``loadDetector``: resolves to src/align.js's detector, loaded; ``entries``: site.json's identity
 * files, fetched through ``loadFile``; ``samePerson``: the threshold.
 */
export function createIdentity({loadDetector, entries, loadFile, samePerson}) {
  let net = null;
  const getNet = async (detector) => {
    net ??= (async () => {
      if (!entries.length) throw new Error('this site has no face recognition model: rebuild it with python -m celeblook web build');
      const faceapi = await detector.faceapi();
      await loadNet(faceapi, faceapi.nets.faceRecognitionNet, NET, entries, loadFile);
      return faceapi;
    })();
    net.catch(() => { net = null; });
    return net;
  };

  /** The descriptor (Float32Array(128)) of the image's largest face, or null when no face is found. */
  async function describe(detector, image) {
    const [face] = await detector.detect(image);
    if (!face) return null;
    const faceapi = await getNet(detector);
    const chip = renderCrop(image, chipQuad(face.landmarks), CHIP);
    const rgb = Int32Array.from({length: CHIP * CHIP * 3}, (_, i) => chip.data[Math.floor(i / 3) * 4 + (i % 3)]);
    const input = faceapi.tf.tensor3d(rgb, [CHIP, CHIP, 3], 'int32');
    try {
      return await faceapi.nets.faceRecognitionNet.computeFaceDescriptor(input);
    } finally {
      input.dispose();
    }
  }

  return {
    /** The descriptor of the image's largest face (Float32Array(128)), or null: for measurements of many pairs. */
    describe: async (image) => describe(await loadDetector(), image),
    async identity(a, b) {
      const detector = await loadDetector();
      const descriptors = [];
      for (const [image, which] of [[a, 'the photo'], [b, 'the result']]) {
        if (!(image instanceof ImageData)) throw new Error(`identity needs two ImageData faces: ${which} is not one`);
        const descriptor = await describe(detector, image);
        if (!descriptor) return {distance: null, reason: `no face found in ${which}`};
        descriptors.push(descriptor);
      }
      const distance = Math.hypot(...descriptors[0].map((v, i) => v - descriptors[1][i]));
      return {distance, sameperson: distance < samePerson};
    },
  };
}

/** One line for people, as celeblook.photo.identity.IdentityDistance.describe: "identity distance 0.31: same person (below 0.6)". */
export function describeIdentity({distance, sameperson, reason}, samePerson) {
  if (distance === null) return `identity distance: not measured (${reason})`;
  return `identity distance ${distance.toFixed(2)}: ${sameperson ? 'same person' : 'a different person'} (${sameperson ? 'below' : 'not below'} ${samePerson})`;
}
