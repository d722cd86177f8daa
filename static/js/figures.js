// Editing a date means a custom range: select that choice so the dates are not ignored.
(function () {
  "use strict";
  var custom = document.querySelector('input[name="period"][value="custom"]');
  if (!custom) return;
  document.querySelectorAll('input[type="date"][name="start"], input[type="date"][name="end"]').forEach(function (input) {
    input.addEventListener("change", function () { custom.checked = true; });
  });
})();
