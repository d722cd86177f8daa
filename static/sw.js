/* Fieldapp service worker: the app shell and the officer's warning pages, offline.
 * Officer pages (/field/...) opened again: the saved copy at once, the fresh one fetched in the
 * background and saved; the page is told when it differs (it swaps itself in when the officer
 * is idle). A reload, or a page not saved yet: network first (waiting 2 s at most), then the
 * saved copy when the network is gone or slow (the page is then told when the fresh copy arrives).
 * Saved pages belong to one officer: a login or logout wipes them, and a background answer that
 * is no longer a page for this session (a redirect to the login) wipes them too.
 * Versioned static files (?v=<hash>): cache first. A new release installs beside the old one
 * and takes over only when the officer taps "update" (or no page is open), so nobody is left
 * on a half-updated app. */
try {
  // The shared CSRF/JSON/queue helpers, then the push and notification listeners.
  importScripts("/static/js/fieldnet.js", "/static/js/sw-push.js");
} catch (e) {
  console.error("sw-push.js could not be loaded", e);
}

var VERSION = "field-v1";
var STATIC_CACHE = "fieldapp-static-" + VERSION;
var PAGE_CACHE = "fieldapp-pages";
var NETWORK_WAIT_MS = 2000;
var NEVER = ["/login", "/logout", "/api/", "/sw.js", "/lang"];
var FRESH_MS = 10000;
// Pages re-saved moments ago (url -> time): the page swapping itself in needs no second fetch.
var freshAt = {};
// A login or logout wipes the saved pages; page navigations wait for that wipe to finish so the
// page after the login redirect can never be the previous officer's saved copy.
var wiping = Promise.resolve();

function wipePages() {
  freshAt = {};
  wiping = caches["delete"](PAGE_CACHE).catch(function () {});
  return wiping;
}

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

function isOfficerPage(request, url) {
  return request.mode === "navigate" && url.pathname.indexOf("/field/") === 0;
}

// Officer pages are HTML; anything else under /field/ (a fresh CSRF token) is never saved.
// Their `Cache-Control: no-store` keeps them out of the browser's HTTP cache; the pages saved
// here are the offline copy, wiped at login and logout.
function isHtml(resp) {
  return /^text\/html/.test(resp.headers.get("Content-Type") || "");
}

function store(url, resp) {
  // Only whole, same-origin successes; a login redirect must never stand in for a page.
  if (!resp || !resp.ok || resp.redirected || resp.type !== "basic") return resp;
  var page = (url.pathname.indexOf("/field/") === 0 && isHtml(resp)) ||
    url.pathname === "/manifest.webmanifest";
  if (url.pathname.indexOf("/static/") !== 0 && !page) return resp;
  var name = url.pathname.indexOf("/static/") === 0 ? STATIC_CACHE : PAGE_CACHE;
  var copy = resp.clone();
  caches.open(name).then(function (c) { return c.put(url.href, copy); });
  return resp;
}

function fromCache(request, ignoreSearch) {
  return caches.match(request, { ignoreSearch: !!ignoreSearch });
}

// What differs on every render of the same page (tokens, fresh ids, "now") is not news.
function normalise(html) {
  return html
    .replace(/(name="(?:csrf_token|client_id)" value=")[^"]*/g, "$1")
    .replace(/(<meta name="csrf-token" content=")[^"]*/g, "$1")
    .replace(/value="[^"]*"( data-now)/g, "$1")
    .replace(/(last_event_id=)\d+/g, "$1");
}

function tell(event, msg) {
  var id = event.resultingClientId;
  if (!id) return null;
  // The new page may not exist yet when a fast network answers: look again a few times.
  function attempt(n) {
    return self.clients.get(id).then(function (client) {
      if (client) return client.postMessage(msg);
      if (n > 0) return new Promise(function (r) { setTimeout(r, 300); }).then(function () { return attempt(n - 1); });
    });
  }
  return attempt(10);
}

function revalidate(event, url, shown) {
  return fetch(event.request).then(function (resp) {
    if (resp.type === "opaqueredirect" || resp.redirected || resp.status === 401) {
      // No longer this officer's page (the session ended): nothing saved may be shown again.
      return wipePages().then(function () { return tell(event, { type: "page-gone", url: url.href }); });
    }
    if (resp.status === 404 || resp.status === 410) {
      return caches.open(PAGE_CACHE).then(function (c) { return c["delete"](url.href); }).then(function () {
        return tell(event, { type: "page-updated", url: url.href });
      });
    }
    if (!resp.ok || resp.type !== "basic" || !isHtml(resp)) return null;
    var copy = resp.clone();
    return Promise.all([shown.text(), resp.text()]).then(function (texts) {
      return caches.open(PAGE_CACHE).then(function (c) { return c.put(url.href, copy); }).then(function () {
        if (normalise(texts[0]) === normalise(texts[1])) return null;
        freshAt[url.href] = Date.now();
        return tell(event, { type: "page-updated", url: url.href, fresh: true });
      });
    });
  }).catch(function () { /* offline or cut off: the saved copy stays */ });
}

// The saved copy without waiting for the network; the fresh one fetched behind it.
function staleWhileRevalidate(event, url) {
  return wiping.then(function () { return fromCache(event.request); }).then(function (hit) {
    if (!hit) return networkFirst(event, url);
    var saved = freshAt[url.href];
    delete freshAt[url.href];
    if (!saved || Date.now() - saved > FRESH_MS) event.waitUntil(revalidate(event, url, hit.clone()));
    return hit;
  });
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
  var url = new URL(request.url);
  if (url.origin === self.location.origin && (url.pathname.indexOf("/login") === 0 || url.pathname.indexOf("/logout") === 0) && request.method === "POST") {
    event.waitUntil(wipePages());
  }
  if (request.method !== "GET") return;
  if (url.origin !== self.location.origin || skip(url)) return;
  // A page refreshing its regions after a change wants the server's state, not a saved copy
  // (it saves the fresh copy itself).
  if (request.headers.get("X-Fieldapp-Refresh")) return;
  if (isVersionedStatic(url)) {
    event.respondWith(cacheFirst(event, url));
    return;
  }
  // A reload asks for the network's copy (offline it still falls back to the saved one).
  if (isOfficerPage(request, url) && request.cache === "default") {
    event.respondWith(staleWhileRevalidate(event, url));
    return;
  }
  event.respondWith(networkFirst(event, url));
});
