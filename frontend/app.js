// meiscope dashboard: the unit browser, the run controls, the live panels over the /ws/runs websocket,
// pinned runs and the session's history. The URL hash holds the unit and the config.

const $ = (sel) => document.querySelector(sel);
const state = {
  units: [], atlasActivation: null, thumbnails: {}, selected: null, focused: 0,
  ws: null, run: null, curves: null, lastFrame: null, presets: {}, pinned: [],
  baseConfig: null,  // config fields without a control here (from the URL, a preset or a sweep's run)
  model: null,  // what the loaded model offers (/api/model): input, layers, methods, ELBO, analysis
  layer: null,  // the readout layer whose units the browser lists
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
  config.layer = state.layer ?? config.layer;
  config.snapshot_every = Math.max(1, Math.min(5, Math.round(config.steps / 100)));
  config.elbo_every = config.snapshot_every;
  if (state.model && !state.model.has_elbo) setPath(config, "obj.elbo_weight", 0);  // no ELBO to weigh
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
    const atlasShown = state.layer === state.model?.default_layer;
    const thumb = atlasShown ? state.thumbnails[u.unit] : undefined;
    const act = state.atlasActivation && atlasShown ? ` ${state.atlasActivation[u.unit].toFixed(2)}` : "";
    const label = u.label !== undefined && u.label !== null ? ` “${u.label}”` : "";
    tile.innerHTML = (thumb ? `<img alt="unit ${u.unit}" src="${thumb}">` : `<div class="blank"></div>`) +
      `<span>u${u.unit}${label}${act}</span>`;
    tile.title = `unit ${u.unit}${label}: ${u.status}` + (u.mean_kl !== undefined ? `, mean KL ${u.mean_kl}` : "");
    tile.addEventListener("click", () => selectUnit(u.unit));
    grid.append(tile);
  });
}

