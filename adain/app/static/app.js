"use strict";
// The page: pick a photo and up to four paintings, adjust, and the result is redrawn after every
// change through POST /api/stylize. A newer change aborts the request in flight, and only the
// latest answer is shown. An uploaded clip goes to POST /api/stylize-video instead, only when asked
// ("Stylize the clip"): it holds the server for every frame. No framework, no build step, nothing
// loaded from outside this server.

const DEBOUNCE_MS = 150; // wait for a slider to settle before asking the server
const SPINNER_DELAY_MS = 200; // fast answers (GPU) don't flash the progress indicator
const $ = (id) => document.getElementById(id);

const state = {
  device: "",
  maxStyles: 4, // replaced by the server's limits at start-up
  maxFrames: 0,
  examples: { content: [], style: [] },
  content: null, // { source: "example", name, title, thumb } or { source: "file", kind: "image" | "video", file, title, thumb }
  styles: [], // the same shapes, plus { id, weight }
};
let nextStyleId = 1;
let inFlight = null; // AbortController of the request being answered
let latest = 0; // number of the latest request; older answers are dropped
let debounceTimer = 0;
let resultUrl = null;
let stopBusy = () => {};

const isClip = () => state.content?.kind === "video";

function schedule() {
  clearTimeout(debounceTimer);
  if (isClip()) {
    // A clip is stylized only when asked: a shown result no longer matches the settings.
    document.querySelector(".frame").classList.toggle("stale", !$("result-video").hidden);
    return;
  }
  debounceTimer = setTimeout(stylize, DEBOUNCE_MS);
}

function cancel() {
  // Forget the request in flight: its answer, if any, is dropped.
  clearTimeout(debounceTimer);
  if (inFlight) inFlight.abort();
  inFlight = null;
  latest++;
  stopBusy();
}

function orderedStyles() {
  // The API takes uploaded files first, then example names; weights follow that order.
  return [...state.styles.filter((s) => s.source === "file"), ...state.styles.filter((s) => s.source === "example")];
}

const isSplit = () => state.styles.length === 2 && $("split").value !== "blend";

async function mediaSize(content) {
  // The photo's or clip's width and height: a mask must have its shape (the server checks it).
  const url = content.source === "file" ? content.thumb : content.image;
  if (content.kind === "video") {
    const video = Object.assign(document.createElement("video"), { preload: "metadata", muted: true, src: url });
    await new Promise((done, fail) => {
      video.onloadedmetadata = done;
      video.onerror = () => fail(new Error("This browser cannot read the clip's size for a split."));
    });
    return [video.videoWidth, video.videoHeight];
  }
  const image = new Image();
  image.src = url;
  await image.decode();
  return [image.naturalWidth, image.naturalHeight];
}

async function makeSplitMask() {
  // The spatial control of the paper: white where the first painting goes, black for the second,
  // drawn at the content's shape (longer side 256 px: the server resizes it to the content).
  const [width, height] = await mediaSize(state.content);
  const scale = 256 / Math.max(width, height);
  const canvas = Object.assign(document.createElement("canvas"), {
    width: Math.max(1, Math.round(width * scale)),
    height: Math.max(1, Math.round(height * scale)),
  });
  const draw = canvas.getContext("2d");
  draw.fillStyle = "black";
  draw.fillRect(0, 0, canvas.width, canvas.height);
  draw.fillStyle = "white";
  if ($("split").value === "left-right") draw.fillRect(0, 0, canvas.width / 2, canvas.height);
  else draw.fillRect(0, 0, canvas.width, canvas.height / 2);
  return new Promise((done) => canvas.toBlob(done, "image/png"));
}

function requestBody(mask) {
  // The form of POST /api/stylize(-video); ``mask``: a split's mask (a PNG blob) or null.
  const body = new FormData();
  if (state.content.source === "file") body.append("content", state.content.file);
  else body.append("content_example", state.content.name);
  const styles = orderedStyles();
  for (const s of styles) {
    if (s.source === "file") body.append("style", s.file);
    else body.append("style_example", s.name);
  }
  if (mask) body.append("mask", mask, "mask.png");
  else if (styles.length > 1) for (const s of styles) body.append("style_weights", String(s.weight));
  body.append("alpha", $("alpha").value);
  body.append("preserve_color", $("preserve").checked ? $("preserve-method").value : "none");
  body.append("content_size", $("size").value);
  body.append("format", isClip() ? $("video-format").value : $("format").value);
  return body;
}

