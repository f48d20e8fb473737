// The page's Web Worker: hosts the engine (src/engine.js) so downloads and inference never block the page.
//
// Messages in: {type: 'init', base, backend, threads}, {type: 'call', id, method, args}, {type: 'cancel', id?}.
// Messages out: {type: 'ready', info} | {type: 'failed', message}, {type: 'result', id, value},
// {type: 'error', id, message, cancelled}, {type: 'progress', id, done, total, label} (per frame),
// {type: 'download', file, loaded, total, cached}.

import {Cancelled, createEngine} from './engine.js';

let engine = null;
const active = new Set();
const cancelled = new Set();
// the argument index of the options object of calls that render frame by frame (they take a job: progress, cancel)
const FRAMED = {morphGif: 2, sweepGif: 2};

function jobFor(id) {
  return {
    async step(done, total, label) {
      postMessage({type: 'progress', id, done, total, label});
      await new Promise((resolve) => { setTimeout(resolve, 0); }); // let a 'cancel' message in between frames
      if (cancelled.has(id)) throw new Cancelled();
    },
  };
}

async function call({id, method, args}) {
  active.add(id);
  try {
    if (!Object.hasOwn(engine, method) || typeof engine[method] !== 'function') throw new Error(`unknown method ${method}`);
    if (method in FRAMED) args[FRAMED[method]] = {...(args[FRAMED[method]] ?? {}), job: jobFor(id)};
    const value = await engine[method](...args);
    postMessage({type: 'result', id, value});
  } catch (err) {
    postMessage({type: 'error', id, message: err?.message ?? String(err), cancelled: err instanceof Cancelled});
  } finally {
    active.delete(id);
    cancelled.delete(id);
  }
}

onmessage = async ({data}) => {
  if (data.type === 'init') {
    try {
      engine = await createEngine({base: data.base, backend: data.backend, threads: data.threads,
        onDownload: (d) => postMessage({type: 'download', ...d})});
      postMessage({type: 'ready', info: engine.info()});
    } catch (err) {
      postMessage({type: 'failed', message: err?.message ?? String(err)});
    }
  } else if (data.type === 'call') {
    call(data);
  } else if (data.type === 'cancel') {
    for (const id of data.id === undefined ? active : [data.id]) cancelled.add(id);
  }
};
