// The management area's lists: a "tick all on this page" box, the bulk buttons saying how many
// rows they act on, and a long import saying it is working instead of looking stuck.
(() => {
  "use strict";

  for (const form of document.querySelectorAll("form.bulk-form")) {
    const boxes = () => Array.from(form.querySelectorAll("input.rowcheck"));
    const all = form.querySelector("input.checkall");
    const counter = form.querySelector(".bulk-count");
    const update = () => {
      const ticked = boxes().filter((b) => b.checked).length;
      if (counter) counter.textContent = ticked ? `${ticked} ticked` : "none ticked";
      if (all) {
        all.checked = ticked > 0 && ticked === boxes().length;
        all.indeterminate = ticked > 0 && ticked < boxes().length;
      }
    };
    if (all) {
      all.addEventListener("change", () => {
        for (const box of boxes()) box.checked = all.checked;
        update();
      });
    }
    form.addEventListener("change", (event) => {
      if (event.target.classList && event.target.classList.contains("rowcheck")) update();
    });
    update();
  }

  for (const form of document.querySelectorAll("form[data-busy]")) {
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit].primary");
      if (!button) return;
      // Disabled after the browser has taken the form's data (a disabled button is not sent).
      setTimeout(() => {
        button.disabled = true;
        button.textContent = form.dataset.busy;
      }, 0);
    });
  }
})();
