// Quper's own: starts Swagger UI on Quper's OpenAPI document. A file, not an
// inline script, so the page works under `Content-Security-Policy: default-src 'self'`.
"use strict";

window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  deepLinking: true,
  // A box that filters the operations by tag (ReDoc's search is off, see redoc-initializer.js).
  filter: true,
  // Never send the document to the public validator (nor load its badge).
  validatorUrl: null,
});
