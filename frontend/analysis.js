// "Analyse unit": every view of a z2 unit of the TDVAE (GET /api/units/{unit}/analysis, about 10 s the
// first time). It shows its progress beside the button and its panels below the run's panels, so that the
// controls and the Run button stay where they are.

import { $, fmt, state } from "./state.js";
import { drawCanvas, scaleBar } from "./plots.js";
import { unpack } from "./unpack.js";

function summarise(unit, numbers) {
  const a = numbers.agreement, g = numbers.gabor.optimised;
  return `unit ${unit}: preferred input vs STA r = ${a.preferred_vs_sta.toFixed(2)}, ` +
    `vs one-hot synthesis r = ${a.preferred_vs_one_hot.toFixed(2)}, across seeds r = ${a.across_seeds_mean.toFixed(2)}; ` +
    `best Gabor ${g.orientation_deg.toFixed(0)}°, ${g.params.freq.toFixed(3)} cycles/pixel, activation ${fmt(g.activation)}. ` +
    "Each panel in grey, centred on 0; the bar under it gives its values.";
}

function panelCard({ title, image }) {
  const card = document.createElement("div");
  card.className = "card";
  const canvas = document.createElement("canvas");
  const range = drawCanvas(canvas, unpack(image), { centred: true });
  card.append(canvas, scaleBar(range), Object.assign(document.createElement("div"), { className: "panel-title", textContent: title }));
  return card;
}

export async function analyseUnit() {
  const unit = state.selected, started = performance.now();
  const status = $("#analyse-status"), progress = $("#analysis-progress");
  $("#analysis").hidden = false;
  $("#analysis-panels").replaceChildren();
  $("#analyse").disabled = true;
  progress.hidden = false;
  const tick = () => {
    const s = Math.round((performance.now() - started) / 1000);
    status.textContent = `analysing unit ${unit}: ${s} s (about 10 s on a free machine)`;
    $("#analysis-summary").textContent = `analysing unit ${unit}: preferred inputs over 3 seeds, STA, one-hot ` +
      `synthesis, best Gabor, nearest patches, probes… ${s} s`;
  };
  tick();
  const timer = setInterval(tick, 500);
  try {
    const response = await fetch(`/api/units/${unit}/analysis`);
    if (unit !== state.selected) { status.textContent = ""; return; }  // the user moved on
    if (!response.ok) {
      $("#analysis-summary").textContent = `analysis failed: ${response.status}`;
      status.textContent = "analysis failed";
      return;
    }
    const result = await response.json();
    $("#analysis-summary").textContent = summarise(unit, result.numbers);
    $("#analysis-panels").replaceChildren(...result.panels.map(panelCard));
    status.textContent = `unit ${unit} analysed: the panels are below the metrics`;
  } finally {
    clearInterval(timer);
    progress.hidden = true;
    $("#analyse").disabled = false;
  }
}

// a new unit: the old analysis no longer applies
export function clearAnalysis() {
  $("#analysis").hidden = true;
  $("#analyse-status").textContent = "";
}
