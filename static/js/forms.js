/* Forms people fill in a hurry:
   - forms marked data-once submit once: a double tap on a slow network sends one request (the
     button comes back after a while, in case the first request never arrived);
   - an error summary takes the focus, so a screen reader reads it and the page shows it. */
(function () {
  "use strict";
  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (!form.hasAttribute || !form.hasAttribute("data-once")) return;
    if (form.dataset.sent) { ev.preventDefault(); return; }
    form.dataset.sent = "1";
    var buttons = form.querySelectorAll("button[type=submit]");
    // Disabled after this tick, so the submitter's own name/value still goes with the form.
    setTimeout(function () { buttons.forEach(function (b) { b.disabled = true; }); }, 0);
    setTimeout(function () {
      delete form.dataset.sent;
      buttons.forEach(function (b) { b.disabled = false; });
    }, 10000);
  });
  document.addEventListener("DOMContentLoaded", function () {
    var summary = document.querySelector(".error-summary");
    if (summary) summary.focus();
  });
})();
