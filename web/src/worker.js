// The page's Web Worker: opens the sessions, builds the processors, the engine, the pipeline and the API over
// them, and dispatches calls, so downloads and inference never block the page.
//
// Messages in: {type: 'init', base, backend, threads}, {type: 'call', id, method, args}, {type: 'cancel', id?}.
// ``method``: 'pipeline.<verb>' (randomFaces, invert, textToFace, faceOf, edit, sweep, morph) or an API call
// (src/api.js). Messages out: {type: 'ready', info} | {type: 'failed', message}, {type: 'result', id, value},
// {type: 'error', id, message, cancelled}, {type: 'progress', id, done, total, label} (per frame),
// {type: 'download', file, loaded, total, cached}.

import {createApi} from './api.js';
import {createEngine} from './engine.js';
import {Cancelled, Pipeline} from './pipeline.js';
import {createProcessors} from './processors.js';
import {openSessions} from './sessions.js';

const VERBS = ['randomFaces', 'invert', 'textToFace', 'faceOf', 'edit', 'sweep', 'morph'];
// the argument index of the options object of calls that render frame by frame (they take progress and stop)
const FRAMED = {'pipeline.sweep': 2, 'pipeline.morph': 2, morphGif: 2, sweepGif: 2, morphClip: 2, sweepClip: 2};

let calls = null; // method name -> function
const active = new Set();
const cancelled = new Set();

/** Progress for call ``id``: a message per frame, and the point between frames where a cancel takes effect. */
function progressFor(id) {
  return async (done, total, label) => {
    postMessage({type: 'progress', id, done, total, label});
    await new Promise((resolve) => { setTimeout(resolve, 0); }); // let a 'cancel' message in between frames
    if (cancelled.has(id)) throw new Cancelled();
  };
}

async function call({id, method, args}) {
  active.add(id);
  try {
    if (!Object.hasOwn(calls, method)) throw new Error(`unknown method ${method}`);
    if (method in FRAMED) args[FRAMED[method]] = {...(args[FRAMED[method]] ?? {}), progress: progressFor(id)};
    postMessage({type: 'result', id, value: await calls[method](...args)});
  } catch (err) {
    postMessage({type: 'error', id, message: err?.message ?? String(err), cancelled: err instanceof Cancelled});
  } finally {
    active.delete(id);
    cancelled.delete(id);
  }
}

async function init({base, backend, threads}) {
  const sessions = await openSessions({base, backend, threads, onDownload: (d) => postMessage({type: 'download', ...d})});
  const processors = createProcessors(sessions, base);
  const engine = createEngine(sessions, processors);
  const pipeline = new Pipeline(engine, processors, sessions.site.limits);
  const api = createApi(sessions, processors, engine, pipeline);
  calls = {...api, ...Object.fromEntries(VERBS.map((verb) => [`pipeline.${verb}`, (...args) => pipeline[verb](...args)]))};
  // what this worker loaded (runtime, wasm, site files), for the service worker to keep for offline visits
  calls.resources = () => performance.getEntriesByType('resource').map((entry) => entry.name);
  return api.info();
}

onmessage = async ({data}) => {
  if (data.type === 'init') {
    try {
      postMessage({type: 'ready', info: await init(data)});
    } catch (err) {
      postMessage({type: 'failed', message: err?.message ?? String(err)});
    }
  } else if (data.type === 'call') {
    call(data);
  } else if (data.type === 'cancel') {
    for (const id of data.id === undefined ? active : [data.id]) cancelled.add(id);
  }
};
