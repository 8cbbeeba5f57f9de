// meiscope dashboard: the sweeps view. A stored sweep as a grid sheet (rows of units, columns of one axis,
// the other axes fixed by selects); a click on a cell opens that run in the unit view.

import { openStoredRun } from "./app.js";
import { drawCanvas } from "./plots.js";
import { unpack } from "./unpack.js";

const $ = (sel) => document.querySelector(sel);
const sweeps = { list: [], grid: null, images: null };
const label = (v) => (typeof v === "object" ? JSON.stringify(v) : String(v));
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

function showSweeps(on) {
  $("#sweeps-view").hidden = !on;
  document.querySelector("main").hidden = on;
  $("#sweeps-toggle").setAttribute("aria-pressed", String(on));
  $("#sweeps-toggle").textContent = on ? "Unit view" : "Sweeps";
  if (on) loadList();
}

async function loadList() {
  sweeps.list = await (await fetch("/api/sweeps")).json();
  const select = $("#sweep-select"), current = select.value;
  select.replaceChildren(...sweeps.list.map((s) => new Option(`${s.name} (${s.stored}/${s.runs} runs)`, s.name)));
  $("#sweep-export").disabled = true;  // until a sweep's grid is shown
  if (!sweeps.list.length) {
    $("#sweep-summary").textContent = "no stored sweeps (nothing to export): run `meiscope sweep SPEC.yaml` first";
    $("#sweep-columns").replaceChildren();
    $("#sweep-fixed").replaceChildren();
    $("#sweep-grid").replaceChildren();
    return;
  }
  if (current && sweeps.list.some((s) => s.name === current)) select.value = current;
  await loadSweep(select.value);
}

async function loadSweep(name) {
  const response = await fetch(`/api/sweeps/${encodeURIComponent(name)}`);
  if (!response.ok) {
    $("#sweep-summary").textContent = (await response.json()).detail;
    $("#sweep-grid").replaceChildren();
    $("#sweep-export").disabled = true;
    sweeps.grid = null;
    return;
  }
  const grid = await response.json();
  sweeps.grid = grid;
  sweeps.images = unpack(grid.images);  // points x units x 40 x 40
  const axes = Object.keys(grid.axes);
  $("#sweep-columns").replaceChildren(...(axes.length ? axes : ["(none)"]).map((a) => new Option(a, a)));
  $("#sweep-export").disabled = false;
  $("#sweep-summary").textContent = `${grid.units.length} units x ${grid.points.length} configs`;
  renderFixed();
}

function renderFixed() {
  // a select for every axis other than the column axis: which of its values the sheet shows
  const column = $("#sweep-columns").value;
  const fixed = $("#sweep-fixed");
  fixed.replaceChildren();
  for (const [axis, values] of Object.entries(sweeps.grid.axes)) {
    if (axis === column) continue;
    const select = document.createElement("select");
    select.dataset.axis = axis;
    values.forEach((v, i) => select.append(new Option(label(v), String(i))));
    select.addEventListener("input", renderGrid);
    const wrap = document.createElement("label");
    wrap.append(`${axis} `, select);
    fixed.append(wrap);
  }
  renderGrid();
}

function columns() {
  // grid point indices along the column axis, the other axes at their selected values
  const grid = sweeps.grid, column = $("#sweep-columns").value;
  const chosen = Object.fromEntries([...$("#sweep-fixed").querySelectorAll("select")]
    .map((s) => [s.dataset.axis, grid.axes[s.dataset.axis][Number(s.value)]]));
  const match = (p) => Object.entries(chosen).every(([a, v]) => same(p[a], v));
  const values = grid.axes[column] ?? [null];
  return values.map((v) => grid.points.findIndex((p) => match(p) && (v === null || same(p[column], v))));
}

function renderGrid() {
  const grid = sweeps.grid, column = $("#sweep-columns").value, cols = columns();
  const head = document.createElement("tr");
  head.append(document.createElement("th"));
  for (const p of cols) {
    const th = document.createElement("th");
    th.textContent = column in grid.axes ? `${column} = ${label(grid.points[p][column])}` : "base config";
    head.append(th);
  }
  const rows = grid.units.map((unit, u) => {
    const tr = document.createElement("tr");
    const th = document.createElement("th");
    th.textContent = `u${unit}`;
    tr.append(th);
    for (const p of cols) {
      const td = document.createElement("td");
      const act = grid.activation[p][u];
      const button = document.createElement("button");
      button.type = "button";
      button.className = "sweep-cell";
      Object.assign(button.dataset, { unit, point: p, runId: grid.run_ids[p][u] });
      button.title = `unit ${unit}, ${JSON.stringify(grid.points[p])}: open in the unit view`;
      if (act === null) {
        button.disabled = true;
        button.append("not run");
      } else {
        const canvas = document.createElement("canvas");
        drawCanvas(canvas, sweeps.images[p][u]);
        button.append(canvas, act.toFixed(3));
        button.addEventListener("click", () => openCell(grid.name, button.dataset.runId));
      }
      td.append(button);
      tr.append(td);
    }
    return tr;
  });
  $("#sweep-grid").replaceChildren(head, ...rows);
}

async function openCell(name, runId) {
  const response = await fetch(`/api/sweeps/${encodeURIComponent(name)}/runs/${runId}`);
  if (!response.ok) { $("#sweep-summary").textContent = (await response.json()).detail; return; }
  showSweeps(false);
  openStoredRun(await response.json(), name);
}

// the shown sweep's figure set (the button is disabled while no sweep is shown)
function exportSweep() {
  if (!sweeps.grid) return;
  const name = sweeps.grid.name;
  const link = Object.assign(document.createElement("a"), { href: `/api/sweeps/${encodeURIComponent(name)}/export`,
    download: `meiscope-sweep-${name}.zip` });
  document.body.append(link);
  link.click();
  link.remove();
}

$("#sweeps-toggle").addEventListener("click", () => showSweeps($("#sweeps-view").hidden));
$("#sweep-select").addEventListener("input", (e) => loadSweep(e.target.value));
$("#sweep-columns").addEventListener("input", renderFixed);
$("#sweep-export").addEventListener("click", exportSweep);
