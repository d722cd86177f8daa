// The live board and the wall screen: the reassign picker in a dialog, offer countdowns that
// tick between refreshes, filters folded away on a phone, and a reload when the session has
// ended (a wall screen left open all day).
(function () {
  "use strict";

  // --- offer countdowns: the server says how many seconds were left when it rendered ---
  var strings = null;
  function tick() {
    var template = document.getElementById("offer-left-strings");
    if (template) strings = { left: template.getAttribute("data-left"), overdue: template.getAttribute("data-overdue") };
    if (!strings) return;
    var now = Date.now();
    document.querySelectorAll(".offer-left[data-left-s]").forEach(function (el) {
      if (!el.fieldappDeadline) el.fieldappDeadline = now + 1000 * Number(el.getAttribute("data-left-s"));
      var left = Math.ceil((el.fieldappDeadline - now) / 1000);
      if (left > 0) el.textContent = strings.left.replace("%(t)s", Math.floor(left / 60) + ":" + (left % 60 < 10 ? "0" : "") + (left % 60));
      else {
        el.textContent = strings.overdue;
        el.classList.add("overdue");
      }
    });
  }
  setInterval(tick, 1000);

  // --- the session ended: every live region reloads the page, which goes to the login ---
  document.querySelectorAll("[data-live]").forEach(function (live) {
    live.addEventListener("htmx:afterRequest", function (event) {
      var xhr = event.detail.xhr;
      if (xhr && xhr.responseURL && xhr.responseURL.indexOf(live.dataset.loginPath) !== -1) {
        window.location.reload();
      }
    });
  });

  // --- filters: open on a wide screen, a one-line summary on a phone ---
  var filters = document.getElementById("filters");
  if (filters && window.matchMedia("(min-width: 760px)").matches) filters.open = true;

  // One reassignment per choice: a double tap must not send the officer two offers.
  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (!form.matches || !form.matches("form.picker")) return;
    if (form.dataset.sent) { event.preventDefault(); return; }
    form.dataset.sent = "1";
    var button = form.querySelector("button[type=submit]");
    if (button) button.disabled = true;
  }, true);

  // --- the reassign picker, in a dialog outside the list, so a refresh cannot wipe a choice ---
  var dialog = document.getElementById("picker");
  var body = document.getElementById("picker-body");
  if (!dialog || !body || typeof dialog.showModal !== "function") return;

  function close() {
    if (dialog.open) dialog.close();
    body.textContent = "";
  }

  document.addEventListener("click", function (event) {
    var link = event.target.closest && event.target.closest("a.pick");
    if (!link || !window.htmx) return;
    event.preventDefault();
    var fallback = function () { window.location.href = link.getAttribute("href"); };
    htmx.ajax("GET", link.getAttribute("href"), { target: body, swap: "innerHTML" }).then(function () {
      // Anything but the picker (an error, the login page after the session ended): go there.
      if (!body.querySelector("#picker-form")) return fallback();
      var cancel = body.querySelector(".picker-close");
      if (cancel) cancel.hidden = false;
      if (!dialog.open) dialog.showModal();
      var first = body.querySelector("input[type=radio]:not([disabled])");
      if (first) first.focus();
    }, fallback);
  });

  body.addEventListener("click", function (event) {
    if (event.target.closest && event.target.closest(".picker-close")) close();
  });
  dialog.addEventListener("close", function () { body.textContent = ""; });
})();
