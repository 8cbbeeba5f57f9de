// meiscope dashboard: the unit browser, the run controls, the live panels over the /ws/runs websocket,
// pinned runs and the session's history. The URL hash holds the unit and the config.

const $ = (sel) => document.querySelector(sel);
const state = {
  units: [], atlasActivation: null, thumbnails: {}, selected: null, focused: 0,
  ws: null, run: null, curves: null, lastFrame: null, presets: {}, pinned: [],
  baseConfig: null,  // config fields without a control here (from the URL, a preset or a sweep's run)
};

// ---- config <-> form ---------------------------------------------------------------------------
const form = $("#controls");

function setPath(obj, path, value) {
  const parts = path.split(".");
  let node = obj;
  for (const p of parts.slice(0, -1)) node = node[p] ??= {};
  node[parts.at(-1)] = value;
}

function getPath(obj, path) {
  return path.split(".").reduce((node, p) => (node == null ? undefined : node[p]), obj);
}

function readConfig() {
  const config = structuredClone(state.baseConfig ?? {});
  for (const el of form.elements) {
    if (!el.name) continue;
    let value = el.value;
    if (el.type === "number" || el.type === "range") value = Number(value);
    setPath(config, el.name, value);
  }
  config.unit = state.selected ?? 0;
  config.snapshot_every = Math.max(1, Math.min(5, Math.round(config.steps / 100)));
  config.elbo_every = config.snapshot_every;
  return config;
}

function writeConfig(config) {
  for (const el of form.elements) {
    if (!el.name) continue;
    const value = getPath(config, el.name);
    if (value !== undefined && typeof value !== "object") el.value = value;
  }
  showOutputs();
}

function showOutputs() {
  for (const out of form.querySelectorAll("output")) out.value = out.previousElementSibling.value;
  const method = form.elements["method"].value;
  document.body.classList.toggle("transform", method.startsWith("transform"));
  document.body.classList.toggle("distribution", method.endsWith("distribution"));
}

function saveHash() {
  const config = readConfig();
  delete config.unit;
  const params = new URLSearchParams({ unit: state.selected ?? "", config: JSON.stringify(config) });
  history.replaceState(null, "", "#" + params.toString());
}

function loadHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.get("config")) {
    try {
      state.baseConfig = JSON.parse(params.get("config"));
      writeConfig(state.baseConfig);
    } catch { /* a bad hash keeps the defaults */ }
  }
  const unit = params.get("unit");
  return unit === null || unit === "" ? null : Number(unit);
}

// ---- unit browser ------------------------------------------------------------------------------
function visibleUnits() {
  const filter = $("#filter").value, sort = $("#sort").value, query = $("#search").value.trim();
  let list = state.units.filter((u) => filter === "all" || u.status === filter ||
    (filter === "texture" && u.texture_sensitive === true));
  if (query !== "") list = list.filter((u) => String(u.unit).startsWith(query));
  const act = (u) => (state.atlasActivation ? state.atlasActivation[u.unit] : 0);
  const key = { kl: (u) => -(u.mean_kl ?? 0), activation: (u) => -act(u), index: (u) => u.unit,
    texture: (u) => -(u.texture_eta2 ?? 0) }[sort];
  return list.sort((a, b) => key(a) - key(b));
}

function renderGrid() {
  const grid = $("#grid");
  grid.replaceChildren();
  const list = visibleUnits();
  state.focused = Math.min(state.focused, Math.max(0, list.length - 1));
  list.forEach((u, i) => {
    const tile = document.createElement("button");
    tile.type = "button";
    tile.className = `tile ${u.status}` + (u.unit === state.selected ? " selected" : "") + (i === state.focused ? " focused" : "");
    tile.dataset.unit = u.unit;
    tile.setAttribute("role", "option");
    const thumb = state.thumbnails[u.unit];
    const act = state.atlasActivation ? ` ${state.atlasActivation[u.unit].toFixed(2)}` : "";
    tile.innerHTML = (thumb ? `<img alt="unit ${u.unit}" src="${thumb}">` : `<div class="blank"></div>`) +
      `<span>u${u.unit}${act}</span>`;
    tile.title = `unit ${u.unit}: ${u.status}, mean KL ${u.mean_kl ?? "?"}`;
    tile.addEventListener("click", () => selectUnit(u.unit));
    grid.append(tile);
  });
}

function selectUnit(unit) {
  state.selected = unit;
  const u = state.units.find((x) => x.unit === unit) ?? { unit };
  $("#unit-title").textContent = `unit ${unit}`;
  const texture = u.texture_eta2 === undefined ? "" :
    ` · ${u.texture_sensitive ? "texture-sensitive" : "not texture-sensitive"} (eta² ${u.texture_eta2})`;
  $("#unit-stats").textContent = u.mean_kl === undefined ? "" :
    `${u.status} · mean KL ${u.mean_kl} nats · data activation mean ${u.act_mean}, 99.9th pct ${u.act_p999}${texture}`;
  renderGrid();
  saveHash();
}

