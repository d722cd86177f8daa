/* The offline queue: every change is stored in IndexedDB the moment it is made, with the
 * client_id it keeps forever, then sent through /api/v1/sync. A change is deleted only when
 * the server answers applied or duplicate, so nothing typed is lost and nothing is recorded
 * twice (the server dedupes by client_id; a Web Lock keeps two tabs from sending at once).
 * Store shape (shared with the push service worker, which adds "accept" entries):
 *   {client_id, kind, warning_id, data, recorded_at, user_id[, state, detail, queued_at]}
 */
(function () {
  "use strict";
  var DB_NAME = FieldNet.QUEUE_DB;
  var STORE = FieldNet.QUEUE_STORE;
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
  // Entries whose form can be reopened with their values when refused.
  var FIXABLE = ["attempt", "resolve"];

  function t(key, vars) {
    var s = strings[key] || key;
    Object.keys(vars || {}).forEach(function (k) { s = s.split("{" + k + "}").join(vars[k]); });
    return s;
  }

  /* A count in a sentence, in the page language's plural form (the server sends the "one"
   * and "other" forms through ngettext). */
  function plural(key, n) {
    var forms = strings[key] || {};
    var lang = document.documentElement.lang || "zh-CN";
    var form = "other";
    try { form = new Intl.PluralRules(lang).select(n); } catch (e) { /* old browser */ }
    return String(forms[form] || forms.other || key).split("{n}").join(n);
  }

  function tx(mode, fn) {
    return FieldNet.openQueue().then(function (db) {
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
  function remove(clientId) { return tx("readwrite", function (s) { s["delete"](clientId); }).then(render); }
  function get(clientId) { return tx("readonly", function (s) { return s.get(clientId); }); }

  // The officer has seen this refused entry (at its form or in the list): it stops asking for
  // attention on every page, and stays listed in the settings until fixed or discarded.
  function markSeen(clientId) {
    return get(clientId).then(function (e) {
      if (!e || e.seen) return;
      e.seen = true;
      return put(e).then(render);
    });
  }

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
    return FieldNet.postJSON(root.dataset.syncUrl, body).then(function (resp) {
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
        entry.code = r.code || null;
        entry.errors = r.errors || null;
        entry.seen = false;
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

  function button(label, cls, onClick) {
    var b = document.createElement("button");
    b.type = "button";
    b.className = "small " + (cls || "");
    b.textContent = label;
    b.addEventListener("click", onClick);
    return b;
  }

  function isPending(e) { return !e.state || e.state === "pending"; }

  // What may be done about one entry: a refused form entry is reopened in its form; a
  // conflict (the world moved on) can only be acknowledged; the rest retried or discarded.
  function actions(e) {
    var out = [];
    if (e.state === "rejected" && FIXABLE.indexOf(e.kind) >= 0) {
      var a = document.createElement("a");
      a.className = "button small primary";
      a.textContent = t("fix");
      a.href = root.dataset.warningUrl.replace("999999999", e.warning_id) + "#fix=" + e.client_id;
      out.push(a);
    } else if (e.state === "rejected") {
      out.push(button(t("retry"), "", function () {
        e.state = "pending";
        e.detail = null;
        put(e).then(function () { return flush(); }).catch(function () {});
      }));
    }
    if (e.state === "conflict") {
      out.push(button(t("acknowledge"), "", function () { remove(e.client_id); }));
    } else {
      out.push(button(t("discard"), "danger", function () {
        if (window.confirm(t("confirm_discard"))) remove(e.client_id);
      }));
    }
    return out;
  }

  function render() {
    if (!root) return Promise.resolve();
    var here = Number(root.dataset.warningId || 0);
    var showAll = root.dataset.showAll === "1";
    return all().then(function (rows) {
      var pending = rows.filter(isPending);
      var problems = rows.filter(function (e) { return !isPending(e); });
      // Refused entries ask for attention until seen, and always on their own warning's page.
      var calling = problems.filter(function (e) { return !e.seen || e.warning_id === here; });
      var shown = showAll ? rows : pending.concat(calling);
      root.hidden = shown.length === 0;
      root.dataset.pending = String(pending.length);
      root.dataset.problems = String(problems.length);
      var text = [];
      if (pending.length) text.push(plural("pending", pending.length));
      var listed = showAll ? problems.length : calling.length;
      if (listed) text.push(plural("problems", listed));
      document.getElementById("queue-count").textContent = text.join(" ");
      document.getElementById("queue-send").hidden = pending.length === 0;
      var details = document.getElementById("queue-details");
      if (calling.length && !showAll) details.open = true;
      var list = document.getElementById("queue-list");
      list.textContent = "";
      shown.forEach(function (e) {
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
        var row = document.createElement("p");
        row.className = "row";
        actions(e).forEach(function (el) { row.appendChild(el); });
        li.appendChild(row);
        list.appendChild(li);
      });
      return { pending: pending.length, problems: problems.length };
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
    get: get, remove: remove, markSeen: markSeen,
    t: t, plural: plural, strings: strings, onSent: function (fn) { listeners.push(fn); }
  };

  if (!root) return;
  if (navigator.storage && navigator.storage.persist) navigator.storage.persist().catch(function () {});
  window.addEventListener("online", function () { flush().catch(function () {}); });
  document.getElementById("queue-send").addEventListener("click", function () { flush().catch(function () {}); });
  render().then(function () { if (navigator.onLine) flush().catch(function () {}); });
})();
