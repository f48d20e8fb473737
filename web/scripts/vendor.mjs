// npm run build: copy the runtime files the page loads into web/vendor/ (served with the page; no CDN).
import {copyFileSync, mkdirSync, rmSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

const web = join(dirname(fileURLToPath(import.meta.url)), '..');
const modules = join(web, 'node_modules'); // the packages export no package.json subpath to resolve
const ortDist = join(modules, 'onnxruntime-web', 'dist');
const gifenc = join(modules, 'gifenc', 'dist');

// ort.webgpu: WebGPU EP + wasm (asyncify build); ort.wasm: CPU only, a smaller download when there is no GPU
const files = {
  ort: [ortDist, ['ort.webgpu.min.mjs', 'ort-wasm-simd-threaded.asyncify.mjs', 'ort-wasm-simd-threaded.asyncify.wasm',
    'ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm']],
  gifenc: [gifenc, ['gifenc.esm.js']],
};
const out = join(web, 'vendor');
rmSync(out, {recursive: true, force: true});
for (const [name, [from, list]] of Object.entries(files)) {
  mkdirSync(join(out, name), {recursive: true});
  for (const file of list) copyFileSync(join(from, file), join(out, name, file));
}
console.log(`copied ${Object.values(files).reduce((n, [, l]) => n + l.length, 0)} runtime files into ${out}`);
