// Live pages: incident changes arrive as Server-Sent Events from
// /dashboard/events; each becomes one htmx event ("incidents-changed") that the
// active-incident strip, the dashboard's table and the incident page refresh
// on. A reconnect's snapshot refreshes too (changes may have been missed
// while away). The stream is closed when the page is hidden (navigation, the
// back-forward cache): a browser holds six connections per host over
// HTTP/1.1, and streams of pages no longer shown would take them all.
(function () {
  "use strict";
  if (!window.EventSource) { return; }
  var pending = null;
  var source = null;
  function changed() {
    if (pending || !window.htmx) { return; }
    pending = setTimeout(function () {
      pending = null;
      window.htmx.trigger(document.body, "incidents-changed");
    }, 250);
  }
  function connect(refreshFirst) {
    var connected = false;
    source = new EventSource("/dashboard/events");
    source.addEventListener("incident", changed);
    source.addEventListener("deleted", changed);
    source.addEventListener("snapshot", function () {
      if (connected || refreshFirst) { changed(); }
      connected = true;
    });
  }
  window.addEventListener("pagehide", function () {
    if (source) { source.close(); source = null; }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && !source) { connect(true); }
  });
  connect(false);
})();
