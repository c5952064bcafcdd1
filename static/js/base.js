// Every page: the user menu (a <details>) closes with Escape, or when focus or a click leaves it,
// and Escape gives focus back to its summary so a keyboard user is not left on a hidden item.
"use strict";

(() => {
  const menu = document.querySelector("details.usermenu");
  if (!menu) return;
  const summary = menu.querySelector("summary");
  menu.addEventListener("keydown", (event) => {
    if (event.key === "Escape" && menu.open) {
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

