// meiscope dashboard: the unit browser, the run controls, the live panels over the /ws/runs websocket and the
// session's history. The URL hash holds the unit and the config. Figures are in plots.js, out-of-distribution
// badges in signals.js, pinned runs in compare.js, the unit analysis in analysis.js, bounds in schema.js.

import { $, fmt, getPath, heldoutElbo, recordOf, setPath, state } from "./state.js";
import { applySchema, matchingPreset, merged } from "./schema.js";
import { beyondData, drawCanvas, drawCurves, scaleBar, showImage, showRadialProfile, showSpectrum } from "./plots.js";
import { showSignals } from "./signals.js";
import { pinRun } from "./compare.js";
import { analyseUnit, clearAnalysis } from "./analysis.js";
import { characteriseUnit, clearCharacterisation } from "./characterise.js";
import { CURVES, curvesOf, unpack, unpackFrame } from "./unpack.js";
import { downloadWithProgress, pinKeys, refreshHistory, restorePins } from "./runs.js";

export { drawCanvas, unpack };

// The page starts from the default configuration, AMConfig's own defaults (the preset "default"): the same one
// that `meiscope am`, the atlas and the unit analysis use, chosen by measurement (docs/METHODS.md, "The default
// configuration").
const DEFAULT_PRESET = "default";

// ---- config <-> form ---------------------------------------------------------------------------
const form = $("#controls");
const controls = () => [...form.elements].filter((el) => el.name);

function readConfig() {
  const config = structuredClone(state.baseConfig ?? {});
  for (const el of controls()) {
    if (el.dataset.schedule) continue;  // a schedule from a stored config: it stays as it came (baseConfig)
    const auto = el.dataset.auto && el.value === "";  // an empty box of a field that takes "auto"
    setPath(config, el.name, auto ? "auto" : el.type === "number" ? Number(el.value) : el.value);
  }
  config.unit = state.selected ?? 0;
  config.layer = state.layer ?? config.layer;
  config.snapshot_every = Math.max(1, Math.min(5, Math.round(config.steps / 100)));
  config.elbo_every = config.snapshot_every;
  if (state.model && !state.model.has_elbo) setPath(config, "obj.elbo_weight", 0);  // no ELBO to weigh
  return config;
}

// every control from `config` over the schema's defaults; a schedule ({kind: ...}) disables its control
function writeConfig(config) {
  const full = merged(state.defaults ?? {}, config);
  for (const el of controls()) {
    const value = getPath(full, el.name);
    const schedule = value !== null && typeof value === "object";
    el.disabled = schedule;
    if (schedule) {
      el.dataset.schedule = JSON.stringify(value);
      el.title = `a schedule from the stored config: ${el.dataset.schedule}`;
    } else {
      delete el.dataset.schedule;
      if (value !== undefined) el.value = value === "auto" && el.dataset.auto ? "" : value;
    }
  }
  syncControls();
}

// sliders follow their number boxes; method-specific controls show for their method only; the preset menu
// names the preset the controls match
function syncControls() {
  for (const slider of form.querySelectorAll("input[data-slider]")) {
    const box = form.elements[slider.dataset.slider];
    slider.disabled = box.disabled;
    if (!box.disabled) slider.value = box.value === "" && box.dataset.auto ? slider.min : box.value;
  }
  const method = form.elements["method"].value;
  for (const label of form.querySelectorAll("label[data-methods]")) {
    let shown = label.dataset.methods.split(" ").includes(method);
    if (shown && label.dataset.when) {
      const [path, value] = label.dataset.when.split("=");
      shown = form.elements[path].value === value;
    }
    label.hidden = !shown;
  }
  document.body.classList.toggle("transform", method.startsWith("transform"));
  document.body.classList.toggle("distribution", method.endsWith("distribution"));
  if (state.defaults) $("#preset").value = matchingPreset(state.presets, state.defaults, readConfig());
}

