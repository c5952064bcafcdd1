// Ask before a form that cannot be undone: closing a session (everyone not yet seen is marked
// absent), deleting a timetable series, resetting a calendar link.
"use strict";
document.querySelectorAll("form[data-confirm]").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(form.dataset.confirm)) event.preventDefault();
  });
});