$("#grid").addEventListener("keydown", (event) => {
  const tiles = [...$("#grid").children];
  if (!tiles.length) return;
  const columns = Math.max(1, Math.round($("#grid").clientWidth / tiles[0].offsetWidth));
  const moves = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: columns, ArrowUp: -columns };
  if (event.key in moves) {
    state.focused = Math.max(0, Math.min(tiles.length - 1, state.focused + moves[event.key]));
    renderGrid();
    $("#grid").children[state.focused].scrollIntoView({ block: "nearest" });
    event.preventDefault();
  } else if (event.key === "Enter") {
    selectUnit(Number(tiles[state.focused].dataset.unit));
  }
});
for (const id of ["#filter", "#sort", "#search"]) $(id).addEventListener("input", renderGrid);

// ---- plots -------------------------------------------------------------------------------------
const square = { margin: { l: 20, r: 10, t: 5, b: 20 }, yaxis: { autorange: "reversed", scaleanchor: "x" } };
const plotConfig = { displayModeBar: false, responsive: true, staticPlot: false };

function heatmap(id, z, colorscale = "Greys", symmetric = true) {
  const trace = { z, type: "heatmap", colorscale, showscale: false, reversescale: colorscale === "Greys" };
  if (symmetric) {
    const lim = Math.max(1e-9, ...z.flat().map(Math.abs));
    Object.assign(trace, { zmin: -lim, zmax: lim });
  }
  Plotly.react(id, [trace], square, plotConfig);
}

const CURVES = ["activation", "runner_up", "elbo", "objective"];

function resetCurves() {
  state.curves = Object.fromEntries(CURVES.map((k) => [k, { x: [], y: [] }]));
}

function drawCurves() {
  const traces = CURVES.map((k, i) => ({
    x: state.curves[k].x, y: state.curves[k].y, name: k.replace("_", "-"), mode: "lines",
    xaxis: "x", yaxis: i < 2 ? "y" : i === 2 ? "y2" : "y3",
  }));
  const layout = {
    // the trace arrays grow in place: a new datarevision tells Plotly.react to redraw and rescale
    datarevision: state.curves.activation.x.length + (state.run?.id ?? ""),
    margin: { l: 50, r: 10, t: 5, b: 30 }, legend: { orientation: "h" },
    grid: { rows: 1, columns: 3, pattern: "independent" },
    xaxis: { title: { text: "step" } }, yaxis: { title: { text: "activation" } },
    yaxis2: { title: { text: "ELBO" }, anchor: "x2" }, xaxis2: { matches: "x" },
    yaxis3: { title: { text: "objective" }, anchor: "x3" }, xaxis3: { matches: "x" },
  };
  traces[2].xaxis = "x2"; traces[3].xaxis = "x3";
  Plotly.react("plot-curves", traces, layout, plotConfig);
}

// frames carry arrays as {shape, b64: float32 little-endian}; Plotly wants nested lists
export function unpack(packed) {
  const bytes = Uint8Array.from(atob(packed.b64), (c) => c.charCodeAt(0));
  const flat = new Float32Array(bytes.buffer);
  const nest = (offset, dims) => {
    if (dims.length === 1) return Array.from(flat.subarray(offset, offset + dims[0]));
    const step = dims.slice(1).reduce((a, b) => a * b, 1);
    return Array.from({ length: dims[0] }, (_, i) => nest(offset + i * step, dims.slice(1)));
  };
  return nest(0, packed.shape);
}

function showFrame(packedFrame) {
  const frame = { ...packedFrame, images: unpack(packedFrame.images), spectra: unpack(packedFrame.spectra),
    arrays: Object.fromEntries(Object.entries(packedFrame.arrays).map(([k, v]) => [k, unpack(v)])) };
  state.lastFrame = frame;
  heatmap("plot-input", frame.images[0]);
  heatmap("plot-spectrum", frame.spectra[0], "Viridis", false);
  if (frame.arrays.kernels) heatmap("plot-kernel", frame.arrays.kernels[0]);
  if (frame.arrays.inputs) heatmap("plot-raw", frame.arrays.inputs[0]);
  if (frame.arrays.sigma && Array.isArray(frame.arrays.sigma[0])) heatmap("plot-sigma", frame.arrays.sigma[0], "Viridis", false);
  $("#samples-panel").hidden = frame.images.length < 2;
  if (frame.images.length > 1) {
    const strip = $("#samples");
    while (strip.children.length < frame.images.length) strip.append(document.createElement("canvas"));
    while (strip.children.length > frame.images.length) strip.lastChild.remove();
    frame.images.forEach((img, i) => drawCanvas(strip.children[i], img));
  }
  for (const k of CURVES) {
    const v = frame.metrics[k][0];
    if (v !== null && v !== undefined) { state.curves[k].x.push(frame.step); state.curves[k].y.push(v); }
  }
  drawCurves();
  $("#progress").value = frame.step / frame.steps;
  const seconds = (performance.now() - state.run.started) / 1000;
  $("#rate").textContent = `step ${frame.step} / ${frame.steps} · ${(frame.step / Math.max(seconds, 1e-3)).toFixed(0)} steps/s`;
}

