// Figures of the unit view (Plotly) and of the cards (canvas): images with colour bars, amplitude spectra in
// cycles/pixel with their radial profile, metric curves with the data's reference lines, and the overlay of
// the pinned runs' activation curves. Every axis has a title with its unit.

import { fmt } from "./state.js";

export const plotConfig = { displayModeBar: false, responsive: true };
const font = { size: 11 };
const title = (text) => ({ text, standoff: 6, font });
// outside ticks keep the x and y tick labels apart where the axes meet
const axis = (text, extra = {}) => ({ title: title(text), automargin: true, tickfont: font, ticks: "outside", ticklen: 4,
  tickcolor: "#999", ...extra });
const colorbar = (text) => ({ thickness: 10, outlinewidth: 0, tickfont: font, title: { text, side: "right", font } });
const imageMargin = { l: 10, r: 10, t: 8, b: 10 };  // automargin makes room for the titles and ticks
const REF_COLOURS = ["#c0392b", "#8e44ad", "#d35400", "#16a085"];

// the value range an image is drawn in: centred on 0 (whitened inputs, kernels), else the data's range (the
// model's input range where it states one, widened to the image's own where the image goes beyond it: see
// beyondData), else the image's own
export function valueRange(values, centred, dataRange = null) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  if (centred) { const lim = Math.max(1e-9, Math.abs(lo), Math.abs(hi)); return [-lim, lim]; }
  if (dataRange) return [Math.min(dataRange[0], lo), Math.max(dataRange[1], hi)];
  return [lo, Math.max(hi, lo + 1e-9)];
}

// the value of an image that is one constant up to float rounding (a fixed sigma), else null
export function isConstant(values) {
  let lo = Infinity, hi = -Infinity;
  for (const v of values) { if (v < lo) lo = v; if (v > hi) hi = v; }
  return Number.isFinite(lo) && hi - lo <= 1e-5 * Math.max(Math.abs(lo), Math.abs(hi)) + 1e-12 ? (lo + hi) / 2 : null;
}

// a note when an image drawn on the data's range goes beyond it
export function beyondData([lo, hi], dataRange) {
  if (!dataRange || (lo >= dataRange[0] && hi <= dataRange[1])) return "";
  return `values from ${fmt(lo)} to ${fmt(hi)}, beyond the data's range ${fmt(dataRange[0])} to ${fmt(dataRange[1])}: ` +
    "the colour bar is widened to show them";
}

// a (C, H, W) image of several channels as rows of [r, g, b] in 0..255, all channels scaled together
export function rgbRows(image) {
  const [lo, hi] = valueRange(image.flat(2), false);
  return image[0].map((row, y) => row.map((_, x) => [0, 1, 2].map((c) =>
    Math.round(255 * (image[Math.min(c, image.length - 1)][y][x] - lo) / (hi - lo)))));
}

function pixelLayout(h, w) {
  return { margin: imageMargin, xaxis: axis("x (px)", { range: [-0.5, w - 0.5], constrain: "domain", constraintoward: "right" }),
    yaxis: axis("y (px)", { autorange: "reversed", scaleanchor: "x", constrain: "domain" }) };
}

// an image in grey (low values dark) with a colour bar of its values; colour images as an RGB image.
// Returns the value range drawn.
export function showImage(id, image, { centred = true, dataRange = null, unit = "value", colorscale = "Greys" } = {}) {
  if (Array.isArray(image[0][0])) {
    const z = rgbRows(image);
    Plotly.react(id, [{ z, type: "image", hoverinfo: "x+y" }], pixelLayout(z.length, z[0].length), plotConfig);
    return valueRange(image.flat(2), false);
  }
  let [lo, hi] = valueRange(image.flat(), centred, dataRange);
  const constant = isConstant(image.flat());  // a fixed sigma: one colour, said in words, not rounding stretched
  if (constant !== null) {
    const pad = Math.max(Math.abs(constant) / 2, 1e-9);
    [lo, hi] = [constant - pad, constant + pad];
    unit = `${unit}: constant ${fmt(constant)}`;
  }
  const trace = { z: image, type: "heatmap", colorscale, zmin: lo, zmax: hi, colorbar: colorbar(unit),
    hovertemplate: `x %{x}, y %{y}: %{z:.3g} ${unit}<extra></extra>` };
  Plotly.react(id, [trace], pixelLayout(image.length, image[0].length), plotConfig);
  return [lo, hi];
}

