// Pinned runs and their comparison: each card is titled by what differs among the pinned runs ("unit 141 ·
// pixel · jitter 2"), a table lists the config fields that differ (and the results), and the activation
// curves share one plot. A pin keeps its run's image, curves and final numbers; a run opened from a sweep
// keeps its sweep and run id, so that Export can fetch it.

import { $, flatten, fmt, getPath, heldoutElbo, state } from "./state.js";
import { drawCanvas, drawCompare, scaleBar } from "./plots.js";
import { activationSignal, showSignals } from "./signals.js";

const SHORT = { "pre.jitter": "jitter", "pre.scale": "zoom", "grad.gamma": "gamma", "obj.elbo_weight": "ELBO weight",
  "obj.tv": "TV", "optimizer.name": "optimizer", "optimizer.lr": "lr", "distribution.sigma": "sigma",
  "distribution.draws": "draws", "transform.kind": "transform", "transform.kernel_size": "kernel",
  "transform.layers": "CNN layers", "diversity.weight": "diversity weight", "diversity.metric": "diversity",
  "latent.init": "latent start", "latent.one_hot_scale": "one-hot scale" };
const DERIVED = new Set(["snapshot_every", "elbo_every"]);  // set from steps by the page: no title needs them
const TITLE_FIELDS = 4;
let counter = 0;

const show = (v) => (v !== null && typeof v === "object" ? JSON.stringify(v) : String(v));

// dotted config fields whose values are not the same in every config
export function differingFields(configs) {
  const flat = configs.map((c) => flatten(c));
  const keys = [...new Set(flat.flatMap(Object.keys))];
  return keys.filter((k) => new Set(flat.map((f) => JSON.stringify(f[k] ?? null))).size > 1);
}

function titleOf(pin, diffs) {
  const c = pin.config;
  const parts = [`${c.layer && c.layer !== state.model?.default_layer ? `${c.layer} ` : ""}unit ${c.unit}`, c.method];
  const extra = diffs.filter((k) => !["unit", "method", "layer"].includes(k) && !DERIVED.has(k));
  for (const k of extra.slice(0, TITLE_FIELDS)) parts.push(`${SHORT[k] ?? k} ${show(getPath(c, k))}`);
  if (extra.length > TITLE_FIELDS) parts.push("…");
  return parts.join(" · ");
}

// the final numbers of a run: from its `done` message, else from its last frame and curves
function finalOf(run, frame, curves) {
  if (run.final) return { activation: run.final.activation[0], runnerUp: run.final.runner_up[0],
    runnerUpUnit: run.final.runner_up_unit[0], elbo: run.final.elbo ? run.final.elbo[0] : null };
  const m = frame.metrics;
  return { activation: m.activation[0], runnerUp: m.runner_up[0], runnerUpUnit: m.runner_up_unit?.[0],
    elbo: curves.elbo.y.length ? curves.elbo.y.at(-1) : null };
}

export function pinRun(run, frame, curves) {
  state.pinned.push({ n: ++counter, id: run.id ?? null, stored: run.stored ?? null, config: run.config,
    image: frame.images[0], curves: structuredClone(curves), final: finalOf(run, frame, curves),
    p999: run.record?.act_p999 ?? null, checks: run.checks?.[0] ?? null });
  renderPinned();
}

function unpin(n) {
  state.pinned = state.pinned.filter((p) => p.n !== n);
  renderPinned();
}

function card(pin) {
  const el = document.createElement("div");
  el.className = "card";
  el.dataset.pin = pin.n;
  const head = document.createElement("div");
  head.className = "card-head";
  const title = Object.assign(document.createElement("strong"), { className: "card-title", textContent: `#${pin.n} ${pin.title}` });
  const remove = Object.assign(document.createElement("button"), { type: "button", className: "unpin", textContent: "×",
    title: "unpin" });
  remove.setAttribute("aria-label", `unpin #${pin.n}`);
  remove.addEventListener("click", () => unpin(pin.n));
  head.append(title, remove);
  const canvas = document.createElement("canvas");
  const range = drawCanvas(canvas, pin.image, { centred: state.model?.input.centred ?? true, dataRange: state.model?.input.range });
  const f = pin.final;
  const numbers = Object.assign(document.createElement("div"), { className: "card-numbers",
    textContent: `activation ${fmt(f.activation)} · runner-up ${fmt(f.runnerUp)}` +
      (f.runnerUpUnit !== undefined ? ` (u${f.runnerUpUnit})` : "") + (f.elbo !== null ? ` · ELBO ${fmt(f.elbo, 4)} nats` : "") });
  const signals = document.createElement("div");
  signals.className = "signals";
  showSignals(signals, { activation: f.activation, p999: pin.p999, elbo: f.elbo, heldout: heldoutElbo(), checks: pin.checks });
  el.append(head, canvas, scaleBar(range, Array.isArray(pin.image[0][0])), numbers, signals);
  return el;
}

// rows: the config fields that differ, then the results; columns: the pinned runs
function renderTable(pins, diffs) {
  const table = $("#compare-table");
  table.hidden = pins.length < 2;
  if (table.hidden) return table.replaceChildren();
  const row = (cells, header = false) => {
    const tr = document.createElement("tr");
    cells.forEach((text, i) => tr.append(Object.assign(document.createElement(i === 0 || header ? "th" : "td"), { textContent: text })));
    return tr;
  };
  const caption = Object.assign(document.createElement("caption"), { textContent: diffs.length ?
    "config fields that differ among the pinned runs, and their results" : "the pinned runs share every config field" });
  const heldout = heldoutElbo();
  const results = [["final activation", (p) => fmt(p.final.activation)],
    ...(pins.some((p) => p.p999 !== null) ? [["× data's 99.9th pct", (p) => {
      const s = activationSignal(p.final.activation, p.p999);
      return s?.ratio === undefined ? "–" : fmt(s.ratio, 2);
    }]] : []),
    ...(heldout !== null ? [["ELBO − held-out (nats)", (p) => (p.final.elbo === null ? "–" : fmt(p.final.elbo - heldout, 4))]] : [])];
  const body = [row(["field", ...pins.map((p) => `#${p.n}`)], true),
    ...diffs.map((k) => row([k, ...pins.map((p) => show(getPath(p.config, k) ?? "–"))])),
    ...results.map(([name, value]) => {
      const tr = row([name, ...pins.map(value)]);
      tr.className = "result";
      return tr;
    })];
  table.replaceChildren(caption, ...body);
}

export function renderPinned() {
  const pins = state.pinned, diffs = differingFields(pins.map((p) => p.config));
  for (const pin of pins) pin.title = titleOf(pin, diffs);
  $("#pinned").replaceChildren(...pins.map(card));
  $("#compare-hint").hidden = pins.length > 0;
  renderTable(pins, diffs);
  $("#plot-compare").hidden = pins.length < 2;
  if (pins.length >= 2) drawCompare("plot-compare", pins);
  document.dispatchEvent(new Event("pins-changed"));
}