// ---- runs over the websocket -------------------------------------------------------------------
function setStatus(status) {
  $("#status").textContent = status;
  $("#status").dataset.status = status;
  const going = status === "running" || status === "queued" || status === "starting";
  $("#run").disabled = going;
  $("#stop").disabled = !going;
  $("#pin").disabled = going || !state.lastFrame;
  $("#export").disabled = going || !(state.pinned.length || state.run?.done);
}

function exportRuns() {
  const ids = (state.pinned.length ? state.pinned : [state.run]).filter((r) => r?.id).map((r) => r.id);
  if (!ids.length) return;
  const link = document.createElement("a");
  link.href = `/api/export?ids=${ids.join(",")}`;
  link.download = `meiscope-${ids.join("-")}.zip`;
  document.body.append(link);
  link.click();
  link.remove();
}

function showError(message) {
  $("#error").hidden = !message;
  $("#error").textContent = message ?? "";
}

function connect() {
  return new Promise((resolve) => {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) return resolve(state.ws);
    const ws = new WebSocket(`${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/ws/runs`);
    ws.onopen = () => resolve(ws);
    ws.onmessage = (event) => onMessage(JSON.parse(event.data));
    ws.onclose = (event) => {
      if (state.run && !state.run.done) setStatus("disconnected");
      // 1008 (too many messages, no token, another origin), 1009 (message too big): the server says why
      if (event.code === 1008 || event.code === 1009) showError(`connection closed by the server: ${event.reason}`);
    };
    state.ws = ws;
  });
}

function onMessage(message) {
  if (message.type === "started") {
    state.run.id = message.run_id;
    setStatus(message.status === "queued" && message.queue_position > 0 ? `queued (${message.queue_position} ahead)` : "running");
  } else if (message.type === "frame" && state.run && message.run_id === state.run.id) {
    if ($("#status").dataset.status !== "running") setStatus("running");
    showFrame(message);
  } else if (message.type === "done" && state.run && message.run_id === state.run.id) {
    state.run.done = true;
    state.run.final = message.final;
    setStatus(message.status);
    addHistory(state.run, message);
  } else if (message.type === "error") {
    if (state.run && (!message.run_id || message.run_id === state.run.id)) {
      state.run.done = true;
      setStatus(message.code === "busy" ? "busy" : "error");
    }
    showError(message.message);
  }
}

async function startRun() {
  showError(null);
  const config = readConfig();
  saveHash();
  state.run = { config, started: performance.now(), done: false };
  state.lastFrame = null;
  resetCurves();
  setStatus("starting");
  const ws = await connect();
  ws.send(JSON.stringify({ type: "start", config }));
}

function addHistory(run, message) {
  const li = document.createElement("li");
  const act = message.final ? message.final.activation[0].toFixed(3) : "–";
  li.textContent = `${run.id}: unit ${run.config.unit}, ${run.config.method}, ${message.step} steps, ${message.status}, activation ${act}`;
  $("#history").append(li);
}

export function drawCanvas(canvas, image) {
  const n = image.length, ctx = canvas.getContext("2d");
  canvas.width = n; canvas.height = n;
  const lim = Math.max(1e-9, ...image.flat().map(Math.abs));
  const pixels = ctx.createImageData(n, n);
  image.flat().forEach((v, i) => {
    const g = Math.round(255 * (0.5 + 0.5 * v / lim));
    pixels.data.set([g, g, g, 255], 4 * i);
  });
  ctx.putImageData(pixels, 0, 0);
}

function pinRun() {
  if (!state.run || !state.lastFrame) return;
  const card = document.createElement("div");
  card.className = "card";
  const canvas = document.createElement("canvas");
  drawCanvas(canvas, state.lastFrame.images[0]);
  const f = state.run.final;
  const summary = f ? `activation ${f.activation[0].toFixed(3)} · runner-up ${f.runner_up[0].toFixed(3)} (u${f.runner_up_unit[0]})` +
    (f.elbo ? ` · ELBO ${f.elbo[0].toFixed(0)}` : "") : "";
  card.innerHTML = `<strong>unit ${state.run.config.unit} · ${state.run.config.method}</strong><div>${summary}</div>`;
  card.prepend(canvas);
  const pre = document.createElement("pre");
  pre.textContent = JSON.stringify(state.run.config, null, 1);
  card.append(pre);
  $("#pinned").append(card);
  state.pinned.push(state.run);
  $("#export").disabled = false;
}

