"""Checks on every result: did the run drive its unit, with an input the model could be given?

For each row (unit and sample) the engine stores `checks` in the Run (and run.json): a mapping from name to
{"ok": true | false | null, "value": number | null, "detail": "one line"}; `ok` is null where a check does not
apply to the model. A result is trustworthy when every check that applies is ok.

- driven: the final activation against the unit's data distribution (its 99.9th percentile on data, and the
  largest activation on data where the census has it); without a census, against the activation at the start.
- target_wins: no other unit of the layer ends above the target (value: the margin to the runner-up).
- in_range: every input value inside the model's declared input range (value: how far it leaves it).
- in_distribution: the final input's ELBO as a percentile of the held-out inputs' ELBOs (models with an ELBO
  and a held-out reference).
- converged: the relative change of the activation over the last 10% of the steps (window means).
- inside_receptive_field: the share of the run's change of the input (final minus start, squared) that lies
  outside the unit's receptive field (engine/fields.py, grown by the jitter).
"""

from __future__ import annotations

import numpy as np

DRIVEN_AT = 1.0  # the final activation reaches the unit's 99.9th percentile on data
DISTRIBUTION_PERCENTILE = 1.0  # an ELBO below the held-out inputs' 1st percentile is out of distribution
CONVERGED_CHANGE = 0.02  # at most 2% change of the activation over the last 10% of the steps
OUTSIDE_FIELD_SHARE = 0.1  # at most 10% of the change of the input outside the receptive field


def check(ok: bool | None, value: float | None, detail: str) -> dict:
    finite = value is not None and np.isfinite(value)
    return {"ok": None if ok is None else bool(ok), "value": float(value) if finite else None, "detail": detail}


def _number(value: float) -> str:
    return f"{value:.3g}"


def driven(final: float, start: float, record: dict | None) -> dict:
    if record is None or not record.get("act_p999"):
        return check(final > start, final - start, f"activation {_number(final)} against {_number(start)} at the "
                                                   "start (no census of the unit on data)")
    ratio = final / record["act_p999"]
    top = record.get("act_max")
    versus = f"; the largest on data {_number(top)}" if top is not None else ""
    return check(ratio >= DRIVEN_AT, ratio, f"activation {_number(final)} = {ratio:.2f}x the unit's 99.9th "
                                            f"percentile on data ({_number(record['act_p999'])}){versus}")


def target_wins(final: float, runner_up: float, runner_up_unit: float) -> dict:
    if not np.isfinite(runner_up):
        return check(None, None, "no other unit in the layer")
    margin = final - runner_up
    return check(margin > 0, margin, f"target {_number(final)}, the largest other unit (u{int(runner_up_unit)}) "
                                     f"{_number(runner_up)}")


def in_range(image: np.ndarray, bounds: tuple[float, float] | None) -> dict:
    if bounds is None:
        return check(None, None, "the model declares no input range")
    low, high = bounds
    beyond = max(low - float(image.min()), float(image.max()) - high, 0.0)
    tolerance = 1e-6 * (high - low)
    return check(beyond <= tolerance, beyond, f"values {_number(float(image.min()))}..{_number(float(image.max()))} "
                                              f"in the declared range {_number(low)}..{_number(high)}")


def in_distribution(elbo: float | None, reference: np.ndarray | None, has_elbo: bool) -> dict:
    """reference: the held-out ELBOs (or their percentiles), sorted."""
    if not has_elbo:
        return check(None, None, "the model has no ELBO")
    if elbo is None or not np.isfinite(elbo):
        return check(None, None, "the ELBO of the final input was not measured")
    if reference is None or not len(reference):
        return check(None, elbo, f"ELBO {_number(elbo)} nats (no held-out ELBOs to compare with)")
    percentile = 100.0 * float(np.searchsorted(reference, elbo)) / len(reference)
    return check(percentile >= DISTRIBUTION_PERCENTILE, percentile,
                 f"ELBO {_number(elbo)} nats, above {percentile:.1f}% of held-out inputs "
                 f"(median {_number(float(np.median(reference)))})")


def converged(activation: np.ndarray) -> dict:
    """activation: one row's activation at every step. The mean over the last 10% of the steps against the mean
    over the 10% before them (means, so that jitter's step-to-step noise does not count as change)."""
    steps = len(activation)
    if steps < 2:
        return check(None, None, "too few steps")
    window = max(1, int(round(0.1 * steps)))
    last = float(np.mean(activation[-window:]))
    before = float(np.mean(activation[-2 * window:-window])) if steps >= 2 * window else float(activation[0])
    change = (last - before) / max(abs(last), 1e-12)
    word = "rising" if change > 0 else "falling"
    return check(abs(change) <= CONVERGED_CHANGE, change,
                 f"activation {word} by {abs(change):.1%} over the last {window} of {steps} steps")


