// The service worker: serves the page, its code and the runtime from this browser when the network is off, so
// a returning visitor keeps making faces offline. Network first (a rebuilt site is picked up at once), the
// cached copy when the network fails. Model files (.onnx) are not kept here: src/cache.js keeps them in their
// own Cache Storage, checked against the manifest's sha256. Only this site's own GETs pass through; nothing is
// sent anywhere else.

const CACHE = 'celeblook-site-v1';
const MODELS = /\.onnx$/;

self.addEventListener('install', () => self.skipWaiting());
self.addEventListener('activate', (event) => event.waitUntil(self.clients.claim()));

async function networkFirst(request) {
  const cache = await caches.open(CACHE);
  try {
    const response = await fetch(request);
    if (response.ok) await cache.put(request, response.clone());
    return response;
  } catch (err) {
    const cached = await cache.match(request);
    if (cached) return cached;
    throw err;
  }
}

/** What the page and its worker loaded before this worker controlled them (the first visit): kept now. */
async function keep(urls) {
  const cache = await caches.open(CACHE);
  await Promise.all(urls.map(async (url) => {
    if (new URL(url).origin !== location.origin || MODELS.test(new URL(url).pathname) || await cache.match(url)) return;
    const response = await fetch(url).catch(() => null);
    if (response?.ok) await cache.put(url, response);
  }));
}

self.addEventListener('message', (event) => {
  if (event.data?.type === 'keep') event.waitUntil(keep(event.data.urls).then(() => event.ports[0]?.postMessage('kept')));
});

self.addEventListener('fetch', (event) => {
  const {request} = event;
  const url = new URL(request.url);
  if (request.method !== 'GET' || url.origin !== location.origin || MODELS.test(url.pathname)) return;
  event.respondWith(networkFirst(request));
});
