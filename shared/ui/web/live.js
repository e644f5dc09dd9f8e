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

// The sync page's forms are boosted (run, pause, resume post without leaving
// the page, so the stream keeps going): a refusal (403, 404) shows its error
// page as a plain post would, rather than nothing.
document.addEventListener("htmx:beforeSwap", function (event) {
  if (event.detail.boosted && event.detail.xhr.status >= 400) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// The sync page: /sync/events sends the jobs' status (`sync_update`) at
// once, on every change and every few seconds; when it differs from the
// last one seen (and on the first), the page's tables are fetched again
// ("sync-changed"). The same closing on pagehide as above.
(function () {
  "use strict";
  var live = document.querySelector("[data-sync-events]");
  if (!window.EventSource || !live) { return; }
  var url = live.getAttribute("data-sync-events");
  var last = null;
  var source = null;
  function update(event) {
    if (event.data === last || !window.htmx) { return; }
    last = event.data;
    window.htmx.trigger(document.body, "sync-changed");
  }
  function connect() {
    source = new EventSource(url);
    source.addEventListener("sync_update", update);
  }
  // An update that arrives while a boosted post is in flight is dropped by
  // htmx: once the post's page is in place, fetch the tables once more.
  document.addEventListener("htmx:afterSettle", function (event) {
    if (event.detail.boosted && window.htmx) { window.htmx.trigger(document.body, "sync-changed"); }
  });
  window.addEventListener("pagehide", function () {
    if (source) { source.close(); source = null; }
  });
  window.addEventListener("pageshow", function (event) {
    if (event.persisted && !source) { last = null; connect(); }
  });
  connect();
})();
