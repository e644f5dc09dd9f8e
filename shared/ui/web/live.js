// Live pages: incident changes arrive as Server-Sent Events from
// /dashboard/events; each becomes one htmx event ("incidents-changed") that the
// active-incident strip and the dashboard's table refresh on. A reconnect's
// snapshot refreshes too (changes may have been missed while away).
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  var pending = null;
  var connected = false;
  function changed() {
    if (pending || !window.htmx) { return; }
    pending = setTimeout(function () {
      pending = null;
      window.htmx.trigger(document.body, "incidents-changed");
    }, 250);
  }
  var source = new EventSource("/dashboard/events");
  source.addEventListener("incident", changed);
  source.addEventListener("deleted", changed);
  source.addEventListener("snapshot", function () {
    if (connected) { changed(); }
    connected = true;
  });
})();
