// API docs page: Swagger UI renders forms without labels and scrolling examples a keyboard cannot
// reach (axe: select-name, scrollable-region-focusable). Its markup is rebuilt on every expand, so
// a MutationObserver names each new select after its parameter or purpose and makes each
// example box a focusable, named region.
"use strict";

(() => {
  function fix(root) {
    for (const field of root.querySelectorAll("select:not([aria-label]), textarea:not([aria-label]), input:not([aria-label])")) {
      if (field.labels && field.labels.length) continue;
      const param = field.closest("tr[data-param-name]");
      const response = field.closest("[data-code]");
      const label = param ? `Value of ${param.dataset.paramName}`
        : field.classList.contains("examples-select-element") ? `Example${response ? " for " + response.dataset.code : ""}`
        : field.classList.contains("body-param__text") ? "Request body"
        : field.type === "file" ? "File to send"
        : field.closest(".content-type-wrapper, .response-content-type") ? "Media type"
        : field.placeholder || field.name || "Value";
      field.setAttribute("aria-label", label);
    }
    for (const box of root.querySelectorAll("pre.microlight:not([tabindex])")) {
      box.tabIndex = 0;
      box.setAttribute("role", "region");
      box.setAttribute("aria-label", "Example");
    }
  }
  const root = document.getElementById("swagger-ui");
  if (!root) return;
  new MutationObserver(() => fix(root)).observe(root, { childList: true, subtree: true });
})();