// the shown run was made by one method: under another method's controls it would be stale
function dropRunOfAnotherMethod() {
  if (state.run && state.run.config.method !== form.elements["method"].value) clearRunView();
}

function applyPreset(name) {
  const keep = { steps: Number(form.elements["steps"].value), seed: Number(form.elements["seed"].value) };
  state.baseConfig = merged(state.defaults, state.presets[name]);
  for (const key of ["unit", "layer"]) delete state.baseConfig[key];
  writeConfig(state.baseConfig);
  for (const [key, value] of Object.entries(keep)) if (Number.isFinite(value) && value > 0) form.elements[key].value = value;
  syncControls();
  dropRunOfAnotherMethod();
  saveHash();
}

function saveHash() {
  const config = readConfig();
  delete config.unit;
  const params = new URLSearchParams({ unit: state.selected ?? "", config: JSON.stringify(config) });
  const pins = pinKeys();
  if (pins.length) params.set("pins", pins.join(","));
  history.replaceState(null, "", "#" + params.toString());
}

// the unit of the URL (or null); its config into the controls, else the default preset
function loadHash() {
  const params = new URLSearchParams(location.hash.slice(1));
  let restored = false;
  if (params.get("config")) {
    try {
      state.baseConfig = JSON.parse(params.get("config"));
      writeConfig(state.baseConfig);
      restored = true;
    } catch { /* a bad hash: the default preset */ }
  }
  if (!restored && state.defaultPreset) applyPreset(state.defaultPreset);
  const unit = params.get("unit");
  state.pinsToRestore = (params.get("pins") ?? "").split(",").filter(Boolean);
  return unit === null || unit === "" ? null : Number(unit);
}

// a method's own settings when it is chosen: the first preset of that method (the default configuration for
// pixel), else the schema's defaults with that method; nothing of the previous method's settings stays
function applyMethodDefaults(method) {
  const name = Object.keys(state.presets).find((k) => (state.presets[k].method ?? "pixel") === method);
  if (name) return applyPreset(name);
  const keep = { steps: Number(form.elements["steps"].value), seed: Number(form.elements["seed"].value) };
  state.baseConfig = { ...structuredClone(state.defaults), method, ...keep };
  for (const key of ["unit", "layer"]) delete state.baseConfig[key];
  writeConfig(state.baseConfig);
  dropRunOfAnotherMethod();
  saveHash();
}

// a number box takes only what the schema allows: a value beyond its bounds is set to the bound, and said
form.addEventListener("change", (event) => {
  const el = event.target;
  if (el.type !== "number" || el.value === "") return;
  const value = Number(el.value), lo = el.min === "" ? -Infinity : Number(el.min), hi = el.max === "" ? Infinity : Number(el.max);
  if (value >= lo && value <= hi) return;
  const bound = value < lo ? lo : hi;
  el.value = bound;
  $("#notice").hidden = false;
  $("#notice").textContent = `${el.name}: ${value < lo ? "at least" : "at most"} ${bound} (the schema's bound); set to ${bound}`;
  el.dispatchEvent(new Event("input", { bubbles: true }));
});

form.addEventListener("input", (event) => {
  const el = event.target;
  if (el.id === "preset") return;  // its change event applies it
  if (el.name === "method") return applyMethodDefaults(el.value);
  if (el.dataset.slider) form.elements[el.dataset.slider].value = el.value;
  syncControls();
  saveHash();
});
$("#preset").addEventListener("change", (event) => { if (state.presets[event.target.value]) applyPreset(event.target.value); });

// ---- unit browser ------------------------------------------------------------------------------
// the atlas shown is the browsed layer's: thumbnails of one layer never stand for units of another
const atlasShown = () => state.atlasActivation && state.atlasLayer === state.layer;