function selectUnit(unit) {
  state.selected = unit;
  const u = state.units.find((x) => x.unit === unit) ?? { unit };
  const label = u.label !== undefined && u.label !== null ? ` “${u.label}”` : "";
  $("#unit-title").textContent = `${state.layer ?? ""} unit ${unit}${label}`.trim();
  const texture = u.texture_eta2 === undefined ? "" :
    ` · ${u.texture_sensitive ? "texture-sensitive" : "not texture-sensitive"} (eta² ${u.texture_eta2})`;
  const kl = u.mean_kl === undefined ? "" : ` · mean KL ${u.mean_kl} nats`;
  $("#unit-stats").textContent = u.act_mean === undefined ? "" :
    `${u.status}${kl} · data activation mean ${u.act_mean}, 99.9th pct ${u.act_p999}${texture}`;
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

// a (C, H, W) image of several channels as rows of [r, g, b] in 0..255, all channels scaled together
function rgbRows(image) {
  const values = image.flat(2);
  const lo = Math.min(...values), span = Math.max(1e-9, Math.max(...values) - lo);
  return image[0].map((row, y) => row.map((_, x) => [0, 1, 2].map((c) =>
    Math.round(255 * (image[Math.min(c, image.length - 1)][y][x] - lo) / span))));
}

// an input as the model sees it: grey (centred on 0 for centred inputs) or colour for several channels
function showInput(id, image) {
  if (Array.isArray(image[0][0])) {
    Plotly.react(id, [{ z: rgbRows(image), type: "image" }], square, plotConfig);
  } else {
    heatmap(id, image, "Greys", state.model?.input.centred ?? true);
  }
}

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
  // activation and runner-up share the first plot; then the ELBO (only for a model that has one), the objective
  const panels = [["activation", "runner_up"], ...(state.model?.has_elbo ?? true ? [["elbo"]] : []), ["objective"]];
  const titles = { activation: "activation", elbo: "ELBO", objective: "objective" };
  const traces = [], layout = {
    // the trace arrays grow in place: a new datarevision tells Plotly.react to redraw and rescale
    datarevision: state.curves.activation.x.length + (state.run?.id ?? ""),
    margin: { l: 50, r: 10, t: 5, b: 30 }, legend: { orientation: "h" },
    grid: { rows: 1, columns: panels.length, pattern: "independent" },
  };
  panels.forEach((names, i) => {
    const n = i === 0 ? "" : String(i + 1);
    layout[`xaxis${n}`] = i === 0 ? { title: { text: "step" } } : { matches: "x" };
    layout[`yaxis${n}`] = { title: { text: titles[names[0]] } };
    for (const k of names) {
      traces.push({ x: state.curves[k].x, y: state.curves[k].y, name: k.replace("_", "-"), mode: "lines",
        xaxis: `x${n}`, yaxis: `y${n}` });
    }
  });
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
  showInput("plot-input", frame.images[0]);
  heatmap("plot-spectrum", frame.spectra[0], "Viridis", false);
  if (frame.arrays.kernels) heatmap("plot-kernel", frame.arrays.kernels[0]);
  if (frame.arrays.inputs) showInput("plot-raw", frame.arrays.inputs[0]);
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

export function drawCanvas(canvas, image, centred = state.model?.input.centred ?? true) {
  const rgb = Array.isArray(image[0][0]) ? rgbRows(image) : null;
  const h = rgb ? rgb.length : image.length, w = rgb ? rgb[0].length : image[0].length;
  const ctx = canvas.getContext("2d");
  canvas.width = w; canvas.height = h;
  const pixels = ctx.createImageData(w, h);
  if (rgb) {
    rgb.flat().forEach((px, i) => pixels.data.set([...px, 255], 4 * i));
  } else {
    const values = image.flat();
    const lim = Math.max(1e-9, ...values.map(Math.abs));
    const lo = centred ? -lim : Math.min(...values), span = centred ? 2 * lim : Math.max(1e-9, Math.max(...values) - lo);
    values.forEach((v, i) => {
      const g = Math.round(255 * (v - lo) / span);
      pixels.data.set([g, g, g, 255], 4 * i);
    });
  }
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

// ---- what the loaded model offers -------------------------------------------------------------
function offerWhatTheModelHas(model) {
  for (const option of [...form.elements["method"].options]) {
    if (!model.methods.includes(option.value)) option.remove();
  }
  form.elements["obj.elbo_weight"].closest("label").hidden = !model.has_elbo;
  $("#analyse").hidden = !model.analysis;
  const select = $("#layer");
  for (const layer of model.layers) select.append(new Option(`${layer.name} (${layer.units})`, layer.name));
  select.hidden = model.layers.length < 2;
}

// the units of one readout layer in the browser (its census where the model has one)
async function showLayer(name) {
  state.layer = name;
  $("#layer").value = name;
  state.units = await (await fetch(`/api/units?layer=${encodeURIComponent(name)}`)).json();
  const has = (key) => state.units.some((u) => u[key] !== undefined);
  for (const [id, value, shown] of [["#filter", "texture", has("texture_sensitive")], ["#sort", "texture", has("texture_eta2")],
    ["#sort", "kl", has("mean_kl")], ["#filter", "collapsed", has("mean_kl")]]) {
    const option = $(id).querySelector(`option[value="${value}"]`);
    option.hidden = !shown;
    option.disabled = !shown;
    if (!shown && $(id).value === value) $(id).value = id === "#sort" ? "index" : "all";
  }
  $("#grid").setAttribute("aria-label", `${name} units`);
  renderGrid();
}

$("#layer").addEventListener("change", async (event) => {
  await showLayer(event.target.value);
  selectUnit(visibleUnits()[0]?.unit ?? 0);
});

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
  const [model, presets] = await Promise.all(
    ["/api/model", "/api/presets"].map(async (u) => (await fetch(u)).json()));
  state.model = model;
  offerWhatTheModelHas(model);
  // presets that need what this model lacks (a latent method, an ELBO weight) are left out
  state.presets = Object.fromEntries(Object.entries(presets).filter(([, p]) =>
    model.methods.includes(p.method ?? "pixel") && (model.has_elbo || !(p.obj?.elbo_weight > 0))));
  for (const name of Object.keys(state.presets)) $("#preset").append(new Option(name, name));
  const m = model.card?.metrics;
  $("#model-summary").textContent = `${model.name} · input ${model.input.shape.join("×")} · ` +
    `${model.n_parameters.toLocaleString()} parameters` +
    (m ? ` · held-out ELBO ${m.heldout.elbo.toFixed(0)} nats · ${m.units.n_active_kl_above_0_01 ?? m.units["n_active_kl_above_0.01"]} active units` : "");
  const unit = loadHash();
  const layer = state.baseConfig?.layer;
  await showLayer(model.layers.some((l) => l.name === layer) ? layer : model.default_layer);
  showOutputs();
  resetCurves();
  const first = unit ?? visibleUnits()[0]?.unit ?? 0;
  selectUnit(first);
  setStatus("idle");
  pollAtlas();
  document.body.dataset.ready = "true";
}

main();
