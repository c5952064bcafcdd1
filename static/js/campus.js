// The management area's lists: a "tick all on this page" box, the bulk buttons saying how many
// rows they act on, a long import saying it is working instead of looking stuck, and a large
// file's background preview or import showing its progress until its page is ready.
(() => {
  "use strict";

  for (const form of document.querySelectorAll("form.bulk-form")) {
    const boxes = () => Array.from(form.querySelectorAll("input.rowcheck"));
    const all = form.querySelector("input.checkall");
    const counter = form.querySelector(".bulk-count");
    const update = () => {
      const ticked = boxes().filter((b) => b.checked).length;
      if (counter) {
        counter.textContent = ticked
          ? interpolate(ngettext("%(n)s ticked", "%(n)s ticked", ticked), { n: ticked }, true)
          : gettext("none ticked");
      }
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

  // A background job (files over 100 kB): poll its progress; the bar and the counters follow each
  // answer, the status line (aria-live polite) changes only when the stage does, so a screen reader
  // hears "Reading the file", "Checking every row", ... once each and not every count. When the job
  // ends, the same address shows the preview, the import's outcome or the reason it stopped.
  const job = document.getElementById("import-job");
  const bar = document.getElementById("import-bar");
  if (job && bar) {
    const status = document.getElementById("import-status");
    const counters = document.getElementById("import-counters");
    let stage = job.dataset.stage;
    let failures = 0;
    const poll = async () => {
      try {
        const response = await fetch(job.dataset.progressUrl, { headers: { Accept: "application/json" } });
        if (response.status === 404) {
          window.location.reload();  // the upload is gone (imported elsewhere, or a day old): the page says so
          return;
        }
        if (!response.ok) throw new Error(String(response.status));
        const body = await response.json();
        failures = 0;
        bar.value = body.percent;
        bar.textContent = `${body.percent} %`;
        counters.textContent = body.counts;
        if (body.stage !== stage) {
          stage = body.stage;
          status.textContent = body.label;
        }
        if (body.state === "done" || body.state === "failed") {
          window.location.replace(window.location.pathname);
          return;
        }
        setTimeout(poll, 700);
      } catch (error) {
        failures += 1;
        const wait = Math.min(15000, 700 * 2 ** failures);
        counters.textContent = interpolate(gettext("The server is not answering; trying again in %(s)s s…"),
                                           { s: Math.round(wait / 1000) }, true);
        setTimeout(poll, wait);
      }
    };
    setTimeout(poll, 700);
  }
})();
