// Signals of a result: its activation against the unit's 99.9th percentile on data (the census), its ELBO against
// the held-out data's (the model card), and, once a run is done, the engine's checks (did it drive its unit, with
// an input the model could be given?). A model without a census or an ELBO gets no badge for it; a check that does
// not apply to the model gets none either. Green only for what passed: an activation below the data's 99.9th
// percentile is amber (not driven), a failed check red.

import { fmt } from "./state.js";

const RATIO_WARN = 1.5, RATIO_BAD = 10;

export function activationSignal(activation, p999) {
  if (p999 === null || p999 === undefined || activation === null || activation === undefined) return null;
  if (!(p999 > 0)) {
    return { key: "activation", level: "info", text: `activation ${fmt(activation)} (the data's 99.9th pct is ${fmt(p999)})`,
      title: "no ratio: this unit's 99.9th percentile on data is not positive" };
  }
  const ratio = activation / p999;
  const level = ratio > RATIO_BAD ? "bad" : ratio > RATIO_WARN || ratio < 1 ? "warn" : "ok";
  return { key: "activation", level, ratio,
    text: `activation = ${fmt(ratio, Math.abs(ratio) >= 10 ? 3 : 2)} × the data's 99.9th pct`,
    title: `activation ${fmt(activation)}; this unit's 99.9th percentile on held-out data: ${fmt(p999)}. ` +
      `Amber below 1× (the unit is not driven as far as data drive it) and above ${RATIO_WARN}×, red above ` +
      `${RATIO_BAD}×: the input drives the unit beyond what data does.` };
}

export function elboSignal(elbo, heldout) {
  if (elbo === null || elbo === undefined || heldout === null || heldout === undefined) return null;
  const diff = elbo - heldout;
  // flagged when the input is less likely than data by more than the held-out ELBO's own size (below 2x it)
  const level = diff < -Math.abs(heldout) ? "bad" : "ok";
  return { key: "elbo", level, diff,
    text: `ELBO ${fmt(elbo, 4)} nats (${diff >= 0 ? "+" : ""}${fmt(diff, 4)} vs held-out data ${fmt(heldout, 4)})`,
    title: "the input's ELBO (one sample, nats) minus the mean ELBO of held-out data patches (model card). " +
      "Red: below twice the held-out mean, far less likely under the model than data." };
}

const CHECK_NAMES = { driven: "driven", target_wins: "target wins", in_range: "in range",
  in_distribution: "in distribution", converged: "converged", inside_receptive_field: "inside its field" };

// a badge per check that applies to the model: green when it passed, red when not; the detail on hover
export function checkSignals(checks) {
  if (!checks) return [];
  return Object.entries(checks).filter(([, c]) => c.ok !== null).map(([name, c]) => ({
    key: `check-${name}`, level: c.ok ? "ok" : "bad", text: `${CHECK_NAMES[name] ?? name} ${c.ok ? "✓" : "✗"}`,
    title: `${name}: ${c.detail}` }));
}

// badges in `box` for the signals that apply (hidden when none do)
export function showSignals(box, { activation, p999, elbo, heldout, checks }) {
  const signals = [activationSignal(activation, p999), elboSignal(elbo, heldout), ...checkSignals(checks)].filter(Boolean);
  box.replaceChildren(...signals.map((s) => {
    const badge = document.createElement("span");
    badge.className = `badge ${s.level}`;
    badge.dataset.signal = s.key;
    badge.dataset.level = s.level;
    badge.textContent = s.text;
    badge.title = s.title;
    return badge;
  }));
  box.hidden = !signals.length;
}