async function stylize() {
  if (!state.content || state.styles.length === 0) {
    cancel(); // a request in flight was for a painting no longer chosen
    $("placeholder").textContent = state.content ? "Pick a painting." : "Pick a photo.";
    $("placeholder").hidden = !($("result").hidden && $("result-video").hidden);
    return;
  }
  cancel();
  const controller = new AbortController();
  inFlight = controller;
  const mine = latest;
  const clip = isClip();
  const alpha = $("alpha").value;
  const format = clip ? $("video-format").value : $("format").value;
  const split = isSplit() ? $("split").value : "";
  stopBusy = showBusy();
  try {
    const mask = split ? await makeSplitMask() : null;
    if (mine !== latest) return;
    const endpoint = clip ? "/api/stylize-video" : "/api/stylize";
    const response = await fetch(endpoint, { method: "POST", body: requestBody(mask), signal: controller.signal });
    if (!response.ok) throw new Error(await errorMessage(response));
    const blob = await response.blob();
    if (mine !== latest) return;
    await showResult(blob, response.headers, { clip, alpha, format, split, seq: mine });
    showError(null);
  } catch (err) {
    if (err.name === "AbortError" || mine !== latest) return;
    showError(err instanceof TypeError ? `Cannot reach the server (${err.message}).` : err.message);
  } finally {
    if (mine === latest) {
      inFlight = null;
      stopBusy();
    }
  }
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (typeof body.detail === "string") return body.detail;
  } catch (_) {
    // not JSON: fall through to the status line
  }
  return `The server answered ${response.status} ${response.statusText}.`;
}

async function showResult(blob, headers, facts) {
  const url = URL.createObjectURL(blob);
  const shown = facts.clip ? $("result-video") : $("result");
  shown.src = url;
  if (!facts.clip) await shown.decode(); // a clip shows its first frame once the browser has it
  shown.hidden = false;
  (facts.clip ? $("result") : $("result-video")).hidden = true;
  $("placeholder").hidden = true;
  if (resultUrl) URL.revokeObjectURL(resultUrl);
  resultUrl = url;
  shown.dataset.alpha = facts.alpha; // what this result was made with (read by the browser test, too)
  shown.dataset.split = facts.split;
  shown.dataset.seq = String(facts.seq);
  const link = $("download");
  link.href = url;
  link.download = `stylized.${facts.format === "jpeg" ? "jpg" : facts.format}`;
  link.setAttribute("aria-disabled", "false");
  const size = (headers.get("X-Image-Size") || "").replace("x", " × ");
  const seconds = Number(headers.get("X-Render-Seconds") || 0).toFixed(2);
  const frames = facts.clip ? `${headers.get("X-Frames")} frames, ` : "";
  $("status").textContent = `${frames}${size} px · ${seconds} s on ${state.device}`;
}

function showStage() {
  // What the result area offers for the chosen content: a clip waits for its button.
  const clip = isClip();
  $("render-clip").hidden = !clip;
  $("format").hidden = clip;
  $("video-format").hidden = !clip;
  const shown = clip ? $("result-video") : $("result");
  if (shown.hidden) {
    $("result").hidden = $("result-video").hidden = true;
    $("download").setAttribute("aria-disabled", "true");
    $("status").textContent = "";
    $("placeholder").hidden = false;
    $("placeholder").textContent = clip ? `Press “Stylize the clip” (at most ${state.maxFrames} frames): it takes a while.` : "";
  }
}

function showError(message, { stale = true } = {}) {
  const box = $("error");
  box.hidden = !message;
  box.textContent = message || "";
  // After a refused request the result shown is not for the settings shown: dim it.
  document.querySelector(".frame").classList.toggle("stale", Boolean(message) && stale);
}

function showBusy() {
  const busy = $("busy");
  const started = performance.now();
  const show = setTimeout(() => (busy.hidden = false), SPINNER_DELAY_MS);
  const tick = setInterval(() => {
    $("elapsed").textContent = `${((performance.now() - started) / 1000).toFixed(1)} s`;
  }, 100);
  return () => {
    clearTimeout(show);
    clearInterval(tick);
    busy.hidden = true;
    $("elapsed").textContent = "";
    stopBusy = () => {};
  };
}

function tile(item, pressed, onClick) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "tile";
  button.title = item.title;
  button.dataset.name = item.name;
  button.setAttribute("role", "listitem");
  button.setAttribute("aria-pressed", String(pressed));
  const media = document.createElement(item.kind === "video" ? "video" : "img");
  if (item.kind === "video") Object.assign(media, { muted: true, preload: "metadata", title: item.title });
  else media.alt = item.title;
  media.src = item.thumb;
  media.addEventListener("error", () => button.classList.add("broken")); // an upload the browser cannot show either
  button.append(media);
  button.addEventListener("click", onClick);
  return button;
}

function drawContentGallery() {
  const gallery = $("content-gallery");
  gallery.replaceChildren();
  if (state.content && state.content.source === "file") gallery.append(tile(state.content, true, () => {}));
  for (const ex of state.examples.content) {
    const pressed = state.content?.source === "example" && state.content.name === ex.name;
    gallery.append(tile(ex, pressed, () => chooseContent({ source: "example", ...ex })));
  }
}

