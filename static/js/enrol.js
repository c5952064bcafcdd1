// "Enrol my face" page: record a short clip in the browser (or pick a file), post it to the
// enrolment API, then poll the enrolment's status until it is ready or failed.
//
// Recording: getUserMedia preview under a guide oval, a countdown, then MediaRecorder for
// recordSeconds while prompts ask to look straight, then turn slightly left and right. The size
// and length limits are checked here before anything is sent (the server checks them again).
"use strict";

(() => {
  // Numbers in the page's language (a decimal comma in Croatian), as the server writes them.
  const LOCALE = document.documentElement.lang || undefined;
  const decimals = (x, digits) =>
    new Intl.NumberFormat(LOCALE, { minimumFractionDigits: digits, maximumFractionDigits: digits }).format(x);
  const config = JSON.parse(document.getElementById("enrol-config").textContent);
  const $ = (id) => document.getElementById(id);
  const form = $("enrol-form");
  const banner = $("banner");
  const consent = $("consent");
  const preview = $("preview");
  const prompt = $("prompt");
  const cameraStatus = $("camera-status");
  const cameraStart = $("camera-start");
  const recordStart = $("record-start");
  const recorded = $("recorded");
  const playback = $("playback");
  const sendRecording = $("send-recording");
  const recordAgain = $("record-again");
  const fileInput = $("video");
  const uploadSubmit = $("upload-submit");
  const progressCard = $("progress-card");
  const progressBar = $("progress-bar");
  const progressLabel = $("progress-label");
  const progressCounters = $("progress-counters");
  const result = $("result");
  const MAX_POLL_BACKOFF_MS = 15000;

  let stream = null;
  let recording = null; // {blob, name}
  let busy = false;

  // --- Small helpers --------------------------------------------------------------------------

  function csrfToken() {
    const input = document.querySelector("input[name=csrfmiddlewaretoken]");
    return input ? input.value : "";
  }

  function showBanner(text, kind) {
    banner.textContent = text;
    banner.className = "banner banner-" + (kind || "error");
    banner.hidden = false;
    banner.scrollIntoView({ block: "nearest" });
  }

  function hideBanner() {
    banner.hidden = true;
  }

  function megabytes(bytes) {
    return interpolate(gettext("%(n)s MB"), { n: decimals(bytes / 1024 / 1024, 1) }, true);
  }

  // Focus goes to `target` when the focused control is about to disappear (hidden or disabled),
  // so that a keyboard or screen-reader user is never dropped back to the top of the page.
  function moveFocusIfLost(target, leaving) {
    const active = document.activeElement;
    const lost = !active || active === document.body || leaving.includes(active) || active.disabled ||
      active.closest("[hidden]");
    if (lost && target) target.focus({ preventScroll: false });
  }

  function setBusy(value, focusTarget) {
    busy = value;
    const buttons = [recordStart, sendRecording, recordAgain, uploadSubmit, cameraStart];
    const active = document.activeElement;
    for (const button of buttons) {
      if (button) button.disabled = value || (button === recordStart && !stream);
    }
    if (buttons.includes(active) && active.disabled) moveFocusIfLost(focusTarget || cameraStatus, [active]);
  }

  function requireConsent() {
    if (consent.checked) return true;
    showBanner(gettext("Tick the consent box first: without consent nothing is stored or processed."));
    consent.focus();
    return false;
  }

  function checkSize(bytes) {
    if (bytes === 0) {
      showBanner(gettext("The file is empty (0 bytes): record or choose the video again."));
      return false;
    }
    if (bytes > config.maxBytes) {
      showBanner(interpolate(gettext("The video is %(size)s, over the %(limit)s MB limit. Record a shorter clip (about 10 seconds is enough) or at a lower resolution."), { size: megabytes(bytes), limit: config.maxMb }, true));
      return false;
    }
    return true;
  }

  // The length of a chosen file, from its metadata; null when the browser cannot tell (a WebM
  // written by MediaRecorder has no duration in its header: the server counts its frames).
  function fileDuration(file) {
    return new Promise((resolve) => {
      const probe = document.createElement("video");
      const url = URL.createObjectURL(file);
      const done = (value) => { URL.revokeObjectURL(url); resolve(value); };
      probe.preload = "metadata";
      probe.onloadedmetadata = () => done(Number.isFinite(probe.duration) ? probe.duration : null);
      probe.onerror = () => done(null);
      setTimeout(() => done(null), 5000);
      probe.src = url;
    });
  }

  // --- Modes ----------------------------------------------------------------------------------

  for (const element of document.querySelectorAll("[data-js-only]")) element.hidden = false;
  const panels = { record: $("record-panel"), upload: $("upload-panel") };
  const tabs = { record: $("mode-record"), upload: $("mode-upload") };

  // ARIA tabs (the APG pattern): one tab in the Tab order, arrow keys, Home and End move between
  // them and select the one they land on.
  function showMode(mode, focus) {
    for (const name of Object.keys(panels)) {
      const selected = name === mode;
      panels[name].hidden = !selected;
      tabs[name].setAttribute("aria-selected", String(selected));
      tabs[name].tabIndex = selected ? 0 : -1;
      tabs[name].classList.toggle("active", selected);
    }
    if (focus) tabs[mode].focus();
  }
  const modeOrder = Object.keys(tabs);
  for (const [name, tab] of Object.entries(tabs)) {
    tab.addEventListener("click", () => showMode(name));
    tab.addEventListener("keydown", (event) => {
      const at = modeOrder.indexOf(name);
      const next = { ArrowRight: at + 1, ArrowDown: at + 1, ArrowLeft: at - 1, ArrowUp: at - 1,
        Home: 0, End: modeOrder.length - 1 }[event.key];
      if (next === undefined) return;
      event.preventDefault();
      showMode(modeOrder[(next + modeOrder.length) % modeOrder.length], true);
    });
  }
  showMode("record");

  // --- Camera and recording -------------------------------------------------------------------

  async function startCamera() {
    hideBanner();
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia || !window.MediaRecorder) {
      showBanner(gettext("This browser cannot record from the camera here (browsers allow cameras only on https:\/\/ pages or on localhost). Upload a video file instead."));
      showMode("upload");
      return;
    }
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
    } catch (error) {
      const reasons = {
        NotAllowedError: gettext("Camera access was refused. Allow the camera for this site (the icon in the address bar) and press Start the camera again, or upload a video file instead."),
        NotFoundError: gettext("No camera was found. Connect one, or upload a video file instead."),
        NotReadableError: gettext("The camera is in use by another program. Close it and try again."),
      };
      showBanner(reasons[error.name] ||
        interpolate(gettext("The camera could not start (%(error)s). Upload a video file instead."), { error: error.name }, true));
      return;
    }
    preview.srcObject = stream;
    cameraStatus.textContent = gettext("Camera on. Put your face inside the oval, then press Record.");
    recordStart.disabled = busy;
    const hadFocus = document.activeElement === cameraStart;
    cameraStart.hidden = true;
    if (hadFocus) recordStart.focus();  // the next step, in place of the button that hid itself
  }

  function stopCamera() {
    if (stream) for (const track of stream.getTracks()) track.stop();
    stream = null;
    preview.srcObject = null;
    cameraStart.hidden = false;
    const hadFocus = document.activeElement === recordStart;
    recordStart.disabled = true;
    if (hadFocus) cameraStart.focus();
  }

  function recorderType() {
    for (const type of ["video/webm;codecs=vp8", "video/webm", "video/mp4"]) {
      if (MediaRecorder.isTypeSupported(type)) return type;
    }
    return "";
  }

  function sleep(ms) {
    return new Promise((resolve) => setTimeout(resolve, ms));
  }

  // Live regions hear each instruction once: the visible prompt and status line tick every
  // second, but a screen reader is told only when the words change, not every number.
  const promptLive = $("prompt-live");
  const progressLive = $("progress-live");

  function tell(region, text) {
    if (region && text && region.dataset.said !== text) {
      region.dataset.said = text;
      region.textContent = text;
    }
  }

  function say(text, spoken) {
    prompt.textContent = text;
    prompt.hidden = !text;
    tell(promptLive, spoken === undefined ? text : spoken);
  }

  async function record() {
    if (!requireConsent() || !stream) return;
    hideBanner();
    const leaving = [recordAgain, sendRecording];
    setBusy(true, cameraStatus);
    recorded.hidden = true;
    moveFocusIfLost(cameraStatus, leaving);
    for (let n = config.countdownSeconds; n > 0; n--) {
      say(String(n), n === config.countdownSeconds
        ? interpolate(ngettext("Recording starts in %(n)s second.", "Recording starts in %(n)s seconds.", n), { n }, true)
        : "");
      await sleep(1000);
    }
    const type = recorderType();
    const recorder = new MediaRecorder(stream, type ? { mimeType: type } : undefined);
    const chunks = [];
    recorder.ondataavailable = (event) => { if (event.data && event.data.size) chunks.push(event.data); };
    const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
    recorder.start(250);
    const seconds = config.recordSeconds;
    const started = performance.now();
    const prompts = [
      [0, gettext("Look straight at the camera")],
      [seconds * 0.35, gettext("Turn your head slightly to the left")],
      [seconds * 0.65, gettext("Now slightly to the right")],
    ];
    while (performance.now() - started < seconds * 1000) {
      const elapsed = (performance.now() - started) / 1000;
      const current = prompts.filter(([from]) => elapsed >= from).pop();
      say(`${current[1]} · ${Math.ceil(seconds - elapsed)}`, current[1]);
      // Not a live update each tick: the status line is aria-live (it says "Recording finished.").
      cameraStatus.setAttribute("aria-live", "off");
      cameraStatus.textContent = interpolate(gettext("Recording… %(elapsed)s of %(total)s s"),
        { elapsed: decimals(elapsed, 0), total: seconds }, true);
      await sleep(200);
    }
    recorder.stop();
    await stopped;
    say("");
    cameraStatus.setAttribute("aria-live", "polite");
    const blob = new Blob(chunks, { type: recorder.mimeType || type || "video/webm" });
    const extension = blob.type.includes("mp4") ? "mp4" : "webm";
    recording = { blob, name: `recording.${extension}` };
    playback.src = URL.createObjectURL(blob);
    $("recorded-info").textContent = interpolate(gettext("%(seconds)s s, %(size)s"),
      { seconds, size: megabytes(blob.size) }, true);
    recorded.hidden = false;
    cameraStatus.textContent = gettext("Recording finished.");
    setBusy(false);
    recorded.dataset.ready = "true";
    // The next step: send it. Focus was on the status line (Record was disabled while recording).
    moveFocusIfLost(sendRecording, []);
    if (document.activeElement === cameraStatus) sendRecording.focus();
  }

  // --- Upload and progress --------------------------------------------------------------------

  function upload(blob, name) {
    if (!requireConsent() || !checkSize(blob.size)) return;
    hideBanner();
    result.hidden = true;
    progressCard.hidden = false;
    setBusy(true, progressCard);
    const data = new FormData();
    data.append("video", blob, name);
    data.append("consent", "true");
    if (config.consentVersion) data.append("consent_version", config.consentVersion);
    if (config.studentId) data.append("student", String(config.studentId));
    const request = new XMLHttpRequest();
    request.open("POST", config.uploadUrl);
    request.setRequestHeader("X-CSRFToken", csrfToken());
    request.setRequestHeader("Accept", "application/json");
    request.responseType = "json";
    progressCard.hidden = false;
    progressBar.removeAttribute("value");
    progressLabel.textContent = gettext("Uploading…");
    tell(progressLive, gettext("Uploading…"));
    progressCounters.textContent = "";
    request.upload.onprogress = (event) => {
      if (event.lengthComputable) {
        progressLabel.textContent = interpolate(gettext("Uploading… %(percent)s %"),
          { percent: Math.round((100 * event.loaded) / event.total) }, true);
      }
    };
    request.onload = () => {
      const body = request.response || {};
      if (request.status === 202) {
        stopCamera();
        showProgress(body);
        poll(body.status_url, 0);
        return;
      }
      progressCard.hidden = true;
      setBusy(false);
      showBanner(body.message || body.detail ||
        interpolate(gettext("The server answered %(status)s. Try again in a moment."), { status: request.status }, true));
      banner.focus();
    };
    request.onerror = () => {
      progressCard.hidden = true;
      setBusy(false);
      showBanner(gettext("The upload did not reach the server (network error). Check your connection and send it again."));
      banner.focus();
    };
    request.send(data);
  }

  const COUNTER_LABELS = [
    ["frames_read", gettext("frames read"), "frames_total"],
    ["faces_found", gettext("faces found")],
    ["usable_faces", pgettext("enrolment counter: usable faces", "usable")],
    ["embedded", pgettext("enrolment counter: faces embedded", "embedded"), "to_embed"],
    ["embeddings", gettext("face views stored")],
  ];

  function showProgress(status) {
    progressCard.hidden = false;
    progressBar.value = status.percent;
    progressLabel.textContent = interpolate(gettext("%(label)s (%(percent)s %)"),
      { label: status.label, percent: status.percent }, true);
    tell(progressLive, status.label);  // each stage once, not each percent
    const counters = status.counters || {};
    progressCounters.textContent = COUNTER_LABELS
      .filter(([key]) => key in counters)
      .map(([key, label, of]) => (of && of in counters
        ? interpolate(gettext("%(label)s: %(n)s of %(total)s"), { label, n: counters[key], total: counters[of] }, true)
        : interpolate(gettext("%(label)s: %(n)s"), { label, n: counters[key] }, true)))
      .join(" · ");
  }

  function finish(status) {
    const hadFocus = progressCard.contains(document.activeElement) || document.activeElement === document.body ||
      [recordStart, sendRecording, recordAgain, uploadSubmit].includes(document.activeElement);
    progressCard.hidden = true;
    setBusy(false);
    result.hidden = false;
    result.dataset.status = status.status;
    result.replaceChildren();
    const title = document.createElement("h2");
    const text = document.createElement("p");
    if (status.status === "ready") {
      result.className = "card";
      result.classList.add("result-ok");
      title.textContent = gettext("Done: your face is enrolled");
      text.textContent = interpolate(ngettext("%(n)s face view stored.", "%(n)s face views stored.", status.embeddings),
        { n: status.embeddings }, true) + " " + gettext("Lecturers' cameras can now recognise you in your courses.");
      recording = null;
      recorded.hidden = true;
      const current = $("current-status");
      if (current) {
        const badge = document.createElement("span");
        badge.className = "badge";
        badge.classList.add("badge-ready");
        badge.textContent = gettext("Ready");
        current.replaceChildren(badge, " " + interpolate(ngettext("since just now: %(n)s face view stored.",
          "since just now: %(n)s face views stored.", status.embeddings), { n: status.embeddings }, true));
      }
    } else if (status.status === "failed") {
      result.className = "card";
      result.classList.add("result-bad");
      title.textContent = gettext("The video was not accepted");
      text.textContent = status.error_message || gettext("The video could not be used. Record again.");
      recording = null;
      recorded.hidden = true;
    } else {
      result.className = "card";
      title.textContent = gettext("This enrolment ended");
      text.textContent = status.label;
    }
    // Whatever the outcome, the earlier refusal is history now: the result card says what counts.
    const lastFailure = $("last-failure");
    if (lastFailure) lastFailure.remove();
    result.append(title, text);
    result.scrollIntoView({ block: "nearest" });
    if (hadFocus || !document.activeElement || document.activeElement === document.body) result.focus();
  }

  async function poll(url, failures) {
    let status = null;
    try {
      const response = await fetch(url, { headers: { Accept: "application/json" }, cache: "no-store" });
      if (response.ok) status = await response.json();
      else if (response.status === 404 || response.status === 403) {
        showBanner(gettext("This enrolment can no longer be seen (it was withdrawn). Reload the page."));
        setBusy(false);
        banner.focus();
        return;
      }
    } catch (error) {
      status = null;
    }
    if (status === null) {
      const wait = Math.min(MAX_POLL_BACKOFF_MS, config.pollMs * 2 ** (failures + 1));
      progressLabel.textContent = interpolate(gettext("The server is not answering; trying again in %(n)s s…"),
        { n: Math.round(wait / 1000) }, true);
      setTimeout(() => poll(url, failures + 1), wait);
      return;
    }
    if (status.finished) {
      finish(status);
      return;
    }
    showProgress(status);
    setTimeout(() => poll(url, 0), config.pollMs);
  }

  // --- Wiring ---------------------------------------------------------------------------------

  cameraStart.addEventListener("click", startCamera);
  recordStart.addEventListener("click", record);
  recordAgain.addEventListener("click", () => { recorded.hidden = true; recording = null; record(); });
  sendRecording.addEventListener("click", () => { if (recording) upload(recording.blob, recording.name); });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (busy || !requireConsent()) return;
    const file = fileInput.files && fileInput.files[0];
    if (!file) {
      showBanner(gettext("Choose a video file (or record one) before sending."));
      return;
    }
    if (!checkSize(file.size)) return;
    const seconds = await fileDuration(file);
    if (seconds !== null && seconds > config.maxSeconds + 0.5) {
      showBanner(interpolate(gettext("The video is %(duration)s seconds long; the limit is %(limit)s seconds. Record a shorter clip: about 8 seconds, turning your head slightly left and right, is enough."),
        { duration: Math.round(seconds), limit: config.maxSeconds }, true));
      return;
    }
    upload(file, file.name);
  });

  if (config.active && !config.active.finished) {
    setBusy(true);
    showProgress(config.active);
    poll(config.active.status_url, 0);
  }
})();
