// Model files kept across visits in Cache Storage, each checked against the sha256 its manifest gives.
//
// An entry is stored under the file's URL plus its sha256 (a query the server never sees), so a rebuilt site
// with new models never mixes with old ones, and a cached file is used only after its bytes hash to the
// manifest's value: a corrupted or truncated entry is deleted and downloaded again. Works in the page and in
// its worker. Without Cache Storage (an insecure origin, a private window that refuses it) files are simply
// downloaded on every visit.

export const STORE = 'celeblook-models-v1';

function store() {
  return typeof caches === 'undefined' ? Promise.resolve(null) : caches.open(STORE).catch(() => null);
}

export async function sha256Hex(bytes) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, '0')).join('');
}

const cacheKey = (url, sha256) => `${url}${url.includes('?') ? '&' : '?'}celeblook-sha256=${sha256}`;

/** GET a file with progress callbacks onBytes(loaded, total); returns its bytes. */
async function download(url, expectedBytes, onBytes) {
  let response;
  try {
    response = await fetch(url, {mode: 'cors'});
  } catch (err) {
    throw new Error(`cannot download ${url}: ${err.message} (offline, or the models host sends no CORS headers)`);
  }
  if (!response.ok) throw new Error(`cannot download ${url}: HTTP ${response.status}`);
  const total = Number(response.headers.get('content-length')) || expectedBytes || 0;
  const reader = response.body.getReader();
  const chunks = [];
  let loaded = 0;
  for (;;) {
    const {done, value} = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    onBytes(loaded, total);
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const chunk of chunks) { bytes.set(chunk, offset); offset += chunk.length; }
  return bytes;
}

/**
 * The bytes of a manifest file: from the cache when present and intact, else downloaded, checked and cached.
 * onBytes(loaded, total, fromCache) reports progress.
 */
export async function fetchVerified(url, {file, sha256, bytes: expected}, onBytes = () => {}) {
  const cache = await store();
  const key = cacheKey(url, sha256);
  if (cache) {
    const hit = await cache.match(key);
    if (hit) {
      const bytes = new Uint8Array(await hit.arrayBuffer());
      if (await sha256Hex(bytes) === sha256) {
        onBytes(bytes.length, bytes.length, true);
        return bytes;
      }
      await cache.delete(key);
    }
  }
  const bytes = await download(url, expected, (loaded, total) => onBytes(loaded, total, false));
  const got = await sha256Hex(bytes);
  if (got !== sha256) {
    throw new Error(`${file} does not match the sha256 in its manifest (got ${got.slice(0, 12)}…): the site and its `
      + 'models are from different builds; rebuild the site');
  }
  if (cache) {
    const headers = {'content-type': 'application/octet-stream', 'content-length': String(bytes.length)};
    await cache.put(key, new Response(bytes, {headers})).catch(() => {}); // over quota: keep working uncached
  }
  return bytes;
}

/** What is cached: [{file, sha256, bytes}] (file = the URL's last path segment). */
export async function cachedFiles() {
  const cache = await store();
  if (!cache) return [];
  const out = [];
  for (const request of await cache.keys()) {
    const url = new URL(request.url);
    const response = await cache.match(request);
    out.push({file: decodeURIComponent(url.pathname.split('/').pop()), sha256: url.searchParams.get('celeblook-sha256'),
      bytes: Number(response.headers.get('content-length')) || 0});
  }
  return out;
}

/** Forget every cached model file. */
export async function clearCache() {
  return typeof caches === 'undefined' ? false : caches.delete(STORE);
}
