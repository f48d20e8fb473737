// npm run build: copy the runtime files the page loads into web/vendor/ (served with the page; no CDN).
import {copyFileSync, mkdirSync, rmSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const modules = join(web, 'node_modules'); // the packages export no package.json subpath to resolve
const ortDist = join(modules, 'onnxruntime-web', 'dist');
const faceApi = join(modules, '@vladmandic', 'face-api');
const tfWasm = join(modules, '@tensorflow', 'tfjs-backend-wasm', 'dist');

// ort.webgpu: WebGPU EP + wasm (asyncify build); ort.wasm: CPU only, a smaller download when there is no GPU.
// face-api (MIT) bundles TensorFlow.js and ships its trained models: the SSD face detector and the 68-point
// landmark net are the two alignment uses; its face recognition net (the port of dlib's ResNet descriptor) goes in
// a folder of its own: the page fetches it only when it measures an identity distance. tfjs-backend-wasm (Apache-2.0) gives TensorFlow.js its wasm kernels,
// ~25x faster than its JavaScript CPU backend here (the face-api bundle has the backend's JS but not its .wasm).
const files = {
  ort: [ortDist, ['ort.webgpu.min.mjs', 'ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm',
    'ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm']],
  gifenc: [join(modules, 'gifenc', 'dist'), ['gifenc.esm.js']],
  // mediabunny (MPL-2.0): MP4 / WebM muxing of the browser's WebCodecs output (src/clips.js), one ES module
  mediabunny: [join(modules, 'mediabunny', 'dist', 'bundles'), ['mediabunny.min.mjs']],
  'face-api': [join(faceApi, 'dist'), ['face-api.esm.js']],
  'face-api/model': [join(faceApi, 'model'), ['ssd_mobilenetv1_model-weights_manifest.json', 'ssd_mobilenetv1_model.bin',
    'face_landmark_68_model-weights_manifest.json', 'face_landmark_68_model.bin']],
  'face-api/identity': [join(faceApi, 'model'), ['face_recognition_model-weights_manifest.json', 'face_recognition_model.bin']],
  'tfjs-wasm': [tfWasm, ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']],
  // the licence texts the packages ship (onnxruntime-web, MIT, and tfjs-backend-wasm ship none: see web/README.md)
  licenses: [modules, [[join('@vladmandic', 'face-api', 'LICENSE'), 'face-api.LICENSE.txt'],
    [join('gifenc', 'LICENSE.md'), 'gifenc.LICENSE.txt'], [join('mediabunny', 'LICENSE'), 'mediabunny.LICENSE.txt']]],
};

const out = join(web, 'vendor');
rmSync(out, {recursive: true, force: true});
let count = 0;
for (const [name, [from, list]] of Object.entries(files)) {
  mkdirSync(join(out, name), {recursive: true});
  for (const file of list) {
    const [src, dst] = Array.isArray(file) ? file : [file, file];
    copyFileSync(join(from, src), join(out, name, dst));
    count += 1;
  }
}
console.log(`copied ${count} runtime files into ${out}`);
