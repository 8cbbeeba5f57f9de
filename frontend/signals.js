// Out-of-distribution signals of a result: its activation against the unit's 99.9th percentile on data (the
// census), and its ELBO against the held-out data's (the model card). A model without a census or an ELBO gets
// no badge for it.

import { fmt } from "./state.js";

const RATIO_WARN = 1.5, RATIO_BAD = 10;

export function activationSignal(activation, p999) {
  if (p999 === null || p999 === undefined || activation === null || activation === undefined) return null;
  if (!(p999 > 0)) {
    return { key: "activation", level: "info", text: `activation ${fmt(activation)} (the data's 99.9th pct is ${fmt(p999)})`,
      title: "no ratio: this unit's 99.9th percentile on data is not positive" };
  }
  const ratio = activation / p999;
  const level = ratio > RATIO_BAD ? "bad" : ratio > RATIO_WARN ? "warn" : "ok";
  return { key: "activation", level, ratio,
    text: `activation = ${fmt(ratio, Math.abs(ratio) >= 10 ? 3 : 2)} × the data's 99.9th pct`,
    title: `activation ${fmt(activation)}; this unit's 99.9th percentile on held-out data: ${fmt(p999)}. ` +
      `Flagged above ${RATIO_WARN}× (amber) and ${RATIO_BAD}× (red): the input drives the unit beyond what data does.` };
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

// badges in `box` for the signals that apply (hidden when none do)
export function showSignals(box, { activation, p999, elbo, heldout }) {
  const signals = [activationSignal(activation, p999), elboSignal(elbo, heldout)].filter(Boolean);
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
