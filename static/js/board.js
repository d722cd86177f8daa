// The live board: keep a chief's half-made reassign choice from being wiped by a refresh,
// and reload the whole page when the session has ended (a wall screen left open all day).
(function () {
  "use strict";
  var board = document.getElementById("board");
  if (!board) return;
  var pending = false;

  function busy() {
    var active = document.activeElement;
    if (active && board.contains(active) && active.tagName === "SELECT") return true;
    var selects = board.querySelectorAll("form.reassign select");
    for (var i = 0; i < selects.length; i++) {
      if (selects[i].value) return true;
    }
    return false;
  }

  board.addEventListener("htmx:beforeRequest", function (event) {
    if (event.detail.elt !== board) return;
    if (busy()) {
      event.preventDefault();
      pending = true;
    }
  });

  board.addEventListener("change", function () {
    // Nothing chosen any more: catch up on what was held back.
    if (pending && !busy()) {
      pending = false;
      htmx.trigger(board, "sse:changed");
    }
  });

  board.addEventListener("htmx:afterRequest", function (event) {
    var xhr = event.detail.xhr;
    if (xhr && xhr.responseURL && xhr.responseURL.indexOf(board.dataset.loginPath) !== -1) {
      window.location.reload();
    }
  });
})();
