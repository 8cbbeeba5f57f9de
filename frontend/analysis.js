// "Analyse unit": every view of the selected unit of the browsed layer (GET /api/units/{unit}/analysis?layer=...,
// seconds to minutes the first time): preferred inputs, STA and gradient map, probes, spectra, nearest and top natural inputs,
// Gabor views for one-channel inputs, one-hot synthesis for a latent layer. Each panel with its colour bar, what its
// values are and a one-line reading; the agreement between the views with their interpretation; a zip of the files
// (…/analysis.zip: JSON, arrays, a 300-dpi figure). While it works it shows the stage reached (…/analysis/progress)
// beside the button; a late answer for another unit or layer is dropped.

import { $, state } from "./state.js";
import { drawCanvas, scaleBar } from "./plots.js";
import { unpack } from "./unpack.js";

const query = (layer) => `layer=${encodeURIComponent(layer)}`;
const el = (tag, props = {}) => Object.assign(document.createElement(tag), props);

function panelCard({ key, title, image, values, reading, centred, axes }) {
  const card = el("div", { className: "card" });
  card.dataset.key = key;
  const canvas = el("canvas");
  const range = drawCanvas(canvas, unpack(image), { centred });
  const caption = axes ? `${values}; x: ${axes.x} ${axes.extent[0]}..${axes.extent[1]}, y: ${axes.y} ` +
    `${axes.extent[3]}..${axes.extent[2]}` : values;
  card.append(canvas, scaleBar(range), el("div", { className: "panel-units muted", textContent: caption }),
    el("div", { className: "panel-title", textContent: title }), el("div", { className: "panel-reading", textContent: reading }));
  return card;
}

function agreementTable(rows) {
  const table = el("table");
  for (const { measure, value, reading } of rows) {
    const tr = el("tr");
    tr.append(el("th", { textContent: measure }), el("td", { textContent: value }), el("td", { textContent: reading }));
    table.append(tr);
  }
  return table;
}

function notes(readings) {
  const items = [...readings.left_out.map((x) => `not shown: ${x}`), `See also: ${readings.see_also}.`];
  const list = el("ul", { className: "muted" });
  list.append(...items.map((textContent) => el("li", { textContent })));
  return list;
}

export async function analyseUnit() {
  const unit = state.selected, layer = state.layer, started = performance.now();
  const status = $("#analyse-status"), progress = $("#analysis-progress");
  const section = $("#analysis");
  section.hidden = false;
  section.dataset.layer = layer;
  section.dataset.unit = unit;
  $("#analysis-heading").textContent = `unit analysis: ${layer} unit ${unit}`;
  $("#analysis-panels").replaceChildren();
  $("#analysis-agreement").replaceChildren();
  $("#analysis-download").hidden = true;
  $("#analyse").disabled = true;
  progress.hidden = false;
  const current = () => state.selected === unit && state.layer === layer;
  let stage = "starting";
  const tick = () => {
    const s = Math.round((performance.now() - started) / 1000);
    status.textContent = `analysing ${layer} unit ${unit}: ${s} s (about 10 s for a z2 unit on a free machine; z1 and busy machines take longer)`;
    $("#analysis-summary").textContent = `analysing ${layer} unit ${unit}: ${stage}… ${s} s`;
  };
  const poll = async () => {
    const answer = await fetch(`/api/units/${unit}/analysis/progress?${query(layer)}`).catch(() => null);
    if (answer?.ok) stage = (await answer.json()).stage ?? stage;
  };
  tick();
  const timer = setInterval(tick, 500), poller = setInterval(poll, 1000);
  try {
    const response = await fetch(`/api/units/${unit}/analysis?${query(layer)}`);
    if (!current()) { status.textContent = ""; return; }  // the user moved on; clearAnalysis hid it
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      const detail = Array.isArray(body.detail) ? body.detail.map((d) => d.msg).join("; ") : body.detail;
      $("#analysis-summary").textContent = `analysis failed (${response.status}): ${detail ?? response.statusText}`;
      status.textContent = "analysis failed";
      return;
    }
    const result = await response.json();
    $("#analysis-summary").textContent = `${result.readings.summary}. Each panel: its colour bar (minimum to ` +
      "maximum), what its values are, and a one-line reading.";
    $("#analysis-agreement").replaceChildren(agreementTable(result.readings.agreement), notes(result.readings));
    $("#analysis-panels").replaceChildren(...result.panels.map(panelCard));
    const link = $("#analysis-download");
    link.href = `/api/units/${unit}/analysis.zip?${query(layer)}`;
    link.hidden = false;
    status.textContent = `${layer} unit ${unit} analysed: the panels are below the metrics`;
  } finally {
    clearInterval(timer);
    clearInterval(poller);
    if (current()) progress.hidden = true;
    $("#analyse").disabled = false;
  }
}

// a new unit or layer: the old analysis no longer applies
export function clearAnalysis() {
  const section = $("#analysis");
  section.hidden = true;
  $("#analysis-progress").hidden = true;
  $("#analyse-status").textContent = "";
  delete section.dataset.layer;
  delete section.dataset.unit;
}