// fftshift(fftfreq(n)): frequencies of a centred spectrum's rows or columns, cycles/pixel, DC at n/2
export function frequencies(n) {
  return Array.from({ length: n }, (_, i) => (i - Math.floor(n / 2)) / n);
}

export function showSpectrum(id, logSpectrum) {
  const h = logSpectrum.length, w = logSpectrum[0].length;
  const trace = { z: logSpectrum, x: frequencies(w), y: frequencies(h), type: "heatmap", colorscale: "Viridis",
    colorbar: colorbar("log10 amplitude"), hovertemplate: "fx %{x:.3f}, fy %{y:.3f} c/px: %{z:.2f}<extra></extra>" };
  const range = [-0.5, 0.5], ticks = { tickvals: [-0.5, -0.25, 0, 0.25, 0.5] };
  Plotly.react(id, [trace], { margin: imageMargin,
    xaxis: axis("fx (cycles/pixel)", { range, constrain: "domain", constraintoward: "right", ...ticks }),
    yaxis: axis("fy (cycles/pixel)", { range, scaleanchor: "x", constrain: "domain", ...ticks }) }, plotConfig);
}

// the mean amplitude in rings of |f| (bins of 1/N cycles/pixel, up to 0.5), from a centred log10 spectrum;
// DC (|f| = 0) is left out: a zero-mean image has none, and a log axis could not show it
export function radialProfile(logSpectrum) {
  const h = logSpectrum.length, w = logSpectrum[0].length, fy = frequencies(h), fx = frequencies(w);
  const width = 1 / Math.min(h, w), bins = Math.floor(0.5 / width) + 1;
  const sum = new Array(bins).fill(0), count = new Array(bins).fill(0);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const b = Math.round(Math.hypot(fx[x], fy[y]) / width);
      if (b > 0 && b < bins) { sum[b] += 10 ** logSpectrum[y][x]; count[b] += 1; }
    }
  }
  const f = [], amplitude = [];
  for (let b = 1; b < bins; b++) if (count[b]) { f.push(b * width); amplitude.push(sum[b] / count[b]); }
  return { f, amplitude };
}

// a log axis labelled with full numbers at 1, 2 and 5 per decade (at decades only where it spans three or
// more; Plotly's own small labels "2" and "5" leave the decade to guess)
function logTicks(values) {
  const positive = values.filter((v) => v > 0);
  const lo = Math.min(...positive), hi = Math.max(...positive);
  const steps = Math.log10(hi / lo) >= 3 ? [1] : [1, 2, 5];
  const tickvals = [];
  for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
    for (const m of steps) if (m * 10 ** k >= lo / 1.5 && m * 10 ** k <= hi * 1.5) tickvals.push(m * 10 ** k);
  }
  return { type: "log", tickvals, ticktext: tickvals.map((v) => fmt(v)) };
}

export function showRadialProfile(id, logSpectrum) {
  const { f, amplitude } = radialProfile(logSpectrum);
  const trace = { x: f, y: amplitude, mode: "lines+markers", marker: { size: 4 }, name: "input",
    hovertemplate: "|f| %{x:.3f} c/px: %{y:.3g}<extra></extra>" };
  Plotly.react(id, [trace], { margin: { l: 10, r: 10, t: 8, b: 10 }, showlegend: false,
    xaxis: axis("|f| (cycles/pixel)", { range: [0, 0.52] }),
    yaxis: axis("mean amplitude", logTicks(amplitude)) }, plotConfig);
}

// a dashed horizontal line across one subplot, in the legend with its value
function refLine(n, y, name, colour, group) {
  return { type: "line", xref: `x${n} domain`, x0: 0, x1: 1, yref: `y${n}`, y0: y, y1: y, layer: "below",
    line: { dash: "dash", width: 1.5, color: colour }, showlegend: true, name, legendgroup: group ?? name };
}

// the metric curves, one plot each (side by side where there is room; a plot of its own never lets one
// curve's axis title run into the next): activation and runner-up with the unit's 99.9th percentile on data,
// the ELBO with the held-out data's (only for a model that has one), the objective
const CURVE_COLOURS = { activation: "#1f77b4", runner_up: "#ff7f0e", elbo: "#2ca02c", objective: "#d62728" };
const CURVE_PLOTS = [
  { id: "plot-curves", names: ["activation", "runner_up"], title: "activation", ref: "p999" },
  { id: "plot-elbo", names: ["elbo"], title: "ELBO (nats)", ref: "heldout" },
  { id: "plot-objective", names: ["objective"], title: "objective" },
];