function drawStyles() {
  const gallery = $("style-gallery");
  gallery.replaceChildren();
  for (const ex of state.examples.style) {
    const chosen = state.styles.find((s) => s.source === "example" && s.name === ex.name);
    gallery.append(tile(ex, Boolean(chosen), () => (chosen ? removeStyle(chosen.id) : addStyle({ source: "example", ...ex }))));
  }
  $("split-row").hidden = state.styles.length !== 2; // the mask of the paper takes exactly two
  const list = $("chosen-styles");
  list.replaceChildren();
  for (const s of state.styles) {
    const item = document.createElement("li");
    const thumb = document.createElement("img");
    thumb.src = s.thumb;
    thumb.alt = "";
    const title = document.createElement("span");
    title.className = "title";
    title.textContent = s.title;
    item.append(thumb, title);
    if (state.styles.length > 1 && !isSplit()) {
      const weight = document.createElement("input");
      Object.assign(weight, { type: "range", min: "0", max: "1", step: "0.05", value: String(s.weight) });
      weight.setAttribute("aria-label", `Weight of ${s.title}`);
      weight.addEventListener("input", () => {
        s.weight = Number(weight.value);
        schedule();
      });
      item.append(weight);
    }
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "remove";
    remove.textContent = "×";
    remove.setAttribute("aria-label", `Remove ${s.title}`);
    remove.addEventListener("click", () => removeStyle(s.id));
    item.append(remove);
    list.append(item);
  }
}

function chooseContent(content) {
  if (state.content?.source === "file") URL.revokeObjectURL(state.content.thumb);
  const switched = (state.content?.kind === "video") !== (content.kind === "video");
  if (switched || content.kind === "video") {
    cancel();
    $("result").hidden = $("result-video").hidden = true; // the old result is of another photo or clip
    showError(null);
  }
  state.content = content;
  drawContentGallery();
  showStage();
  schedule();
}

function addStyle(style) {
  if (state.styles.length >= state.maxStyles) {
    showError(`Up to ${state.maxStyles} paintings can be mixed: remove one first.`, { stale: false });
    return false;
  }
  state.styles.push({ ...style, id: nextStyleId++, weight: 1 });
  drawStyles();
  schedule();
  return true;
}

function removeStyle(id) {
  const gone = state.styles.find((s) => s.id === id);
  if (gone?.source === "file") URL.revokeObjectURL(gone.thumb);
  state.styles = state.styles.filter((s) => s.id !== id);
  drawStyles();
  schedule();
}

function fromFile(file) {
  const kind = file.type.startsWith("video/") ? "video" : "image";
  return { source: "file", kind, file, name: "", title: file.name, thumb: URL.createObjectURL(file) };
}

async function getJSON(url) {
  const response = await fetch(url);
  if (!response.ok) throw new Error(await errorMessage(response));
  return response.json();
}

async function start() {
  $("content-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) chooseContent(fromFile(file));
    event.target.value = ""; // the same file can be chosen again
  });
  $("style-file").addEventListener("change", (event) => {
    const file = event.target.files[0];
    if (file) addStyle(fromFile(file));
    event.target.value = "";
  });
  $("alpha").addEventListener("input", () => {
    $("alpha-value").textContent = Number($("alpha").value).toFixed(2);
    schedule();
  });
  $("preserve").addEventListener("change", () => {
    $("preserve-method").disabled = !$("preserve").checked;
    schedule();
  });
  for (const id of ["preserve-method", "size", "format", "video-format"]) $(id).addEventListener("change", schedule);
  $("split").addEventListener("change", () => {
    drawStyles(); // a split has no weights to set
    schedule();
  });
  $("render-clip").addEventListener("click", stylize);

  try {
    const [health, examples] = await Promise.all([getJSON("/api/health"), getJSON("/api/examples")]);
    state.device = health.device;
    state.maxStyles = health.limits.max_styles;
    state.maxFrames = health.limits.max_video_frames;
    if (health.device === "cpu") $("size").value = "384"; // smaller, so a CPU answers sooner
    // Offer only the sizes this server stylizes for photos up to 16:9 (its --max-pixels).
    for (const option of [...$("size").options]) {
      const side = Number(option.value);
      if (side && side * Math.round((side * 16) / 9) > health.limits.max_work_pixels) option.remove();
    }
    const withThumbs = (list) => list.map((ex) => ({ ...ex, thumb: ex.thumbnail }));
    state.examples = { content: withThumbs(examples.content), style: withThumbs(examples.style) };
  } catch (err) {
    showError(`Cannot load the page's data: ${err.message}`);
    return;
  }
  const { content, style } = state.examples;
  const firstContent = content.find((ex) => ex.name === "chelsea") || content[0];
  const firstStyle = style.find((ex) => ex.name === "van_gogh_starry_night") || style[0];
  if (firstContent) state.content = { source: "example", ...firstContent };
  if (firstStyle) state.styles.push({ source: "example", ...firstStyle, id: nextStyleId++, weight: 1 });
  drawContentGallery();
  drawStyles();
  stylize();
}

start();
