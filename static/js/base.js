// Every page: the user menu (a <details>) closes with Escape, or when focus or a click leaves it,
// and Escape gives focus back to its summary so a keyboard user is not left on a hidden item.
"use strict";

(() => {
  const menu = document.querySelector("details.usermenu");
  if (!menu) return;
  const summary = menu.querySelector("summary");
  menu.addEventListener("keydown", (event) => {
    if (/^Esc(ape)?$/.test(event.key) && menu.open) {  // "Esc": older browsers' name for the key
      menu.open = false;
      summary.focus();
      event.preventDefault();
    }
  });
  menu.addEventListener("focusout", (event) => {
    if (menu.open && event.relatedTarget && !menu.contains(event.relatedTarget)) menu.open = false;
  });
  document.addEventListener("click", (event) => {
    if (menu.open && !menu.contains(event.target)) menu.open = false;
  });
})();

// Tables too wide for the screen scroll inside their box (.table-wrap). A box that scrolls is made
// a named, focusable region, so keyboard users can scroll it with the arrow keys and screen
// readers say what it holds; a shadow at its edge shows there is more (static/css/rollcall.css).
(() => {
  const boxes = [...document.querySelectorAll(".table-wrap")];
  if (!boxes.length) return;

  function nameOf(box) {
    const table = box.querySelector("table");
    const caption = table && table.querySelector("caption");
    if (caption) return caption.textContent.trim();
    const section = box.closest("section, .card, main");
    const heading = section && section.querySelector("h1, h2, h3");
    return heading ? heading.textContent.trim().replace(/\s+/g, " ") : gettext("Table");
  }

  function update() {
    for (const box of boxes) {
      const scrolls = box.scrollWidth > box.clientWidth + 1;
      box.classList.toggle("scrolls", scrolls);
      if (scrolls && !box.hasAttribute("tabindex")) {
        box.tabIndex = 0;
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", interpolate(gettext("%(name)s (scrolls sideways)"), { name: nameOf(box) }, true));
      } else if (!scrolls && box.getAttribute("role") === "region") {
        box.removeAttribute("tabindex");
        box.removeAttribute("role");
        box.removeAttribute("aria-label");
      }
    }
  }

  update();
  window.addEventListener("resize", update);
  // Rows added later (the check-in list) can make a box scroll.
  const observer = new ResizeObserver(update);
  for (const box of boxes) {
    const table = box.querySelector("table");
    if (table) observer.observe(table);
  }
})();
