// Quper's own: starts ReDoc on Quper's OpenAPI document. A file, not an inline
// script, so the page works under `Content-Security-Policy: default-src 'self'`.
"use strict";

Redoc.init(
  "/openapi.json",
  {
    // ReDoc's search runs in a Web Worker made from a blob: URL, which
    // `default-src 'self'` forbids. Swagger UI at /docs has a tag filter instead.
    disableSearch: true,
  },
  document.getElementById("redoc"),
);