function visibleUnits() {
  const filter = $("#filter").value, sort = $("#sort").value, query = $("#search").value.trim();
  let list = state.units.filter((u) => filter === "all" || u.status === filter ||
    (filter === "texture" && u.texture_sensitive === true));
  if (query !== "") list = list.filter((u) => String(u.unit).startsWith(query));
  const act = (u) => (atlasShown() ? state.atlasActivation[u.unit] : 0);
  const key = { kl: (u) => -(u.mean_kl ?? 0), activation: (u) => -act(u), index: (u) => u.unit,
    texture: (u) => -(u.texture_eta2 ?? 0) }[sort];
  return list.sort((a, b) => key(a) - key(b));
}

// why a filter left the grid empty
function emptyReason() {
  const filter = $("#filter"), query = $("#search").value.trim();
  if (filter.value === "texture" && !state.units.some((u) => u.texture_sensitive)) {
    return "no texture-sensitive units: run `meiscope texture-units --write-card` to measure them";
  }
  const among = filter.value === "all" ? "" : ` among the ${filter.selectedOptions[0].textContent} units`;
  return query ? `no units match “${query}”${among}` : `no units match: no ${filter.selectedOptions[0].textContent} units`;
}

function atlasNote() {
  const c = state.atlasConfig;
  return c ? ` (${c.steps} steps, ${c.method}, jitter ${c.pre.jitter}, gamma ${c.grad.gamma})` : "";
}

function renderGrid() {
  const grid = $("#grid"), list = visibleUnits();
  grid.replaceChildren();
  $("#grid-empty").hidden = list.length > 0;
  $("#grid-empty").textContent = list.length ? "" : emptyReason();
  $("#grid-legend").hidden = !atlasShown();
  $("#grid-legend").textContent = `number: final atlas activation${atlasNote()}`;
  state.focused = Math.min(state.focused, Math.max(0, list.length - 1));
  list.forEach((u, i) => {
    const tile = document.createElement("button");
    tile.type = "button";
    tile.className = `tile ${u.status}` + (u.unit === state.selected ? " selected" : "") + (i === state.focused ? " focused" : "");
    tile.dataset.unit = u.unit;
    tile.setAttribute("role", "option");
    const thumb = atlasShown() ? state.thumbnails[u.unit] : undefined;
    const act = atlasShown() ? state.atlasActivation[u.unit] : null;
    const label = u.label !== undefined && u.label !== null ? ` “${u.label}”` : "";
    tile.innerHTML = (thumb ? `<img alt="unit ${u.unit}" src="${thumb}">` : `<div class="blank"></div>`) +
      `<span>u${u.unit}${label}${act !== null ? ` ${act.toFixed(2)}` : ""}</span>`;
    tile.title = `unit ${u.unit}${label}: ${u.status}` + (u.mean_kl !== undefined ? `, mean KL ${u.mean_kl} nats` : "") +
      (act !== null ? `\n${act.toFixed(2)}: final atlas activation${atlasNote()}` : "") +
      (u.act_p999 !== undefined ? `\ndata's 99.9th pct ${u.act_p999}` : "");
    tile.addEventListener("click", () => selectUnit(u.unit));
    grid.append(tile);
  });
}

function selectUnit(unit) {
  const at = visibleUnits().findIndex((u) => u.unit === unit);
  if (at >= 0) state.focused = at;  // the keyboard's place follows a click: one tile marked, not two
  if (unit !== state.selected) {
    clearAnalysis();
    clearCharacterisation();
  }
  // a run belongs to its unit and layer: under another heading it would be another unit's result
  if (state.run && (state.run.config.unit !== unit || (state.run.config.layer ?? null) !== (state.layer ?? null))) clearRunView();
  state.selected = unit;
  const u = state.units.find((x) => x.unit === unit) ?? { unit };
  const label = u.label !== undefined && u.label !== null ? ` “${u.label}”` : "";
  $("#unit-title").textContent = `${state.layer ?? ""} unit ${unit}${label}`.trim();
  const texture = u.texture_eta2 === undefined ? "" :
    ` · ${u.texture_sensitive ? "texture-sensitive" : "not texture-sensitive"} (eta² ${u.texture_eta2})`;
  const kl = u.mean_kl === undefined ? "" : ` · mean KL ${u.mean_kl} nats`;
  $("#unit-stats").textContent = u.act_mean === undefined ? "" :
    `${u.status}${kl} · activation on data: mean ${u.act_mean}, 99.9th pct ${u.act_p999}${texture}`;
  renderGrid();
  saveHash();
  showNatural(unit);
}

