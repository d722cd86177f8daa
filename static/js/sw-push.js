/* Push listeners for the service worker; static/sw.js loads this with importScripts().
 *
 * On 'push': show the notification (title, body and button labels come translated in the
 * payload; no name or phone is ever in it) and post a delivery receipt. The receipt carries
 * the payload's signed `receipt_token`, because a service worker cannot read the page's CSRF
 * meta tag; the server accepts that token instead of session + CSRF.
 * On 'notificationclick': Accept posts an `accept` entry to /api/v1/sync (queued in IndexedDB
 * "fieldapp-queue"/"entries" when offline, the same store the page's offline queue replays);
 * Open (or a tap on the notification) focuses or opens the warning page.
 */
(function () {
  "use strict";

  var QUEUE_STORE = self.FieldNet.QUEUE_STORE;

  function appUrl(path) {
    return new URL(path, self.registration.scope).href;
  }

  function readPayload(event) {
    if (!event.data) return {};
    try {
      return event.data.json();
    } catch (e) {
      return {};
    }
  }

  function sendReceipt(data) {
    if (!data.message_id) return Promise.resolve();
    return fetch(appUrl("api/v1/push/receipts"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ message_id: data.message_id, token: data.receipt_token || null }),
    }).catch(function () {
      /* No network: the server falls back to SMS, which is what it should do. */
    });
  }

  function tellOpenPages(data) {
    return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (list) {
      list.forEach(function (client) {
        client.postMessage({ type: "fieldapp-push", payload: data });
      });
    });
  }

  self.addEventListener("push", function (event) {
    var data = readPayload(event);
    var labels = data.actions || {};
    var actions = [];
    if (labels.accept && data.warning_id) actions.push({ action: "accept", title: labels.accept });
    if (labels.open) actions.push({ action: "open", title: labels.open });
    var urgent = data.kind === "offer" || data.kind === "help";
    var shown = self.registration.showNotification(data.title || "", {
      body: data.body || "",
      // The same warning replaces its notification instead of stacking a second one.
      tag: data.tag || data.message_id || "fieldapp",
      renotify: urgent,
      requireInteraction: urgent,
      vibrate: urgent ? [400, 150, 400, 150, 400] : [200],
      icon: appUrl("static/icons/icon-192.png"),
      badge: appUrl("static/icons/icon-192.png"),
      actions: actions,
      data: {
        url: data.url || appUrl("field/"),
        warning_id: data.warning_id,
        kind: data.kind,
        message_id: data.message_id,
        user_id: data.user_id || null,
      },
    });
    event.waitUntil(Promise.all([shown, sendReceipt(data), tellOpenPages(data)]));
  });

  function uuid() {
    if (self.crypto && self.crypto.randomUUID) return self.crypto.randomUUID();
    var b = self.crypto.getRandomValues(new Uint8Array(16));
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    var h = Array.prototype.map.call(b, function (x) { return (x + 256).toString(16).slice(1); }).join("");
    return h.slice(0, 8) + "-" + h.slice(8, 12) + "-" + h.slice(12, 16) + "-" + h.slice(16, 20) + "-" + h.slice(20);
  }

  function queueEntry(entry) {
    return self.FieldNet.openQueue().then(function (db) {
      return new Promise(function (resolve, reject) {
        var tx = db.transaction(QUEUE_STORE, "readwrite");
        tx.objectStore(QUEUE_STORE).put(entry);
        tx.oncomplete = function () { db.close(); resolve(); };
        tx.onerror = function () { db.close(); reject(tx.error); };
      });
    });
  }

  function csrfToken() {
    // The SW cannot read the page's meta tag; it reads it from a fresh app page instead.
    return fetch(appUrl("field/"), { credentials: "same-origin" })
      .then(function (r) { return r.ok ? r.text() : ""; })
      .then(function (html) {
        var m = /<meta name="csrf-token" content="([^"]+)"/.exec(html);
        return m ? m[1] : "";
      });
  }

  function accept(data) {
    var entry = {
      client_id: uuid(),
      kind: "accept",
      warning_id: data.warning_id,
      data: {},
      recorded_at: new Date().toISOString(),
      user_id: data.user_id || null,
    };
    return csrfToken()
      .then(function (token) {
        return self.FieldNet.postJSON(appUrl("api/v1/sync"), { entries: [entry] }, "POST", token);
      })
      .then(function (r) {
        if (!r.ok) throw new Error("sync " + r.status);
      })
      .catch(function () {
        // Offline or logged out: the entry waits in the queue and is replayed later, once.
        return queueEntry(entry);
      });
  }

  function focusOrOpen(url) {
    return self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (list) {
      for (var i = 0; i < list.length; i++) {
        if (list[i].url === url && "focus" in list[i]) return list[i].focus();
      }
      for (var j = 0; j < list.length; j++) {
        if ("navigate" in list[j] && "focus" in list[j]) {
          return list[j].navigate(url).then(function (c) { return c && c.focus(); });
        }
      }
      return self.clients.openWindow(url);
    });
  }

  self.addEventListener("notificationclick", function (event) {
    var data = event.notification.data || {};
    event.notification.close();
    var url = new URL(data.url || "field/", self.registration.scope).href;
    if (event.action === "accept" && data.warning_id) {
      event.waitUntil(accept(data).then(function () { return focusOrOpen(url); }));
      return;
    }
    event.waitUntil(focusOrOpen(url));
  });
})();
