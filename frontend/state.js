// The page's shared state and small helpers used by every module.

export const $ = (sel) => document.querySelector(sel);

export const state = {
  units: [], atlasActivation: null, atlasConfig: null, thumbnails: {}, selected: null, focused: 0,
  ws: null, run: null, curves: null, lastFrame: null, pinned: [],
  presets: {}, defaultPreset: null,  // name -> partial config; the preset a fresh page starts from
  schema: null, defaults: null, limits: null,  // GET /api/config/schema and /api/limits
  baseConfig: null,  // config fields without a control here (from the URL, a preset or a sweep's run)
  model: null,  // what the loaded model offers (/api/model): input, layers, methods, ELBO, analysis, card
  layer: null,  // the readout layer whose units the browser lists
};

export function setPath(obj, path, value) {
  const parts = path.split(".");
  let node = obj;
  for (const p of parts.slice(0, -1)) node = node[p] ??= {};
  node[parts.at(-1)] = value;
}

export function getPath(obj, path) {
  return path.split(".").reduce((node, p) => (node == null ? undefined : node[p]), obj);
}

// {"pre.jitter": 2, ...}: the leaves of a config; a schedule ({kind, ...}) counts as one leaf
export function flatten(obj, prefix = "", out = {}) {
  for (const [key, value] of Object.entries(obj ?? {})) {
    const path = prefix + key;
    if (value && typeof value === "object" && !Array.isArray(value) && !("kind" in value)) flatten(value, path + ".", out);
    else out[path] = value;
  }
  return out;
}

// a number as a scientist reads it: 3 significant digits, no exponent for everyday magnitudes
export function fmt(value, digits = 3) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  const a = Math.abs(value);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return value.toExponential(1);
  if (a >= 10 ** digits) return value.toFixed(0);
  return String(Number(value.toPrecision(digits)));
}

// the census record of a unit (activation 99.9th percentile on data, ...) when the browser lists its layer
export function recordOf(unit, layer) {
  if (layer !== state.layer) return null;
  return state.units.find((u) => u.unit === unit) ?? null;
}

// the held-out ELBO of the model card (nats), where the model has an ELBO and a card that measured it
export function heldoutElbo() {
  const elbo = state.model?.card?.metrics?.heldout?.elbo;
  return state.model?.has_elbo && typeof elbo === "number" ? elbo : null;
}
