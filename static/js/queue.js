/* The offline queue: every change is stored in IndexedDB the moment it is made, with the
 * client_id it keeps forever, then sent through /api/v1/sync. A change is deleted only when
 * the server answers applied or duplicate, so nothing typed is lost and nothing is recorded
 * twice (the server dedupes by client_id; a Web Lock keeps two tabs from sending at once).
 * Store shape (shared with the push service worker, which adds "accept" entries):
 *   {client_id, kind, warning_id, data, recorded_at, user_id[, state, detail, queued_at]}
 */
(function () {
  "use strict";
  var DB_NAME = "fieldapp-queue";
  var STORE = "entries";
  var BATCH = 50;
  var root = document.getElementById("queue");
  var strings = {};
  try {
    strings = JSON.parse(document.getElementById("field-strings").textContent);
  } catch (e) { /* logged out pages have no strings */ }
  var userId = root ? Number(root.dataset.userId) : null;
  var backoffMs = 0;
  var timer = null;
  var listeners = [];

  function t(key, vars) {
    var s = strings[key] || key;
    Object.keys(vars || {}).forEach(function (k) { s = s.split("{" + k + "}").join(vars[k]); });
    return s;
  }

  function openDb() {
    return new Promise(function (resolve, reject) {
      var req = indexedDB.open(DB_NAME, 1);
      req.onupgradeneeded = function () {
        var db = req.result;
        if (!db.objectStoreNames.contains(STORE)) db.createObjectStore(STORE, { keyPath: "client_id" });
      };
      req.onsuccess = function () { resolve(req.result); };
      req.onerror = function () { reject(req.error); };
    });
  }

  function tx(mode, fn) {
    return openDb().then(function (db) {
      return new Promise(function (resolve, reject) {
        var out;
        var transaction = db.transaction(STORE, mode);
        var store = transaction.objectStore(STORE);
        out = fn(store);
        transaction.oncomplete = function () { db.close(); resolve(out && "result" in out ? out.result : out); };
        transaction.onerror = function () { db.close(); reject(transaction.error); };
        transaction.onabort = function () { db.close(); reject(transaction.error); };
      });
    });
  }

  function all() {
    return tx("readonly", function (s) { return s.getAll(); }).then(function (rows) {
      return (rows || []).filter(function (e) { return e.user_id == null || Number(e.user_id) === userId; })
        .sort(function (a, b) {
          return (a.queued_at || 0) - (b.queued_at || 0) || String(a.recorded_at).localeCompare(String(b.recorded_at));
        });
    });
  }

  function put(entry) { return tx("readwrite", function (s) { s.put(entry); }); }
  function remove(clientId) { return tx("readwrite", function (s) { s["delete"](clientId); }); }

  /* Store a new entry. `add` (not `put`) fails on an id already stored: a double tap of the
   * same form can never make two entries. */
  function create(kind, warningId, data, clientId) {
    var entry = {
      client_id: clientId || crypto.randomUUID(),
      kind: kind,
      warning_id: Number(warningId),
      data: data || {},
      recorded_at: new Date().toISOString(),
      user_id: userId,
      state: "pending",
      queued_at: Date.now()
    };
    return tx("readwrite", function (s) { s.add(entry); }).then(function () {
      render();
      return entry;
    });
  }

  function csrf() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.content : "";
  }

  function refreshCsrf() {
    return fetch(root.dataset.csrfUrl, { credentials: "same-origin", cache: "no-store" })
      .then(function (r) { return r.ok ? r.json() : null; })
      .then(function (body) {
        if (body && body.token) document.querySelector('meta[name="csrf-token"]').content = body.token;
        return !!(body && body.token);
      });
  }

  function post(entries, retried) {
    var body = JSON.stringify({
      entries: entries.map(function (e) {
        return { client_id: e.client_id, kind: e.kind, warning_id: e.warning_id, data: e.data, recorded_at: e.recorded_at };
      })
    });
    return fetch(root.dataset.syncUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrf() },
      body: body
    }).then(function (resp) {
      // An expired token (a page from the cache): fetch a fresh one and try once more.
      if (resp.status === 400 && !retried) {
        return refreshCsrf().then(function (ok) {
          if (ok) return post(entries, true);
          throw new Error("csrf");
        });
      }
      if (!resp.ok) throw new Error("http " + resp.status);
      return resp.json();
    });
  }

  function settle(results, sent) {
    var byId = {};
    sent.forEach(function (e) { byId[e.client_id] = e; });
    var applied = [];
    return results.reduce(function (p, r) {
      var entry = byId[r.client_id];
      if (!entry) return p;
      return p.then(function () {
        if (r.status === "applied" || r.status === "duplicate") {
          applied.push(r);
          return remove(entry.client_id);
        }
        entry.state = r.status;
        entry.detail = r.detail;
        return put(entry);
      });
    }, Promise.resolve()).then(function () { return { results: results, applied: applied }; });
  }

  function sendLocked() {
    return all().then(function (rows) {
      var pending = rows.filter(function (e) { return !e.state || e.state === "pending"; }).slice(0, BATCH);
      if (!pending.length) return { results: [], applied: [] };
      return post(pending).then(function (body) { return settle(body.results || [], pending); });
    });
  }

  /* Send what waits; returns {results, applied}. Rejects when the network is down. */
  function flush() {
    if (!root) return Promise.resolve({ results: [], applied: [] });
    var run = function () { return sendLocked(); };
    var p = navigator.locks ? navigator.locks.request("fieldapp-queue-send", run) : run();
    return p.then(function (out) {
      backoffMs = 0;
      render();
      listeners.forEach(function (fn) { fn(out); });
      return out;
    }, function (err) {
      schedule();
      render();
      throw err;
    });
  }

  function schedule() {
    backoffMs = Math.min(backoffMs ? backoffMs * 2 : 2000, 60000);
    clearTimeout(timer);
    timer = setTimeout(function () { flush().catch(function () {}); }, backoffMs);
  }

  function describe(e) {
    return t("kind_" + e.kind) + " · " + t("warning_no", { id: e.warning_id }) + " · " +
      new Date(e.recorded_at).toLocaleString() + " · " + t("state_" + (e.state || "pending"));
  }

  function render() {
    if (!root) return Promise.resolve();
    return all().then(function (rows) {
      var pending = rows.filter(function (e) { return !e.state || e.state === "pending"; });
      var problems = rows.length - pending.length;
      root.hidden = rows.length === 0;
      root.dataset.pending = String(pending.length);
      var text = pending.length === 1 ? t("pending_one") : t("pending_many", { n: pending.length });
      if (problems) text = (pending.length ? text + " " : "") + t("problems", { n: problems });
      document.getElementById("queue-count").textContent = text;
      var list = document.getElementById("queue-list");
      list.textContent = "";
      rows.forEach(function (e) {
        var li = document.createElement("li");
        li.className = "queue-item " + (e.state || "pending");
        li.dataset.clientId = e.client_id;
        var p = document.createElement("p");
        p.textContent = describe(e);
        li.appendChild(p);
        if (e.detail) {
          var d = document.createElement("p");
          d.className = "queue-detail";
          d.textContent = e.detail;
          li.appendChild(d);
        }
        var retry = document.createElement("button");
        retry.type = "button";
        retry.className = "small";
        retry.textContent = t("retry");
        retry.addEventListener("click", function () {
          e.state = "pending";
          e.detail = null;
          put(e).then(function () { return flush(); }).catch(function () {});
        });
        var discard = document.createElement("button");
        discard.type = "button";
        discard.className = "small danger";
        discard.textContent = t("discard");
        discard.addEventListener("click", function () {
          if (window.confirm(t("confirm_discard"))) remove(e.client_id).then(render);
        });
        li.appendChild(retry);
        li.appendChild(discard);
        list.appendChild(li);
      });
      return { pending: pending.length, problems: problems };
    }).catch(function () {});
  }

  function count() {
    return all().then(function (rows) {
      return rows.filter(function (e) { return !e.state || e.state === "pending"; }).length;
    });
  }

  function clearAll() {
    return new Promise(function (resolve) {
      var req = indexedDB.deleteDatabase(DB_NAME);
      req.onsuccess = req.onerror = req.onblocked = function () { resolve(); };
    });
  }

  window.FieldQueue = {
    create: create, flush: flush, all: all, count: count, render: render, clearAll: clearAll,
    t: t, onSent: function (fn) { listeners.push(fn); }
  };

  if (!root) return;
  if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(function () {});
  window.addEventListener("online", function () { flush().catch(function () {}); });
  document.getElementById("queue-send").addEventListener("click", function () { flush().catch(function () {}); });
  render().then(function () { if (navigator.onLine) flush().catch(function () {}); });
})();
