// Starts Swagger UI on /v5/docs. Its script and stylesheet are served by pinsights from the
// swagger-ui-bundle package; this file replaces the inline start-up script that the page's
// Content-Security-Policy does not allow.
"use strict";
const root = document.getElementById("swagger-ui");
window.ui = window.SwaggerUIBundle({
  url: root.dataset.openapiUrl,
  dom_id: "#swagger-ui",
  deepLinking: true,
  // The validator badge would send the document to a public validation service: no other host.
  validatorUrl: null,
  presets: [window.SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
});
