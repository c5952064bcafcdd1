// Check-in page (lecturer) and kiosk page (device at the door).
//
// The webcam is previewed in a <video>; every intervalMs a downscaled JPEG of the current frame is
// posted to the check-in API and each face's box and name are drawn on a canvas over the video.
// At most one snapshot is in flight: the next one is only scheduled once the previous answer (or
// failure) is in, so a slow server slows the page down instead of queueing requests. Failures back
// off exponentially behind a visible banner. The lecturer's page also polls the live list.
"use strict";

(() => {
  // Numbers and times in the page's language (a decimal comma in Croatian), as the server writes them.
  const LOCALE = document.documentElement.lang || undefined;
  const decimals = (x, digits) =>
    new Intl.NumberFormat(LOCALE, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(x);
  const config = JSON.parse(document.getElementById("checkin-config").textContent);
  const banner = document.getElementById("banner");
  const cameraStatus = document.getElementById("camera-status");
  const video = document.getElementById("camera");
  const overlay = document.getElementById("overlay");
  const MAX_BACKOFF_MS = 30000;
  const REQUEST_TIMEOUT_MS = 15000;
  const COLOURS = {
    marked: "#1f8a4c", recorded: "#1f8a4c", confirming: "#2457d6", doubtful: "#b86e00", unknown: "#c23a3a",
    challenge: "#6b3fd1", challenge_failed: "#b86e00", not_live: "#c23a3a",
  };

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    if (input) return input.value;
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function headers(extra) {
    // The kiosk sends no credential of its own: its HttpOnly device cookie goes with every
    // same-origin request (credentials: "same-origin"). It says it is the kiosk page, so that a
    // browser both signed in as the lecturer and paired as the kiosk is answered as the page asks.
    const page = config.kiosk ? { "X-Rollcall-Kiosk": "1" } : {};
    return Object.assign({ "X-CSRFToken": csrfToken(), Accept: "application/json" }, page, extra || {});
  }

  function showBanner(text, kind) {
    banner.textContent = text;
    banner.className = "banner banner-" + (kind || "error");
    banner.hidden = false;
  }

  function hideBanner() {
    banner.hidden = true;
  }

  async function readJson(response) {
    try {
      return await response.json();
    } catch (error) {
      return {};
    }
  }

  function describe(response, data) {
    return (data && data.detail) ||
      interpolate(gettext("The server answered %(status)s %(text)s."),
        { status: response.status, text: response.statusText }, true);
  }

  // --- Camera and snapshots -------------------------------------------------------------------

  const capture = document.createElement("canvas");
  let stream = null;
  let timer = null;
  let inFlight = false;
  let failures = 0;
  let stopped = false;
  let lastFaces = null;

  async function startCamera() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
      showBanner(gettext("This browser cannot use the camera here. Browsers allow cameras only on secure (HTTPS) pages or on localhost: ask your administrator to serve Rollcall over HTTPS."));
      cameraStatus.textContent = gettext("No camera.");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({
        video: { facingMode: "user", width: { ideal: 1280 }, height: { ideal: 720 } }, audio: false,
      });
    } catch (error) {
      const messages = {
        NotAllowedError: gettext("Camera access was refused. Allow the camera for this site (the icon in the address bar), then reload the page."),
        NotFoundError: gettext("No camera was found. Plug one in, then reload the page."),
        NotReadableError: gettext("The camera is in use by another program. Close it, then reload the page."),
      };
      showBanner(messages[error.name] || interpolate(gettext("The camera could not start (%(name)s: %(message)s)."),
        { name: error.name, message: error.message }, true));
      cameraStatus.textContent = gettext("No camera.");
      return;
    }
    video.srcObject = stream;
    await video.play().catch(() => {});
    cameraStatus.textContent = gettext("Looking for faces…");
    schedule(0);
  }

  function stopCamera() {
    stopped = true;
    clearTimeout(timer);
    if (stream) stream.getTracks().forEach((track) => track.stop());
  }

  function schedule(delay) {
    clearTimeout(timer);
    if (!stopped) timer = setTimeout(tick, delay);
  }

  function backoffDelay(retryAfterSeconds) {
    const exponential = Math.min(MAX_BACKOFF_MS, config.intervalMs * 2 ** failures);
    const jittered = exponential * (0.8 + Math.random() * 0.4);
    return Math.max(jittered, (retryAfterSeconds || 0) * 1000);
  }

  function snapshot() {
    const width = video.videoWidth;
    const height = video.videoHeight;
    const scale = Math.min(1, config.maxSide / Math.max(width, height));
    capture.width = Math.round(width * scale);
    capture.height = Math.round(height * scale);
    capture.getContext("2d").drawImage(video, 0, 0, capture.width, capture.height);
    return new Promise((resolve, reject) => {
      capture.toBlob((blob) => (blob ? resolve(blob) : reject(new Error(gettext("the frame could not be encoded")))),
        "image/jpeg", config.jpegQuality);
    });
  }

  async function tick() {
    if (stopped) return;
    if (inFlight || document.hidden || video.readyState < 2 || !video.videoWidth) {
      schedule(config.intervalMs);
      return;
    }
    const started = performance.now();
    let delay = config.intervalMs;
    inFlight = true;
    try {
      const body = await snapshot();
      const response = await fetch(config.checkinUrl, {
        method: "POST", body, credentials: "same-origin",
        headers: headers({ "Content-Type": "image/jpeg" }),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const data = await readJson(response);
      if (response.ok) {
        failures = 0;
        if (data.notice) showBanner(data.notice, "warning"); else hideBanner();
        lastFaces = data;
        draw(data);
        report(data);
        const interval = renderChallenge(data) ? config.challengeIntervalMs : config.intervalMs;
        delay = Math.max(0, interval - (performance.now() - started));
      } else if (response.status === 403 || response.status === 409) {
        // Closed session or a dead kiosk link: retrying cannot help.
        stopCamera();
        clearOverlay();
        showBanner(describe(response, data) + (config.kiosk ? "" : " " + gettext("Reload the page to see the final list.")));
        cameraStatus.textContent = gettext("Check-in stopped.");
        return;
      } else {
        failures += 1;
        delay = backoffDelay(Number(response.headers.get("retry-after")) || 0);
        showBanner(describe(response, data) + " " +
          interpolate(gettext("Retrying in %(seconds)s s."), { seconds: Math.round(delay / 1000) }, true),
          response.status === 429 ? "warning" : "error");
      }
    } catch (error) {
      failures += 1;
      delay = backoffDelay(0);
      clearOverlay();
      const reason = error.name === "TimeoutError" ? gettext("the server took too long to answer") : error.message;
      showBanner(interpolate(
        gettext("Cannot reach the server (%(reason)s). Retrying in %(seconds)s s; students seen meanwhile are not checked in."),
        { reason, seconds: Math.round(delay / 1000) }, true));
    } finally {
      inFlight = false;
    }
    schedule(delay);
  }

  // --- Overlay ------------------------------------------------------------------------------

  function clearOverlay() {
    if (!overlay) return;
    overlay.getContext("2d").clearRect(0, 0, overlay.width, overlay.height);
  }

  function label(face, needed) {
    if (face.outcome === "unknown") return gettext("Unknown");
    // A kiosk is told a name only for the face just marked: the others come without one.
    const named = Boolean(face.name);
    if (face.outcome === "doubtful") return named ? `${face.name}?` : gettext("Ask the lecturer");
    if (face.outcome === "confirming") {
      return named ? `${face.name} (${face.confirmations}/${needed})`
        : interpolate(gettext("Hold still (%(count)s/%(needed)s)"), { count: face.confirmations, needed }, true);
    }
    if (face.outcome === "challenge") {
      const arrow = arrowFor(face.challenge.direction);
      return named ? interpolate(gettext("%(name)s: turn %(arrow)s"), { name: face.name, arrow }, true)
        : interpolate(gettext("Turn %(arrow)s"), { arrow }, true);
    }
    if (face.outcome === "challenge_failed") {
      return named ? interpolate(gettext("%(name)s: try again"), { name: face.name }, true) : gettext("Try again");
    }
    if (face.outcome === "not_live") {
      return named ? interpolate(gettext("%(name)s: photo or screen?"), { name: face.name }, true)
        : gettext("Photo or screen?");
    }
    if (face.outcome === "recorded" && !named) return gettext("Already checked in");
    return `${face.name} ✓`;
  }

  function draw(data) {
    if (!overlay || !video.videoWidth) return;
    overlay.width = video.videoWidth;
    overlay.height = video.videoHeight;
    const ctx = overlay.getContext("2d");
    ctx.clearRect(0, 0, overlay.width, overlay.height);
    const scale = overlay.width / data.width;
    const fontSize = Math.max(14, Math.round(overlay.width / 40));
    ctx.font = `600 ${fontSize}px ${["system-ui", "sans-serif"].join(", ")}`;
    ctx.textBaseline = "bottom";
    for (const face of data.faces) {
      const [boxX, y, w, h] = face.box.map((v) => v * scale);
      // A mirrored preview shows the face where the unmirrored snapshot's box is reflected.
      const x = config.mirror ? overlay.width - boxX - w : boxX;
      const colour = COLOURS[face.outcome] || COLOURS.unknown;
      ctx.lineWidth = Math.max(2, overlay.width / 320);
      ctx.strokeStyle = colour;
      ctx.strokeRect(x, y, w, h);
      const text = label(face, data.confirmations_needed);
      const textWidth = ctx.measureText(text).width + 10;
      const top = y > fontSize + 8 ? y - fontSize - 8 : y + h;
      ctx.fillStyle = colour;
      ctx.fillRect(x - ctx.lineWidth / 2, top, textWidth, fontSize + 8);
      ctx.fillStyle = "#fff";
      ctx.fillText(text, x + 5, top + fontSize + 5);
    }
    overlay.dataset.faces = String(data.faces.length);
  }

  window.addEventListener("resize", () => lastFaces && draw(lastFaces));

  function report(data) {
    const count = data.faces.length;
    const known = data.faces.filter((f) => f.outcome !== "unknown").length;
    // The status line is aria-live: its words change only when what is seen changes, and the
    // processing time (new every snapshot) is hidden from screen readers, which it would flood.
    const words = count
      ? interpolate(ngettext("%(count)s face in view, %(known)s recognised", "%(count)s faces in view, %(known)s recognised",
        count), { count, known }, true)
      : gettext("No face in view.");
    let text = cameraStatus.querySelector(".status-words");
    if (!text) {
      text = document.createElement("span");
      text.className = "status-words";
      const ms = document.createElement("span");
      ms.className = "status-ms";
      ms.setAttribute("aria-hidden", "true");
      cameraStatus.replaceChildren(text, ms);
    }
    if (text.textContent !== words) text.textContent = words;
    cameraStatus.querySelector(".status-ms").textContent = count ? ` · ${data.processing_ms} ms` : "";
    if (config.kiosk) {
      const checkedIn = data.faces.filter((f) => f.outcome === "marked");  // a kiosk gets no ids in `marked`
      if (checkedIn.length) welcome(checkedIn);
    } else if (data.marked.length) {
      refreshState();
    }
  }

  // --- Liveness: the head-turn prompt ----------------------------------------------------------
  //
  // The server picks the direction ("left" is the student's own left) and the deadline; the page
  // only shows them: clear text, a big arrow and a countdown, in an aria-live region. The arrow
  // points where the face on the preview moves when the student turns that way: towards the
  // screen's left for "left" on a mirrored preview, the other way on an unmirrored one.

  const challengeBox = document.getElementById("challenge");
  let challengeDeadline = 0;
  let challengeTimer = null;
  let failedUntil = 0;

  function arrowFor(direction) {
    const towardsScreenLeft = (direction === "left") === Boolean(config.mirror);
    return towardsScreenLeft ? "←" : "→";
  }

  // Shows the prompt of the first face asked to turn, or "try again" after a failed one; true
  // while a prompt is open (the page then takes snapshots a little faster).
  function renderChallenge(data) {
    if (!challengeBox) return false;
    const asked = data.faces.find((f) => f.outcome === "challenge" && f.challenge);
    const failed = data.faces.find((f) => f.outcome === "challenge_failed");
    if (asked) {
      const { direction, prompt, seconds_left: secondsLeft } = asked.challenge;
      challengeDeadline = performance.now() + secondsLeft * 1000;
      showChallenge("asking", asked.name ? `${asked.name}: ${prompt}` : prompt, arrowFor(direction), direction);
      if (!challengeTimer) challengeTimer = setInterval(countDown, 200);
      countDown();
      return true;
    }
    if (failed) {
      failedUntil = performance.now() + 4000;
      stopCountdown();
      const text = failed.reason
        ? interpolate(gettext("Not recognised as live (%(reason)s). Try again: look at the camera, a new prompt follows."),
          { reason: failed.reason }, true)
        : gettext("Not recognised as live. Try again: look at the camera, a new prompt follows.");
      showChallenge("failed", text, "↻", "");
      return false;
    }
    if (performance.now() >= failedUntil) {
      stopCountdown();
      challengeBox.hidden = true;
      challengeBox.dataset.state = "";
    }
    return false;
  }

  function showChallenge(state, text, arrow, direction) {
    challengeBox.dataset.state = state;
    challengeBox.dataset.direction = direction;
    challengeBox.querySelector(".challenge-arrow").textContent = arrow;
    const textNode = challengeBox.querySelector(".challenge-text");
    if (textNode.textContent !== text) textNode.textContent = text;  // re-announced only when it changes
    if (state !== "asking") challengeBox.querySelector(".challenge-countdown").textContent = "";
    challengeBox.hidden = false;
  }

  function countDown() {
    const left = Math.max(0, (challengeDeadline - performance.now()) / 1000);
    challengeBox.querySelector(".challenge-countdown").textContent =
      interpolate(gettext("%(seconds)s s left"), { seconds: Math.ceil(left) }, true);
    if (left <= 0) stopCountdown();
  }

  function stopCountdown() {
    clearInterval(challengeTimer);
    challengeTimer = null;
  }

  // --- Kiosk: a short welcome for each student checked in --------------------------------------

  function welcome(faces) {
    const list = document.getElementById("welcome");
    for (const face of faces) {
      const item = document.createElement("li");
      item.className = "welcome-item";
      item.textContent = "✓ " + interpolate(face.record_status === "late" ? gettext("%(name)s: checked in (late)")
        : gettext("%(name)s: checked in"), { name: face.name }, true);
      list.prepend(item);
      setTimeout(() => item.remove(), 8000);
    }
  }

  // --- Lecturer: the live list, manual marks, doubtful matches ---------------------------------

  let stateInFlight = false;
  let stateTimer = null;
  let arrivalStatus = "present";
  const seen = new Map();
  const TIME = new Intl.DateTimeFormat(LOCALE, { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });

  function scheduleState(delay) {
    clearTimeout(stateTimer);
    stateTimer = setTimeout(refreshState, delay);
  }

  async function refreshState() {
    if (stateInFlight) return;
    stateInFlight = true;
    try {
      const response = await fetch(config.stateUrl, {
        headers: headers(), credentials: "same-origin", signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
      const data = await readJson(response);
      if (response.ok) renderState(data);
    } catch (error) {
      // The snapshot loop reports connection trouble; the list just tries again.
    } finally {
      stateInFlight = false;
      if (config.open && !stopped) scheduleState(config.stateIntervalMs);
    }
  }

  function cell(row, text, className) {
    const td = document.createElement("td");
    if (className) td.className = className;
    if (text instanceof Node) td.append(text);
    else td.textContent = text;
    row.append(td);
    return td;
  }

  const STATUS_LABELS = {
    present: gettext("Present"), late: gettext("Late"), absent: gettext("Absent"), excused: gettext("Excused"),
  };

  function badge(status) {
    const span = document.createElement("span");
    span.className = `badge badge-${status}`;
    span.textContent = STATUS_LABELS[status] || status;
    return span;
  }

  function confidence(distance) {
    if (distance === null || distance === undefined) return "";
    const word = distance <= config.threshold * 0.7 ? pgettext("confidence", "high")
      : distance <= config.doubtfulFrom ? pgettext("confidence", "good") : pgettext("confidence", "low");
    return `${word} · ${decimals(distance, 2)}`;
  }

  function button(text, onClick, className, action) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = text;
    if (action) b.dataset.action = action;
    b.className = "small-button " + (className || "");
    b.addEventListener("click", onClick);
    return b;
  }

  // The list is rebuilt only when it changed, and doubtful entries are updated in place: a row
  // replaced every poll would swallow a lecturer's click that lands during the swap.
  let rosterSignature = "";

  function renderState(data) {
    arrivalStatus = data.session.arrival_status || "present";
    const c = data.counts;
    document.getElementById("counts").textContent = [
      interpolate(ngettext("%(n)s present", "%(n)s present", c.present), { n: c.present }, true),
      interpolate(ngettext("%(n)s late", "%(n)s late", c.late), { n: c.late }, true),
      interpolate(ngettext("%(n)s absent", "%(n)s absent", c.absent), { n: c.absent }, true),
      interpolate(ngettext("%(n)s not yet seen", "%(n)s not yet seen", c.unmarked), { n: c.unmarked }, true),
    ].join(" · ");
    renderDoubtful(data.doubtful);
    renderNotLive(data.not_live || []);
    const signature = JSON.stringify(data.students);
    if (signature === rosterSignature) return;
    rosterSignature = signature;
    renderRoster(data.students);
  }

  // Screen readers hear who was just marked, once per change, in one polite message per update;
  // the first load announces nothing (the table itself is the full list).
  const announcer = document.getElementById("roster-announce");
  const STATUS_WORDS = {
    present: gettext("%(name)s marked present"), late: gettext("%(name)s marked late"),
    absent: gettext("%(name)s marked absent"), excused: gettext("%(name)s excused"),
  };

  function announce(lines) {
    if (!announcer || !lines.length) return;
    announcer.textContent = lines.length > 3
      ? interpolate(ngettext("%(n)s student marked: %(first)s…", "%(n)s students marked: %(first)s…", lines.length),
        { n: lines.length, first: lines.slice(0, 3).join("; ") }, true)
      : lines.join("; ");
  }

  // Where keyboard focus is in the list, so a rebuilt list can put it back on the same student.
  function rosterFocus(tbody) {
    const active = document.activeElement;
    if (!active || !tbody.contains(active)) return null;
    const row = active.closest("tr[data-student]");
    return row ? { student: row.dataset.student, action: active.dataset.action || "" } : null;
  }

  function restoreRosterFocus(tbody, focus) {
    if (!focus) return;
    const row = tbody.querySelector(`tr[data-student="${focus.student}"]`);
    if (!row) return;
    // The same button when it is still there; else the row's first (the pressed one hides itself:
    // "Present" is not offered to a student already present).
    const target = row.querySelector(`button[data-action="${focus.action}"]`) || row.querySelector("button");
    if (target) target.focus({ preventScroll: true });
  }

  // How a record was marked, after its badge (the same words as the page's first render).
  const METHOD_WORDS = {
    face: pgettext("how a record was marked", "face"), manual: pgettext("how a record was marked", "manual"),
    auto: pgettext("how a record was marked", "at closing"),
  };

  function renderRoster(students) {
    const tbody = document.querySelector("#roster tbody");
    const focus = rosterFocus(tbody);
    const changes = [];
    const rows = [];
    for (const s of students) {
      const row = document.createElement("tr");
      row.dataset.student = s.student_id;
      row.dataset.status = s.status || "";
      const previous = seen.get(s.student_id);
      if (previous !== undefined && previous !== s.status && s.status) {
        row.classList.add("flash");
        changes.push(STATUS_WORDS[s.status] ? interpolate(STATUS_WORDS[s.status], { name: s.name }, true)
          : `${s.name} ${s.status}`);
      }
      seen.set(s.student_id, s.status);
      const name = document.createElement("span");
      name.textContent = s.name;
      const nameCell = cell(row, name);
      if (!s.face_enrolled) {
        const note = document.createElement("span");
        note.className = "muted small";
        note.title = gettext("No face enrolled: mark by hand");
        note.textContent = " " + gettext("no face");
        nameCell.append(note);
      }
      const statusCell = cell(row, s.status ? badge(s.status) : "–");
      if (s.method) {
        const how = document.createElement("span");
        how.className = "muted small";
        how.textContent = " " + (METHOD_WORDS[s.method] || s.method);
        statusCell.append(how);
      }
      cell(row, s.marked_at ? TIME.format(new Date(s.marked_at)) : "", "nowrap");
      cell(row, confidence(s.confidence), "nowrap");
      const actions = cell(row, "", "row-actions");
      const here = s.status === "present" || s.status === "late";
      if (s.status !== "present") {
        actions.append(labelled(button(STATUS_LABELS.present, () => mark(s, "present"), "", "present"), s));
      }
      if (s.status !== "late") actions.append(labelled(button(STATUS_LABELS.late, () => mark(s, "late"), "", "late"), s));
      if (here) {
        actions.append(labelled(button(gettext("Unmark"), () => mark(s, "absent", gettext("Unmarked on the check-in page")),
          "danger-outline", "unmark"), s));
      }
      rows.push(row);
    }
    if (!rows.length) {
      const row = document.createElement("tr");
      cell(row, gettext("No students on this course yet."), "empty").colSpan = 5;
      rows.push(row);
    }
    tbody.replaceChildren(...rows);
    restoreRosterFocus(tbody, focus);
    announce(changes);
  }

  // "Late" alone says nothing out of context: the accessible name says whom it marks.
  function labelled(b, student) {
    b.setAttribute("aria-label", interpolate(gettext("%(action)s: %(name)s"), { action: b.textContent, name: student.name }, true));
    return b;
  }

  function renderDoubtful(items) {
    const box = document.getElementById("doubtful");
    const list = document.getElementById("doubtful-list");
    const wanted = new Set(items.map((d) => String(d.student_id)));
    for (const item of [...list.children]) {
      if (!wanted.has(item.dataset.student)) item.remove();
    }
    for (const d of items) {
      let item = list.querySelector(`li[data-student="${d.student_id}"]`);
      if (!item) {
        item = document.createElement("li");
        item.dataset.student = d.student_id;
        const text = document.createElement("span");
        text.className = "doubtful-text";
        item.append(text,
          button(gettext("Confirm"), () => mark({ student_id: d.student_id, name: d.name }, arrivalStatus,
            interpolate(gettext("Confirmed a doubtful face match (distance %(distance)s)"),
              { distance: item.dataset.distance }, true)), "primary"),
          button(gettext("Not them"), () => dismiss(d.student_id)));
        list.append(item);
      }
      item.dataset.distance = decimals(d.distance, 2);
      item.querySelector(".doubtful-text").textContent =
        interpolate(gettext("%(name)s (distance %(distance)s)"), { name: d.name, distance: decimals(d.distance, 2) }, true);
    }
    box.hidden = items.length === 0;
  }

  // Faces that failed liveness lately: not marked; the lecturer can look up and mark by hand.
  function renderNotLive(items) {
    const box = document.getElementById("not-live");
    if (!box) return;
    const list = box.querySelector("#not-live-list");
    const lines = items.map((s) => {
      const item = document.createElement("li");
      item.dataset.student = s.student_id;
      const text = document.createElement("span");
      text.textContent = interpolate(gettext("Possible photo or screen of %(name)s"), { name: s.name }, true);
      const why = document.createElement("span");
      why.className = "muted small";
      why.textContent = ` ${s.reason} · ${TIME.format(new Date(s.seen_at * 1000))}`;
      item.append(text, why);
      return item;
    });
    const signature = JSON.stringify(items.map((s) => [s.student_id, s.reason]));
    if (box.dataset.signature !== signature) {
      box.dataset.signature = signature;
      list.replaceChildren(...lines);
    }
    box.hidden = items.length === 0;
  }

  // The status a mark sets, as it reads inside "… could not be marked …".
  const MARK_WORDS = {
    present: pgettext("could not be marked …", "present"), late: pgettext("could not be marked …", "late"),
    absent: pgettext("could not be marked …", "absent"),
  };

  async function mark(student, status, reason) {
    // A reason typed in the box goes with the next correction (and wins over a button's default).
    const reasonBox = document.getElementById("correction-reason");
    const typed = reasonBox ? reasonBox.value.trim() : "";
    if (typed) reason = typed;
    try {
      const response = await fetch(config.marksUrl, {
        method: "POST", credentials: "same-origin",
        headers: headers({ "Content-Type": "application/json" }),
        body: JSON.stringify({ student: student.student_id, status, reason: reason || "" }),
      });
      const data = await readJson(response);
      if (!response.ok) {
        showBanner(interpolate(gettext("%(name)s could not be marked %(status)s: %(reason)s"),
          { name: student.name, status: MARK_WORDS[status] || status, reason: describe(response, data) }, true));
        return;
      }
      if (reasonBox && typed) reasonBox.value = "";
    } catch (error) {
      showBanner(interpolate(gettext("%(name)s could not be marked %(status)s: the server cannot be reached. Try again."),
        { name: student.name, status: MARK_WORDS[status] || status }, true));
      return;
    }
    refreshState();
  }

  async function dismiss(studentId) {
    const url = config.doubtfulUrlTemplate.replace(/\/0\/$/, `/${studentId}/`);
    try {
      await fetch(url, { method: "DELETE", credentials: "same-origin", headers: headers() });
    } catch (error) {
      // Nothing lost: the match drops off the list by itself after a few minutes.
    }
    refreshState();
  }

  // --- Start ----------------------------------------------------------------------------------

  document.querySelectorAll("form[data-confirm]").forEach((form) => {
    form.addEventListener("submit", (event) => {
      if (!window.confirm(form.dataset.confirm)) event.preventDefault();
    });
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !stopped && config.open) schedule(0);
  });
  if (!config.kiosk) refreshState();
  if (config.open && video) startCamera();
})();