def inside_field(start: np.ndarray, final: np.ndarray, field: np.ndarray) -> dict:
    """start, final: one row's input (C, H, W) or (H, W); field: (H, W) booleans."""
    change = np.square(np.asarray(final, np.float64) - np.asarray(start, np.float64))
    change = change.reshape(-1, *field.shape).sum(0)
    total = float(change.sum())
    if field.all():
        return check(True, 0.0, "the unit sees the whole input")
    if total == 0:
        return check(None, None, "the input did not change")
    outside = float(change[~field].sum()) / total
    return check(outside <= OUTSIDE_FIELD_SHARE, outside,
                 f"{outside:.1%} of the change of the input lies outside the unit's receptive field "
                 f"({int(field.sum())} of {field.size} pixels)")


VALUE_TEXT = {"converged": "{:+.1%}", "inside_receptive_field": "{:.0%} outside",
              "in_distribution": "ELBO above {:.0f}% of held-out", "target_wins": "margin {:+.3g}"}


MARKS = {True: "ok", False: "FAIL", None: "n/a"}


def value_text(name: str, result: dict, checks: dict[str, dict]) -> str:
    """A check's value as a reading ("1.20x p99.9", "+0.5%"), or "" where it has none or does not apply;
    `checks`: all of the row's checks (driven reads differently without a census)."""
    if result["value"] is None or result["ok"] is None:
        return ""
    without_census = "no census" in checks.get("driven", {}).get("detail", "")
    texts = {**VALUE_TEXT, "driven": "{:+.3g} from the start" if without_census else "{:.2f}x p99.9"}
    return texts.get(name, "{:.3g}").format(result["value"])


def summary(checks: dict[str, dict]) -> str:
    """One line: each check's name, ok / FAIL / n/a, and its value."""
    return ", ".join(f"{name} {MARKS[c['ok']]}" + (f" ({text})" if (text := value_text(name, c, checks)) else "")
                     for name, c in checks.items())


def summary_lines(rows: list[dict], checks: list[dict], samples: int, most: int = 20) -> list[str]:
    """A line per row ("unit 50: driven ok (1.29x p99.9), ..."), the first `most` rows, then a tally."""
    lines = []
    for row, row_checks in list(zip(rows, checks))[:most]:
        sample = f".{row['sample']}" if samples > 1 else ""
        lines.append(f"unit {row['unit']}{sample}: {summary(row_checks)}")
    rest = checks[most:]
    if rest:
        lines.append(f"... {len(rest)} more rows, {sum(trustworthy(c) for c in rest)} of them pass every check "
                     "that applies (run.json has them all)")
    return lines


def trustworthy(checks: dict[str, dict]) -> bool:
    """Every check that applies is ok."""
    return all(c["ok"] is not False for c in checks.values())


def census_record(model, objective) -> dict | None:
    """The census record of an objective's unit: only for a plain unit (what the census measures)."""
    term = objective.plain_unit
    if term is None:
        return None
    census = model.census(term.layer)
    if census is None:
        return None
    return next((r for r in census if r["unit"] == term.unit), None)


def row_references(model, config) -> tuple[list[dict | None], np.ndarray | None]:
    """What each row is read against, found once per run: its unit's census record (None where unknown) and the
    held-out ELBOs, sorted (None without them)."""
    records = [census_record(model, o) for o in config.objectives for _ in range(config.samples)]
    reference = model.elbo_reference() if model.has_elbo else None
    return records, None if reference is None else np.sort(reference)


def curve_references(records: list[dict | None], reference: np.ndarray | None) -> dict:
    """What a run's curves are read against (drawn in its figures): each row's unit's 99.9th percentile on data
    (None where unknown) and the median held-out ELBO (None without one)."""
    return {"act_p999": [None if r is None else r.get("act_p999") for r in records],
            "heldout_elbo_median": None if reference is None or not len(reference) else float(np.median(reference))}


def row_checks(run, model, fields: np.ndarray, final_elbos: np.ndarray | None, records: list[dict | None],
               reference: np.ndarray | None) -> list[dict[str, dict]]:
    """Every check for every row of `run` (a Run of `model`); fields: (rows, H, W), each row's receptive field
    grown by R_pre's reach; final_elbos: the ELBO of each row's final input, or None; records and reference: as
    row_references gives them."""
    if run.info.get("steps_done", 0) == 0:
        return []
    activation = run.metrics["activation"]
    start = run.snapshots[0]
    out = []
    for row in range(len(run.rows)):
        final = float(activation[-1, row])
        out.append({
            "driven": driven(final, float(activation[0, row]), records[row]),
            "target_wins": target_wins(final, float(run.metrics["runner_up"][-1, row]),
                                       float(run.metrics["runner_up_unit"][-1, row])),
            "in_range": in_range(run.images[row], model.input.range),
            "in_distribution": in_distribution(None if final_elbos is None else float(final_elbos[row]), reference,
                                               model.has_elbo),
            "converged": converged(activation[:, row]),
            "inside_receptive_field": inside_field(start[row], run.images[row], fields[row]),
        })
    return out