// the data inputs that drive the unit most (GET /api/units/{unit}/natural), on one scale; hidden for a model
// without data to take them from
async function showNatural(unit) {
  const layer = state.layer ?? "";
  $("#natural-panel").hidden = !state.model?.natural;
  if (!state.model?.natural) return;
  const answer = await fetch(`/api/units/${unit}/natural?layer=${encodeURIComponent(layer)}`);
  if (state.selected !== unit || (state.layer ?? "") !== layer) return;  // another unit was chosen since
  $("#natural-panel").hidden = !answer.ok;
  if (!answer.ok) return $("#natural").replaceChildren();
  const natural = await answer.json();
  const images = unpack(natural.images);
  const input = { centred: state.model?.input.centred ?? true, dataRange: state.model?.input.range };
  $("#natural").replaceChildren(...images.map((img, i) => {
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    const range = drawCanvas(canvas, img, input);
    const caption = Object.assign(document.createElement("figcaption"), { textContent: fmt(natural.activation[i]) });
    figure.append(caption, canvas, scaleBar(range, Array.isArray(img[0][0])));
    return figure;
  }));
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

// ---- the live panels ---------------------------------------------------------------------------

function resetCurves() {
  state.curves = Object.fromEntries(CURVES.map((k) => [k, { x: [], y: [] }]));
}

function drawRunCurves() {
  drawCurves(state.curves, { hasElbo: state.model?.has_elbo ?? true, heldout: heldoutElbo(),
    p999: state.run?.record?.act_p999 ?? null, revision: state.run?.id ?? "" });
}

// the input's badges: its activation against the unit's data, its ELBO against held-out data, its checks
function showInputSignals() {
  const run = state.run, frame = state.lastFrame;
  if (!run || !frame) return;
  const elbo = run.final ? run.final.elbo?.[0] : state.curves.elbo.y.at(-1);
  showSignals($("#input-signals"), { activation: run.final ? run.final.activation[0] : frame.metrics.activation[0],
    p999: run.record?.act_p999 ?? null, elbo: elbo ?? null, heldout: heldoutElbo(), checks: run.checks?.[0] });
}

function showSamples(images) {
  $("#samples-panel").hidden = images.length < 2;
  if (images.length < 2) return;
  const figures = images.map((img) => {
    const figure = document.createElement("figure");
    const canvas = document.createElement("canvas");
    figure.append(canvas, scaleBar(drawCanvas(canvas, img, { centred: true }), Array.isArray(img[0][0])));
    return figure;
  });
  $("#samples").replaceChildren(...figures);
}

// the run panels empty: no image, spectrum, kernel, sigma, samples, curves, badges or caption of an earlier run
function clearPanels() {
  state.lastFrame = null;
  for (const id of ["plot-input", "plot-spectrum", "plot-radial", "plot-kernel", "plot-raw", "plot-sigma"]) Plotly.purge(id);
  $("#samples-panel").hidden = true;
  $("#samples").replaceChildren();
  $("#input-signals").replaceChildren();
  $("#input-caption").hidden = true;
  $("#progress").value = 0;
  $("#rate").textContent = "";
  resetCurves();
  drawRunCurves();
}

function clearRunView() {
  state.run = null;
  showError(null);
  clearPanels();
  setStatus("idle");
}

function showFrame(packedFrame) {
  const frame = unpackFrame(packedFrame);
  state.lastFrame = frame;
  const input = { centred: state.model?.input.centred ?? true, dataRange: state.model?.input.range, unit: "pixel value" };
  const range = showImage("plot-input", frame.images[0], input);
  const colour = Array.isArray(frame.images[0][0][0]);
  const caption = colour ? `colour: all channels scaled together, ${fmt(range[0])} to ${fmt(range[1])}` :
    beyondData(range, input.centred ? null : input.dataRange);
  $("#input-caption").hidden = !caption;
  $("#input-caption").textContent = caption;
  showSpectrum("plot-spectrum", frame.spectra[0]);
  showRadialProfile("plot-radial", frame.spectra[0]);
  if (frame.arrays.kernels) showImage("plot-kernel", frame.arrays.kernels[0], { centred: true, unit: "weight" });
  if (frame.arrays.inputs) showImage("plot-raw", frame.arrays.inputs[0], input);
  if (frame.arrays.sigma && Array.isArray(frame.arrays.sigma[0])) {
    showImage("plot-sigma", frame.arrays.sigma[0], { centred: false, unit: "sigma", colorscale: "Viridis" });
  }
  showSamples(frame.images);
  for (const k of CURVES) {
    const v = frame.metrics[k][0];
    if (v !== null && v !== undefined) { state.curves[k].x.push(frame.step); state.curves[k].y.push(v); }
  }
  drawRunCurves();
  showInputSignals();
  $("#progress").value = frame.step / frame.steps;
  const seconds = (performance.now() - state.run.started) / 1000;
  $("#rate").textContent = `step ${frame.step} / ${frame.steps} · ${(frame.step / Math.max(seconds, 1e-3)).toFixed(0)} steps/s`;
}

// ---- runs over the websocket -------------------------------------------------------------------
function setStatus(status) {
  $("#status").textContent = status;
  $("#status").dataset.status = status;
  const going = status === "running" || status.startsWith("queued") || status === "starting";
  $("#run").disabled = going;
  $("#stop").disabled = !going;
  $("#pin").disabled = going || !state.lastFrame;
  $("#export").disabled = going || !(state.pinned.length || (state.run?.done && (state.run.id || state.run.stored)));
}
document.addEventListener("pins-changed", () => {
  setStatus($("#status").dataset.status);
  if (document.body.dataset.ready) saveHash();  // pins live in the URL: a reload or a shared link restores them
});

// the pinned runs (or this run): live runs by id, runs of stored sweeps by sweep and id
function exportRuns() {
  const runs = (state.pinned.length ? state.pinned : [state.run]).filter(Boolean);
  const ids = runs.filter((r) => r.id).map((r) => r.id);
  const stored = runs.filter((r) => r.stored).map((r) => `${r.stored.sweep}/${r.stored.runId}`);
  const what = `the figure set of ${runs.length} run${runs.length > 1 ? "s" : ""}`, status = $("#export-status");
  if (!state.pinned.length && state.run?.stored) {
    const { sweep, runId } = state.run.stored;
    downloadWithProgress(`/api/sweeps/${encodeURIComponent(sweep)}/runs/${runId}/export`, `meiscope-${sweep}-${runId}.zip`,
      what, status);
  } else if (ids.length || stored.length) {
    downloadWithProgress(`/api/export?${new URLSearchParams({ ids: ids.join(","), stored: stored.join(",") })}`,
      `meiscope-${[...ids, ...stored.map((s) => s.replace("/", "-"))].join("-")}.zip`, what, status);
  }
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
    state.run.checks = message.checks;
    setStatus(message.status);
    showInputSignals();
    refreshHistory();
  } else if (message.type === "done") {
    refreshHistory();  // a run left behind when the user moved on: listed, and it reopens
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
  $("#notice").hidden = true;
  const config = readConfig();
  saveHash();
  state.run = { config, started: performance.now(), done: false, record: recordOf(config.unit, config.layer) };
  clearPanels();  // nothing of the previous run stays, even if the server refuses this one
  resetCurves();
  setStatus("starting");
  const ws = await connect();
  ws.send(JSON.stringify({ type: "start", config }));
}

$("#analyse").addEventListener("click", analyseUnit);
$("#characterise").addEventListener("click", characteriseUnit);
$("#run").addEventListener("click", startRun);
$("#stop").addEventListener("click", () => state.ws && state.ws.send(JSON.stringify({ type: "stop" })));
$("#pin").addEventListener("click", () => state.run && state.lastFrame && pinRun(state.run, state.lastFrame, state.curves));
$("#export").addEventListener("click", exportRuns);

// a finished run (a sweep's cell, or a run of this server reopened from the list or the URL): its layer, unit and
// config in the controls, its last frame and curves in the panels; Export fetches it from its sweep or the server
export async function openStoredRun({ run_id: id, unit, config, frame, curves, checks }, sweep) {
  showError(null);
  state.baseConfig = { ...config };
  delete state.baseConfig.unit;
  if (config.layer && config.layer !== state.layer) await showLayer(config.layer);
  writeConfig(config);
  selectUnit(Array.isArray(unit) ? unit[0] : unit);
  state.run = { id: sweep ? null : id, stored: sweep ? { sweep, runId: id } : null, config, started: performance.now(),
    done: true, checks, record: recordOf(Array.isArray(unit) ? unit[0] : unit, config.layer) };
  resetCurves();
  showFrame(frame);
  state.curves = curvesOf(curves);
  drawRunCurves();
  showInputSignals();
  setStatus(sweep ? "stored" : "reopened");
  $("#unit-view").scrollTop = 0;  // its panels, not wherever the view was
  $("#rate").textContent = `${sweep ? `stored run ${id} of sweep ${sweep}` : `run ${id}, reopened`}: ${frame.step} steps · Run reruns it here`;
}

// ---- what the loaded model offers -------------------------------------------------------------
function offerWhatTheModelHas(model) {
  for (const option of [...form.elements["method"].options]) {
    if (!model.methods.includes(option.value)) option.remove();
  }
  for (const label of form.querySelectorAll("label[data-needs=elbo]")) label.hidden = !model.has_elbo;
  $("#analyse").hidden = !model.analysis;
  $("#characterise").hidden = !model.characterisation;
  const select = $("#layer");
  for (const layer of model.layers) select.append(new Option(`${layer.name} (${layer.units})`, layer.name));
  select.hidden = model.layers.length < 2;
}

// presets that need what this model lacks (a latent method, an ELBO weight) are left out; the default
// configuration is the page's start, marked in the menu
function offerPresets(presets, model) {
  state.presets = Object.fromEntries(Object.entries(presets).filter(([, p]) =>
    model.methods.includes(p.method ?? "pixel") && (model.has_elbo || !(p.obj?.elbo_weight > 0))));
  state.defaultPreset = state.presets[DEFAULT_PRESET] ? DEFAULT_PRESET : Object.keys(state.presets)[0] ?? null;
  for (const name of Object.keys(state.presets)) {
    const marked = name === state.defaultPreset && name !== DEFAULT_PRESET;  // "default" says so itself
    $("#preset").append(new Option(marked ? `${name} (default)` : name, name));
  }
}

// the units of one readout layer in the browser (its census where the model has one)
async function showLayer(name) {
  if (name !== state.layer) {  // a unit number of another layer is another unit
    clearAnalysis();
    clearCharacterisation();
  }
  state.layer = name;
  $("#layer").value = name;
  const spec = state.model.layers.find((l) => l.name === name);
  $("#layer-description").textContent = spec?.description ? `${name}: ${spec.description}` : "";
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
  offerAtlasSort();
  renderGrid();
  pollAtlas(name);
}

$("#layer").addEventListener("change", async (event) => {
  await showLayer(event.target.value);
  selectUnit(visibleUnits()[0]?.unit ?? 0);
});

// ---- start-up ----------------------------------------------------------------------------------
// the browsed layer's atlas: its thumbnails once ready, its progress while it builds, an offer to build it when
// the server has none for this layer yet (one batched run over all its units)
async function pollAtlas(layer = state.layer) {
  const answer = await fetch(`/api/atlas?layer=${encodeURIComponent(layer)}`);
  if (!answer.ok || layer !== state.layer) return;  // another layer is browsed now: its own poll runs
  const atlas = await answer.json();
  $("#atlas-offer").hidden = atlas.status !== "absent";
  if (atlas.status === "ready") {
    const thumbnails = await (await fetch(`/api/atlas/thumbnails?layer=${encodeURIComponent(layer)}`)).json();
    if (layer !== state.layer) return;
    Object.assign(state, { atlasActivation: atlas.activation, atlasConfig: atlas.config, thumbnails, atlasLayer: layer });
    $("#atlas-status").textContent = `${layer} atlas ready`;
  } else if (atlas.status === "building") {
    $("#atlas-status").textContent = `building the ${layer} atlas (${atlas.units} units): step ${atlas.step} / ${atlas.steps}`;
    setTimeout(() => pollAtlas(layer), 1000);
  } else if (atlas.status === "absent") {
    $("#atlas-status").textContent = "";
    $("#atlas-offer-text").textContent = `No atlas of ${layer} yet: its ${atlas.units} preferred inputs take one batched run.`;
  } else {
    $("#atlas-status").textContent = atlas.status === "off" ? "this server builds no atlas (no cache folder)" :
      `${layer} atlas ${atlas.status}: ${atlas.error ?? ""}`;
  }
  offerAtlasSort();
  renderGrid();
}

// "by atlas activation" only where the browsed layer's atlas is ready
function offerAtlasSort() {
  const option = $("#sort").querySelector("option[value=activation]");
  option.hidden = option.disabled = !atlasShown();
  if (!atlasShown() && $("#sort").value === "activation") $("#sort").value = state.units.some((u) => u.mean_kl !== undefined) ? "kl" : "index";
}

async function buildAtlas() {
  $("#atlas-build").disabled = true;
  const answer = await fetch(`/api/atlas?layer=${encodeURIComponent(state.layer)}`, { method: "POST" });
  $("#atlas-build").disabled = false;
  if (!answer.ok) {
    const body = await answer.json().catch(() => ({}));
    $("#atlas-offer-text").textContent = `The atlas cannot be built now: ${body.detail ?? answer.statusText}`;
    return;
  }
  pollAtlas(state.layer);
}
$("#atlas-build").addEventListener("click", buildAtlas);

async function main() {
  const [model, presets, schema, limits] = await Promise.all(["/api/model", "/api/presets", "/api/config/schema",
    "/api/limits"].map(async (u) => (await fetch(u)).json()));
  Object.assign(state, { model, schema: schema.schema, defaults: schema.defaults, limits });
  applySchema(form, state.schema, state.defaults, limits);
  offerWhatTheModelHas(model);
  offerPresets(presets, model);
  const m = model.card?.metrics;
  $("#model-summary").textContent = `${model.name} · input ${model.input.shape.join("×")} · ` +
    `${model.n_parameters.toLocaleString()} parameters` +
    (m ? ` · held-out ELBO ${m.heldout.elbo.toFixed(0)} nats · ${m.units["n_kl_above_0.1"]} clearly active z2 units ` +
      `(mean KL above 0.1 nats; ${m.units["n_active_kl_above_0.01"]} above 0.01)` : "");
  $("#model-summary").title = [model.description, model.input.description && `input: ${model.input.description}`]
    .filter(Boolean).join("\n");
  const unit = loadHash();
  const layer = state.baseConfig?.layer;
  await showLayer(model.layers.some((l) => l.name === layer) ? layer : model.default_layer);
  syncControls();
  resetCurves();
  selectUnit(unit ?? visibleUnits()[0]?.unit ?? 0);
  setStatus("idle");
  await Promise.all([restorePins(state.pinsToRestore ?? []), refreshHistory()]);
  document.body.dataset.ready = "true";
}

main();