async function analyseUnit() {
  const unit = state.selected;
  $("#analysis").hidden = false;
  $("#analysis-summary").textContent = `analysing unit ${unit}…`;
  $("#analysis-panels").replaceChildren();
  const response = await fetch(`/api/units/${unit}/analysis`);
  if (unit !== state.selected) return;  // the user moved on
  if (!response.ok) { $("#analysis-summary").textContent = `analysis failed: ${response.status}`; return; }
  const result = await response.json();
  const a = result.numbers.agreement, g = result.numbers.gabor.optimised;
  $("#analysis-summary").textContent = `unit ${unit}: preferred input vs STA r = ${a.preferred_vs_sta.toFixed(2)}, ` +
    `vs one-hot synthesis r = ${a.preferred_vs_one_hot.toFixed(2)}, across seeds r = ${a.across_seeds_mean.toFixed(2)}; ` +
    `best Gabor ${g.orientation_deg.toFixed(0)}°, ${g.params.freq.toFixed(3)} c/px, activation ${g.activation.toFixed(2)}`;
  for (const panel of result.panels) {
    const card = document.createElement("div");
    card.className = "card";
    const canvas = document.createElement("canvas");
    drawCanvas(canvas, unpack(panel.image));
    card.append(canvas, Object.assign(document.createElement("div"), { textContent: panel.title }));
    $("#analysis-panels").append(card);
  }
}

$("#analyse").addEventListener("click", analyseUnit);
$("#run").addEventListener("click", startRun);
$("#stop").addEventListener("click", () => state.ws && state.ws.send(JSON.stringify({ type: "stop" })));
$("#pin").addEventListener("click", pinRun);
$("#export").addEventListener("click", exportRuns);
form.addEventListener("input", () => { showOutputs(); saveHash(); });
$("#preset").addEventListener("change", (event) => {
  const preset = state.presets[event.target.value];
  if (preset) { state.baseConfig = structuredClone(preset); writeConfig(preset); saveHash(); }
});

// a stored run (a sweep's cell): its unit and config in the controls, its last frame and curves in the panels
export function openStoredRun({ run_id: id, unit, config, frame, curves }) {
  showError(null);
  state.baseConfig = { ...config };
  delete state.baseConfig.unit;
  writeConfig(config);
  selectUnit(unit);
  state.run = { id: null, config, started: performance.now(), done: false };
  resetCurves();
  showFrame(frame);
  state.curves = Object.fromEntries(CURVES.map((k) => {
    const points = curves[k].map((y, x) => [x, y]).filter(([, y]) => y !== null);
    return [k, { x: points.map((p) => p[0]), y: points.map((p) => p[1]) }];
  }));
  drawCurves();
  setStatus("stored");
  $("#rate").textContent = `stored run ${id}: ${frame.step} steps · Run reruns it here`;
}

// ---- start-up ----------------------------------------------------------------------------------
async function pollAtlas() {
  const atlas = await (await fetch("/api/atlas")).json();
  if (atlas.status === "ready") {
    state.atlasActivation = atlas.activation;
    state.thumbnails = await (await fetch("/api/atlas/thumbnails")).json();
    $("#atlas-status").textContent = "atlas ready";
    renderGrid();
  } else if (atlas.status === "building") {
    $("#atlas-status").textContent = `building the unit atlas: step ${atlas.step} / ${atlas.steps}`;
    setTimeout(pollAtlas, 1000);
  } else {
    $("#atlas-status").textContent = atlas.status === "off" ? "" : `atlas ${atlas.status}: ${atlas.error ?? ""}`;
  }
}

async function main() {
  const [model, units, presets] = await Promise.all(
    ["/api/model", "/api/units", "/api/presets"].map(async (u) => (await fetch(u)).json()));
  state.units = units;
  state.presets = presets;
  for (const name of Object.keys(presets)) $("#preset").append(new Option(name, name));
  const m = model.card?.metrics;
  $("#model-summary").textContent = `TDVAE-40 · ${model.n_parameters.toLocaleString()} parameters` +
    (m ? ` · held-out ELBO ${m.heldout.elbo.toFixed(0)} nats · ${m.units.n_active_kl_above_0_01 ?? m.units["n_active_kl_above_0.01"]} active units` : "");
  const unit = loadHash();
  showOutputs();
  resetCurves();
  const first = unit ?? visibleUnits()[0]?.unit ?? 0;
  selectUnit(first);
  setStatus("idle");
  pollAtlas();
  document.body.dataset.ready = "true";
}

main();
