// The controls' bounds, defaults and choices come from the config schema (GET /api/config/schema), so the
// page accepts exactly what the CLI and the engine accept. Presets are merged over the schema's defaults, and
// the preset menu names the preset the controls match (or "custom").

import { flatten, fmt, getPath } from "./state.js";

// a property may be {$ref}, {allOf: [{$ref}]} or inline; the referring node's own keys (default,
// description) win over the referred definition's
function resolve(schema, node) {
  const ref = node?.$ref ?? node?.allOf?.[0]?.$ref;
  if (!ref) return node;
  const own = Object.fromEntries(Object.entries(node).filter(([k]) => k !== "$ref" && k !== "allOf"));
  return { ...schema.$defs[ref.split("/").at(-1)], ...own };
}

// the schema of a dotted config field ("pre.jitter"); schedule fields carry minimum/maximum at their top
export function fieldSchema(schema, path) {
  let node = schema;
  for (const part of path.split(".")) {
    node = resolve(schema, node?.properties?.[part]);
    if (!node) return null;
  }
  return node;
}

// whether a field also takes the word "auto" (pre.jitter): its number box then reads "auto" when empty
export const takesAuto = (field) => (field.anyOf ?? []).some((t) => t.const === "auto");

export function bounds(field) {
  // a number that may also be "auto": the bounds are its integer branch's
  const numeric = takesAuto(field) ? field.anyOf.find((t) => t.type === "integer" || t.type === "number") : field;
  const lo = numeric.minimum ?? numeric.exclusiveMinimum, hi = numeric.maximum ?? numeric.exclusiveMaximum;
  const integer = field.type === "integer" || (field.anyOf ?? []).some((t) => t.type === "integer");
  return { lo, hi, integer, loOpen: numeric.minimum === undefined && lo !== undefined };
}

function rangeText({ lo, hi, loOpen }) {
  if (lo === undefined && hi === undefined) return "";
  return `${loOpen ? `> ${fmt(lo)}` : fmt(lo)} to ${fmt(hi)}`;
}

// min/max/step/title and the default value of every named control; the options of selects with an enum;
// each slider's range (narrowed only where its label says so)
export function applySchema(form, schema, defaults, limits) {
  for (const el of form.elements) {
    if (!el.name) continue;
    const field = fieldSchema(schema, el.name);
    if (!field) continue;
    const b = bounds(field);
    if (el.type === "number") {
      if (b.lo !== undefined) el.min = b.lo;
      if (b.hi !== undefined) el.max = b.hi;
      if (b.integer && el.step === "any") el.step = "1";
      if (takesAuto(field)) {
        el.dataset.auto = "true";
        el.placeholder = "auto";
      }
    }
    if (el.tagName === "SELECT" && field.enum && !el.options.length) {
      for (const value of field.enum) el.append(new Option(value, value));
    }
    let title = `${el.name}: ${field.description ?? ""}` + (rangeText(b) ? ` (${rangeText(b)})` : "");
    if (el.name === "steps" && limits?.max_steps < b.hi) title += `; this server runs at most ${limits.max_steps.toLocaleString()}`;
    el.title = title;
    const value = getPath(defaults, el.name);
    if (value !== undefined && typeof value !== "object") el.value = value === "auto" && el.dataset.auto ? "" : value;
  }
  for (const slider of form.querySelectorAll("input[data-slider]")) {
    const b = bounds(fieldSchema(schema, slider.dataset.slider));
    const shown = slider.dataset.displayMax === undefined ? b.hi : Math.min(b.hi, Number(slider.dataset.displayMax));
    slider.min = b.lo;
    slider.max = shown;
    slider.title = shown < b.hi ? `slider ${fmt(b.lo)} to ${fmt(shown)}; type up to ${fmt(b.hi)} in the box` : "";
  }
}

export function merged(base, partial) {
  const out = structuredClone(base);
  for (const [key, value] of Object.entries(partial ?? {})) {
    const isSection = value && typeof value === "object" && !Array.isArray(value) && !("kind" in value);
    out[key] = isSection && out[key] && typeof out[key] === "object" ? merged(out[key], value) : structuredClone(value);
  }
  return out;
}

// fields a preset leaves to the user: what is run and for how long, not how it is regularised
const FREE = new Set(["unit", "layer", "stat", "objective", "steps", "seed", "snapshot_every", "elbo_every", "precision"]);

// the preset whose settings (over the defaults) the config has, else ""
export function matchingPreset(presets, defaults, config) {
  const have = flatten(merged(defaults, config));
  for (const [name, preset] of Object.entries(presets)) {
    const want = flatten(merged(defaults, preset));
    if (Object.keys(want).every((k) => FREE.has(k) || JSON.stringify(want[k]) === JSON.stringify(have[k]))) return name;
  }
  return "";
}
