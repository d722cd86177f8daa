/* Fieldapp service worker: the app shell and the officer's warning pages, offline.
 * Pages: network first (waiting 2 s at most), the cached copy when the network is gone or slow
 * (the page is then told when the fresh copy arrives).
 * Versioned static files (?v=<hash>): cache first. A new release installs beside the old one
 * and takes over only when the officer taps "update" (or no page is open), so nobody is left
 * on a half-updated app. */
try {
  importScripts("/static/js/sw-push.js");  // push and notification listeners (push helper)
} catch (e) {
  console.error("sw-push.js could not be loaded", e);
}

var VERSION = "field-v1";
var STATIC_CACHE = "fieldapp-static-" + VERSION;
var PAGE_CACHE = "fieldapp-pages";
var NETWORK_WAIT_MS = 2000;
var NEVER = ["/login", "/logout", "/api/", "/sw.js", "/lang"];

self.addEventListener("install", function () {
  // Waits for the officer's tap unless no page is open (first install).
});

self.addEventListener("activate", function (event) {
  event.waitUntil(
    caches.keys().then(function (keys) {
      return Promise.all(keys.filter(function (k) {
        return k.indexOf("fieldapp-static-") === 0 && k !== STATIC_CACHE;
      }).map(function (k) { return caches["delete"](k); }));
    }).then(function () { return self.clients.claim(); })
  );
});

self.addEventListener("message", function (event) {
  var msg = event.data || {};
  if (msg.type === "SKIP_WAITING") self.skipWaiting();
  if (msg.type === "CACHE_URLS" && Array.isArray(msg.urls)) {
    event.waitUntil(Promise.all(msg.urls.map(function (url) {
      var u = new URL(url, self.location.origin);
      if (u.origin !== self.location.origin || skip(u)) return null;
      return fetch(u.href, { credentials: "same-origin" }).then(function (resp) {
        return store(u, resp);
      }).catch(function () {});
    })));
  }
});

function skip(url) {
  return NEVER.some(function (p) { return url.pathname.indexOf(p) === 0; });
}

function isVersionedStatic(url) {
  return url.pathname.indexOf("/static/") === 0 && url.searchParams.has("v");
}

function store(url, resp) {
  // Only whole, same-origin successes; a login redirect must never stand in for a page.
  if (!resp || !resp.ok || resp.redirected || resp.type !== "basic") return resp;
  if (/no-store/.test(resp.headers.get("Cache-Control") || "")) return resp;
  var page = url.pathname.indexOf("/field/") === 0 || url.pathname === "/manifest.webmanifest";
  if (url.pathname.indexOf("/static/") !== 0 && !page) return resp;
  var name = url.pathname.indexOf("/static/") === 0 ? STATIC_CACHE : PAGE_CACHE;
  var copy = resp.clone();
  caches.open(name).then(function (c) { return c.put(url.href, copy); });
  return resp;
}

function fromCache(request, ignoreSearch) {
  return caches.match(request, { ignoreSearch: !!ignoreSearch });
}

function networkFirst(event, url) {
  var network = fetch(event.request).then(function (resp) { return store(url, resp); });
  var timeout = new Promise(function (resolve) {
    setTimeout(function () { resolve(null); }, NETWORK_WAIT_MS);
  });
  var servedStale = false;
  var cachedOnTimeout = timeout.then(function () { return fromCache(event.request); });
  // When the slow network answers after the cached copy was shown, tell the page.
  event.waitUntil(network.then(function (resp) {
    if (!servedStale || !resp || !resp.ok || !event.resultingClientId) return;
    return self.clients.get(event.resultingClientId).then(function (client) {
      if (client) client.postMessage({ type: "page-updated", url: url.href });
    });
  }).catch(function () {}));
  return Promise.race([
    network,
    cachedOnTimeout.then(function (hit) {
      if (hit) servedStale = true;
      return hit || network;
    })
  ]).catch(function () {
    return fromCache(event.request).then(function (hit) {
      return hit || new Response("<!doctype html><meta charset=utf-8><title>Offline</title>" +
        "<p>离线，此页面尚未缓存。Offline: this page was not saved on this phone.</p>",
        { status: 503, headers: { "Content-Type": "text/html; charset=utf-8" } });
    });
  });
}

function cacheFirst(event, url) {
  return fromCache(event.request).then(function (hit) {
    if (hit) return hit;
    return fetch(event.request).then(function (resp) { return store(url, resp); }).catch(function () {
      // An older page may ask for an older version of the file: any version beats none.
      return fromCache(event.request, true);
    });
  });
}

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") return;
  var url = new URL(request.url);
  if (url.origin !== self.location.origin || skip(url)) return;
  if (isVersionedStatic(url)) {
    event.respondWith(cacheFirst(event, url));
    return;
  }
  event.respondWith(networkFirst(event, url));
});
