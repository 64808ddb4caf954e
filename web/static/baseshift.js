/* Base Shift web UI: small behaviours on top of htmx; every page works without them.
 *
 * - A live update re-renders the run page's blocks on the server: disclosures (<details>)
 *   the person opened or closed keep their state across the swap.
 * - A link to a job (a node of the run graph) opens that job's <details> (a fan-out group).
 * - Every htmx request of a signed-in page sends the page's CSRF token (web/authn.py).
 */
(function () {
  "use strict";
  var toggled = new Map();

  document.addEventListener("toggle", function (event) {
    var el = event.target;
    if (el instanceof HTMLDetailsElement && el.id) { toggled.set(el.id, el.open); }
  }, true);

  function restore() {
    toggled.forEach(function (open, id) {
      var el = document.getElementById(id);
      if (el instanceof HTMLDetailsElement && el.open !== open) { el.open = open; }
    });
  }
  document.addEventListener("htmx:afterSwap", restore);
  document.addEventListener("htmx:sseMessage", restore);

  function openTarget() {
    var id = decodeURIComponent(location.hash.slice(1));
    var el = id && document.getElementById(id);
    if (el instanceof HTMLDetailsElement) { el.open = true; }
  }
  document.addEventListener("htmx:configRequest", function (event) {
    var meta = document.querySelector('meta[name="csrf-token"]');
    if (meta) { event.detail.headers["X-CSRF-Token"] = meta.content; }
  });

  window.addEventListener("hashchange", openTarget);
  document.addEventListener("DOMContentLoaded", openTarget);
})();