export function drawCurves(curves, { hasElbo = true, p999 = null, heldout = null, revision = "" } = {}) {
  const refs = { p999: [p999, `data 99.9th pct (${fmt(p999)})`], heldout: [heldout, `held-out data (${fmt(heldout, 4)} nats)`] };
  document.getElementById("plot-elbo").hidden = !hasElbo;
  for (const plot of CURVE_PLOTS) {
    if (plot.names[0] === "elbo" && !hasElbo) continue;
    const traces = plot.names.map((k) => ({ x: curves[k].x, y: curves[k].y, name: k.replace("_", "-"), mode: "lines",
      line: { color: CURVE_COLOURS[k] }, showlegend: plot.names.length > 1,
      hovertemplate: `step %{x}: %{y:.4g}<extra>${k}</extra>` }));
    const [ref, label] = refs[plot.ref] ?? [null];
    const layout = {
      datarevision: `${curves[plot.names[0]].x.length}-${revision}`,  // the arrays grow in place
      margin: { l: 10, r: 10, t: 10, b: 10 }, font, showlegend: plot.names.length > 1 || ref !== null,
      legend: { orientation: "h", x: 0, y: 1.02, xanchor: "left", yanchor: "bottom", font },
      xaxis: axis("step"), yaxis: axis(plot.title, ref === null ? {} : { autorangeoptions: { include: [ref] } }),
      shapes: ref === null ? [] : [refLine("", ref, label, REF_COLOURS[plot.ref === "heldout" ? 1 : 0])],
    };
    Plotly.react(plot.id, traces, layout, plotConfig);
  }
}

// the activation curves of the pinned runs in one plot, with each distinct unit's 99.9th percentile on data
export function drawCompare(id, pins) {
  const traces = pins.map((pin) => ({ x: pin.curves.activation.x, y: pin.curves.activation.y, mode: "lines",
    name: `#${pin.n} ${pin.title}`, hovertemplate: `step %{x}: %{y:.4g}<extra>#${pin.n}</extra>` }));
  const units = [...new Map(pins.filter((p) => p.p999 !== null).map((p) => [p.config.unit, p.p999])).entries()];
  const shapes = units.map(([unit, p999], i) =>
    refLine("", p999, `unit ${unit}: data 99.9th pct (${fmt(p999)})`, REF_COLOURS[i % REF_COLOURS.length]));
  Plotly.react(id, traces, { margin: { l: 10, r: 10, t: 10, b: 10 }, font, shapes,
    legend: { orientation: "h", x: 0, y: 1.02, xanchor: "left", yanchor: "bottom", font },
    xaxis: axis("step"), yaxis: axis("activation", { autorangeoptions: { include: units.map(([, v]) => v) } }) }, plotConfig);
}

// an image on a canvas (grey, low values dark; centred on 0 or from the data's range); returns the range drawn
export function drawCanvas(canvas, image, { centred = true, dataRange = null } = {}) {
  const rgb = Array.isArray(image[0][0]) ? rgbRows(image) : null;
  const h = rgb ? rgb.length : image.length, w = rgb ? rgb[0].length : image[0].length;
  const ctx = canvas.getContext("2d");
  canvas.width = w; canvas.height = h;
  const pixels = ctx.createImageData(w, h);
  const values = rgb ? image.flat(2) : image.flat();
  const [lo, hi] = valueRange(values, rgb ? false : centred, rgb ? null : dataRange);
  if (rgb) {
    rgb.flat().forEach((px, i) => pixels.data.set([...px, 255], 4 * i));
  } else {
    values.forEach((v, i) => {
      const g = Math.round(255 * Math.min(1, Math.max(0, (v - lo) / (hi - lo))));
      pixels.data.set([g, g, g, 255], 4 * i);
    });
  }
  ctx.putImageData(pixels, 0, 0);
  return [lo, hi];
}

// a horizontal colour bar with its end values, for images drawn on a canvas
export function scaleBar([lo, hi], colour = false) {
  const bar = document.createElement("div");
  bar.className = "scalebar" + (colour ? " colour" : "");
  bar.title = `${colour ? "all channels scaled together" : "grey scale"}: ${fmt(lo)} (dark) to ${fmt(hi)} (light)`;
  bar.append(Object.assign(document.createElement("span"), { textContent: fmt(lo) }), document.createElement("i"),
    Object.assign(document.createElement("span"), { textContent: fmt(hi) }));
  return bar;
}
