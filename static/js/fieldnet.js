/* Shared by the pages and the service worker (importScripts): the CSRF token, JSON posts, and
 * the offline queue's IndexedDB ("fieldapp-queue"/"entries"), opened one way everywhere.
 * Store shape: {client_id, kind, warning_id, data, recorded_at, user_id[, state, detail, queued_at]}
 */
(function (scope) {
  "use strict";
  var QUEUE_DB = "fieldapp-queue";
  var QUEUE_STORE = "entries";

  /* The page's CSRF token (a service worker has no page: it passes its own token). */
  function csrf() {
    var meta = scope.document ? scope.document.querySelector('meta[name="csrf-token"]') : null;
    return meta ? meta.content : "";
  }

  /* POST (or `method`) a JSON body with the session cookie and the CSRF header; the Response. */
  function postJSON(url, body, method, token) {
    return fetch(url, {
      method: method || "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": token == null ? csrf() : token },
      body: typeof body === "string" ? body : JSON.stringify(body || {}),
    });
  }

  /* The queue database at its current version; the store is created when missing (a new
   * database, or one made empty elsewhere) by bumping the version, so no opener ever asks for
   * an older version than another one made. */
  function openQueue(version) {
    return new Promise(function (resolve, reject) {
      var req = version ? indexedDB.open(QUEUE_DB, version) : indexedDB.open(QUEUE_DB);
      req.onupgradeneeded = function () {
        if (!req.result.objectStoreNames.contains(QUEUE_STORE)) {
          req.result.createObjectStore(QUEUE_STORE, { keyPath: "client_id" });
        }
      };
      req.onsuccess = function () {
        var db = req.result;
        if (db.objectStoreNames.contains(QUEUE_STORE)) return resolve(db);
        var next = db.version + 1;
        db.close();
        resolve(openQueue(next));
      };
      req.onerror = function () { reject(req.error); };
    });
  }

  scope.FieldNet = { QUEUE_DB: QUEUE_DB, QUEUE_STORE: QUEUE_STORE, csrf: csrf, postJSON: postJSON, openQueue: openQueue };
})(self);
