// Starts Swagger UI on /docs. Kept out of the page so the page's Content-Security-Policy needs no inline
// script. validatorUrl: null — by default Swagger UI loads a badge from validator.swagger.io, which an
// offline government network cannot reach and should not be asked to.
window.addEventListener("load", function () {
  var page = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: page.getAttribute("data-spec-url"),
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    persistAuthorization: false,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  });
});
