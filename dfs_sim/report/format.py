"""Render a summary or a per-layer frame as a table, JSON or CSV."""
from __future__ import annotations

import io
import math

import pandas as pd

from dfs_sim.jsonio import dumps

FORMATS = ("table", "json", "csv")
_UNITS = {"cycles": "cycles", "latency_us": "µs", "energy_uj": "µJ", "dram_bytes": "B", "sram_bytes": "B"}


SI_PREFIXES = {-12: "p", -9: "n", -6: "µ", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T"}
# unit -> (base unit, power of ten of the unit in its base): µJ are 1e-6 J.
SI_UNITS = {"µJ": ("J", -6), "pJ": ("J", -12), "µs": ("s", -6), "B": ("B", 0), "cycles": ("cycles", 0)}
CSV_FLOAT = "%.12g"  # CSV keeps 12 significant digits: no repr noise like 93.97999999999999


def format_int(value) -> str:
    """An integer with thousands separators: 10,000."""
    return f"{int(value):,}"


def format_number(value, digits: int = 4) -> str:
    """One number for a person: integers and values of 1,000 or more with separators, smaller ones
    with `digits` significant digits, tiny ones in engineering form (12.3e-6); never 8.437e+04."""
    if value is None:
        return "n/a"
    if isinstance(value, (bool, str)):
        return str(value)
    if isinstance(value, int) or (isinstance(value, float) and value.is_integer() and abs(value) < 1e15):
        return format_int(value)
    value = float(value)
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    magnitude = math.floor(math.log10(abs(value)))
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    if magnitude < -3:
        exponent = 3 * math.floor(magnitude / 3)
        return f"{value / 10 ** exponent:.{digits - 1 - (magnitude - exponent)}f}e{exponent}"
    return f"{value:.{max(0, digits - 1 - magnitude)}f}"


def format_row(values, digits: int = 4) -> list[str]:
    """Numbers that share a row share a form: the largest gets `digits` significant digits and the
    others the same decimals (84,370 beside 227,971, never 8.437e+04 beside 227,971); a row whose
    small values would round to 0 formats each on its own."""
    finite = [abs(float(v)) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    largest = max(finite, default=0.0)
    decimals = 0 if largest >= 1000 or largest == 0 else max(0, digits - 1 - math.floor(math.log10(largest)))
    if any(0 < v <= 0.5 * 10 ** -decimals for v in finite):
        return [format_number(v, digits) for v in values]
    return ["n/a" if v is None else f"{float(v):,.{decimals}f}" for v in values]


def format_quantity(value, unit: str, digits: int = 3) -> str:
    """A value with an SI prefix: 3,657 µJ -> '3.66 mJ', 25,323,254 B -> '25.3 MB', 1.77e6 cycles ->
    '1.77 M cycles'. Units without a known base print as format_number."""
    if value is None:
        return "n/a"
    if unit not in SI_UNITS:
        return f"{format_number(value, digits)} {unit}".strip()
    base, power = SI_UNITS[unit]
    x = float(value) * 10.0 ** power
    if x == 0 or not math.isfinite(x):
        return format_number(x)
    exponent = min(max(3 * math.floor(math.log10(abs(x)) / 3), -12), 12)
    mantissa = x / 10.0 ** exponent
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(mantissa))))
    if abs(round(mantissa, decimals)) >= 1000 and exponent < 12:
        exponent += 3
        mantissa /= 1000
        decimals = digits - 1
    prefix = SI_PREFIXES[exponent]
    gap = " " if len(base) > 1 and prefix else ""
    return f"{mantissa:.{decimals}f} {prefix}{gap}{base}"


def energy_breakdown_line(summary: dict) -> str:
    """'compute 29.6 µJ (88 %), weight buffer 1.96 µJ (5.8 %), ...': components in words, config
    names only where two buffers share a name."""
    names = summary.get("energy_components", {})
    parts = summary["energy_breakdown_uj"]
    grouped: dict[str, list] = {}
    for key, value in parts.items():
        grouped.setdefault(names.get(key, key), []).append((key, value))
    total = sum(parts.values()) or 1.0
    out = []
    for name, members in grouped.items():
        value = sum(v for _, v in members)
        keys = f" ({', '.join(k for k, _ in members)})" if len(members) > 1 else ""
        share = 100.0 * value / total
        share_text = "" if value == 0 else f" ({'<0.1' if share < 0.1 else f'{share:.2g}'} %)"
        out.append(f"{name}{keys} {format_quantity(value, 'µJ')}{share_text}")
    return ", ".join(out)


def summary_rows(summary: dict) -> list[tuple[str, str, object]]:
    """Flatten a summary to (section, name, value) rows, the CSV form."""
    rows = []
    for key in ("trace", "network", "hw", "hw_model", "n_inputs", "budget_pct", "computation_pct", "bitops_pct",
                "accuracy", "weights_resident_on_chip"):
        rows.append(("run", key, summary[key]))
    rows.append(("run", "batch_size", summary["batch"]["size"]))
    rows.append(("run", "batch_policy", summary["batch"]["policy"]))
    rows.append(("run", "full_precision_mapping", summary["precision_mapping"]["full_precision"]))
    rows.append(("run", "fmap_compression", summary["fmap_compression"]["scheme"]))
    rows.append(("run", "layers_with_densities", summary["fmap_compression"]["layers_with_densities"]))
    for metric, stats in summary["metrics"].items():
        for stat, value in stats.items():
            rows.append((metric, stat, value))
    if "reference" in summary:
        rows.append(("reference", "spec", summary["reference"]["spec"]))
        for metric, entry in summary["reference"]["metrics"].items():
            rows.append(("reference", metric, entry["value"]))
            rows.append(("reference", f"{metric}_pct", entry["pct"]))
    for part, value in summary["energy_breakdown_uj"].items():
        rows.append(("energy_breakdown_uj", part, value))
    area = summary.get("area")
    if area is not None:
        rows.append(("area", "total_mm2", area["total_mm2"]))
        rows.append(("area", "complete", area["complete"]))
        for part, value in area["components_mm2"].items():
            rows.append(("area", f"{part}_mm2", value))
    budget = summary["budget"]
    for name, entry in (budget["against_target"] or {}).items():
        rows.append(("budget_target", name, entry["pct"]))
    for name, entry in budget["absolute"].items():
        rows.append(("budget_absolute", f"{name}<={entry['budget']:g}", entry["share_over_pct"]))
    return rows


def render_summary(summary: dict, fmt: str) -> str:
    if fmt == "json":
        return dumps(summary, indent=2) + "\n"
    if fmt == "csv":
        rows = [(section, name, CSV_FLOAT % value if isinstance(value, float) else value)
                for section, name, value in summary_rows(summary)]  # a mixed column: float_format skips it
        return pd.DataFrame(rows, columns=["section", "name", "value"]).to_csv(index=False)
    return summary_table(summary)


def _against(entry: dict) -> str:
    points = round(entry["over_target_points"], 1) or 0.0  # no "-0.0"
    return f"{entry['pct']:8.1f} %   ({points:+.1f} points vs target)"


def summary_table(s: dict) -> str:
    out = io.StringIO()
    w = out.write
    mapping = s["precision_mapping"]
    static = not mapping["cases"]  # a trace has options; a static network (run --network) has none
    if static:
        w(f"network   {s['network']}  (static: one batch of {s['n_inputs']:,} inputs, each layer at its own "
          f"precision)\n")
    else:
        w(f"trace     {s['trace']}  ({s['network']}, {s['n_inputs']:,} inputs)\n")
    w(f"hardware  {s['hw']}  [{s['hw_config']}]  model={s['hw_model']}  batch={s['batch']['size']} "
      f"({s['batch']['policy']})\n")
    cases = ", ".join(f"{c['option']}->{'skip' if c['runs_at_bits'] is None else '%d/%d' % tuple(c['runs_at_bits'])}"
                      for c in mapping["cases"])
    w(f"precision bit-serial: {mapping['bit_serial']}; {mapping['rule']}"
      + ("" if static else f"; options run at (w/a bits): {cases}") + "\n")
    w(f"area      {area_line(s.get('area'), s.get('energy_components', {}))}\n")
    w(f"weights   {'resident on chip' if s['weights_resident_on_chip'] else 'fetched from DRAM every batch'}\n")
    coding = s["fmap_compression"]
    if coding["scheme"] != "none":
        w(f"fmaps     {coding['scheme']}-coded on the DRAM link where densities are known "
          f"({coding['layers_with_densities']} of {coding['layers']} layers; the rest move raw)\n")
    w("\n")
    acc = "n/a (trace has no labels)" if s["accuracy"] is None else f"{s['accuracy']:.2f} %"
    w(f"{'accuracy':<38}{acc}\n")
    w(f"{'computation % (paper proxy)':<38}{format_number(s['computation_pct'])}\n")
    w(f"{'bit-op % (MAC-weighted, all layers)':<38}{format_number(s['bitops_pct'])}\n\n")
    reference = s.get("reference")
    against_full = reference is None or all(
        reference["metrics"][m]["value"] == stats["full_precision"] for m, stats in s["metrics"].items())
    ref_head, pct_head = ("full prec.", "% of FP") if against_full else ("reference", "% of ref")
    header = f"{'per input':<12}{'unit':>7}{'mean':>15}{'p50':>15}{'p95':>15}{'p99':>15}{'max':>15}" \
             f"{ref_head:>15}{pct_head:>9}\n"
    w(header)
    w("-" * (len(header) - 1) + "\n")
    for metric, stats in s["metrics"].items():
        if against_full:
            ref, pct = stats["full_precision"], stats["pct_of_full_precision"]
        else:
            ref, pct = reference["metrics"][metric]["value"], reference["metrics"][metric]["pct"]
        cells = format_row([stats[k] for k in ("mean", "p50", "p95", "p99", "max")] + [ref])
        w(f"{metric:<12}{_UNITS[metric]:>7}" + "".join(f"{cell:>15}" for cell in cells)
          + f"{'n/a' if pct is None else f'{pct:.1f}':>9}\n")
    if reference is not None:
        w(f"reference: {reference['description']} ({reference['origin']})\n")
    w(latency_note(s["batch"]))
    w("\nenergy per input: " + energy_breakdown_line(s) + "\n")
    budget = s["budget"]
    if budget["target_pct"] is not None:
        metric = budget.get("target_metric") or "computation"
        rows = dict(budget["against_target"])
        if metric == "computation":
            w(f"\nbudget: trained for {budget['target_pct']:g} % computation\n")
        else:  # a real cost counts the gated blocks only, on the accelerator it names
            quantity, hw_name = metric.split("@", 1)
            w(f"\nbudget: trained for {budget['target_pct']:g} % {quantity} on {hw_name}: the gated blocks' "
              f"{quantity} there as a share of theirs at full precision\n")
            landed = rows.pop(metric, None)
            if landed is not None and landed["pct"] is not None:
                w(f"  {'landed at':<16}{_against(landed)}\n")
            w("  the whole network here, as a share of full precision (not what the budget counts):\n")
        for name, entry in rows.items():
            if entry["pct"] is not None:
                w(f"  {name:<16}{_against(entry)}\n")
    else:
        w("\nbudget: the trace records no target computation percentage\n")
    for name, entry in budget["absolute"].items():
        what = " (the input's batch)" if name == "latency_us" and s["batch"]["size"] > 1 else ""
        w(f"  {name}{what} <= {format_number(entry['budget'])}: {entry['n_over']:,} inputs over "
          f"({entry['share_over_pct']:.2f} %)\n")
    return out.getvalue()


def area_line(area: dict | None, names: dict) -> str:
    """'2.14 mm² at 45 nm (array 0.888, weight buffer 0.767, ...)', what is left out, or why there is none.
    `names`: the report's human names of the buffers (summary's energy_components)."""
    if area is None:
        return "not modelled (the config has no area: section; docs/hardware.md, Area)"
    parts = ", ".join(f"{names.get(name, name)} {format_number(value, 3)}"
                      for name, value in area["components_mm2"].items())
    scaled = f", scaled from {area['scaled_from_nm']:g} nm" if area["scaled_from_nm"] else ""
    missing = f"; not included: {area['not_included']}" if area["not_included"] else ""
    return f"{format_number(area['total_mm2'], 3)} mm² at {area['technology_nm']:g} nm ({parts}{scaled}){missing}"


SIDE_BY_SIDE_METRICS = ("cycles", "latency_us", "energy_uj", "dram_bytes")


def side_by_side_rows(summaries: list[dict]) -> list[tuple[str, str, list]]:
    """(quantity, unit, one value per config) for `dfs-sim run --hw a b c`: each cost's mean per input and
    its % of the config's own full precision, the area, and energy x delay (mean energy x mean latency)."""
    rows = [("model", "", [s["hw_model"] for s in summaries]),
            ("batch", "", [f"{s['batch']['size']} ({s['batch']['policy']})" for s in summaries])]
    for metric in SIDE_BY_SIDE_METRICS:
        rows.append((metric, _UNITS[metric], [s["metrics"][metric]["mean"] for s in summaries]))
        rows.append((f"{metric} % of FP", "%", [s["metrics"][metric]["pct_of_full_precision"] for s in summaries]))
    rows.append(("area", "mm²", [None if s.get("area") is None else s["area"]["total_mm2"] for s in summaries]))
    rows.append(("area complete", "", [None if s.get("area") is None else s["area"]["complete"] for s in summaries]))
    edp = [s["metrics"]["energy_uj"]["mean"] * s["metrics"]["latency_us"]["mean"] for s in summaries]
    rows.append(("energy x delay", "µJ·µs", edp))
    rows.append(("energy x delay % of FP", "%", [s["metrics"]["energy_uj"]["pct_of_full_precision"]
                                                 * s["metrics"]["latency_us"]["pct_of_full_precision"] / 100
                                                 for s in summaries]))
    return rows


def render_side_by_side(summaries: list[dict], fmt: str) -> str:
    """One table, a column per config (the summaries of one trace on several configs)."""
    names = [s["hw"] for s in summaries]
    rows = side_by_side_rows(summaries)
    if fmt == "json":
        return dumps({"trace": summaries[0]["trace"], "configs": names,
                      "rows": [{"quantity": q, "unit": u, "values": v} for q, u, v in rows]}, indent=2) + "\n"
    if fmt == "csv":
        frame = pd.DataFrame([[q, u] + v for q, u, v in rows], columns=["quantity", "unit"] + names)
        return frame.to_csv(index=False, float_format=CSV_FLOAT)
    cells = [[q, u] + (format_row(v) if all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)
                       else [format_number(x) for x in v]) for q, u, v in rows]
    header = ["per input", "unit"] + names
    widths = [max(len(str(r[i])) for r in cells + [header]) for i in range(len(header))]
    lines = [f"trace {summaries[0]['trace']}  ({summaries[0]['network']}, {summaries[0]['n_inputs']:,} inputs, "
             f"accuracy {format_number(summaries[0]['accuracy'])} %)"]
    for i, r in enumerate([header] + cells):
        lines.append("  ".join(str(c).ljust(widths[j]) if j < 2 else str(c).rjust(widths[j]) for j, c in enumerate(r)))
        if i == 0:
            lines.append("-" * len(lines[-1]))
    lines.append("% of FP: of each config's own full precision; area: at each config's node (n/a: no area: "
                 "section); energy x delay: mean energy x mean latency per input.")
    return "\n".join(lines) + "\n"


def summary_html(s: dict) -> str:
    """The summary as a small HTML table (a notebook's view of a SimResult)."""
    from html import escape

    reference = s["reference"]
    accuracy = "n/a" if s["accuracy"] is None else f"{s['accuracy']:.2f} %"
    rows = "".join(
        f"<tr><td>{escape(metric)}</td><td>{escape(_UNITS[metric])}</td>"
        + "".join(f"<td>{escape(cell)}</td>" for cell in format_row(
            [stats[k] for k in ("mean", "p50", "p95", "p99", "max")] + [reference["metrics"][metric]["value"]]))
        + f"<td>{format_number(reference['metrics'][metric]['pct'])}</td></tr>"
        for metric, stats in s["metrics"].items())
    head = "".join(f"<th>{h}</th>" for h in ("per input", "unit", "mean", "p50", "p95", "p99", "max", "reference",
                                             "% of reference"))
    return (f"<div><p><b>{escape(str(s['trace']))}</b> ({escape(s['network'])}, {s['n_inputs']:,} inputs) on "
            f"<b>{escape(s['hw'])}</b>, batch {s['batch']['size']} ({s['batch']['policy']}); accuracy {accuracy}; "
            f"computation (paper proxy) {format_number(s['computation_pct'])} %</p>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
            f"<p>reference: {escape(reference['description'])} ({escape(reference['origin'])})</p></div>")


def latency_note(batch: dict) -> str:
    """What latency_us means at this batch size (docs/report-format.md)."""
    if batch["size"] == 1:
        return "latency_us: the input's own time (batch 1); the other rows are per input.\n"
    shared = ("the batch's cost shared equally by its inputs" if batch["policy"] == "lockstep" else
              "each block's cost shared by the inputs of the batch that ran it at the same option")
    wait = " (the wait to fill a batch is not counted)" if batch["policy"] == "grouped" else ""
    return (f"latency_us: the time the input's whole batch of {batch['size']} takes ({batch['policy']}): every "
            f"input waits for its batch{wait}.\ncycles, energy, traffic: {shared} (throughput, not latency).\n")


def render_frame(frame: pd.DataFrame, fmt: str) -> str:
    if fmt == "json":  # strict JSON: a value that does not apply (NaN) is null
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return dumps(records, indent=1) + "\n"
    if fmt == "csv":
        return frame.to_csv(index=False, float_format=CSV_FLOAT)
    # Every number as format_number writes it: separators, 4 significant digits, no 1.2e+05.
    columns = {name: [format_number(float(v)) for v in frame[name]] if pd.api.types.is_float_dtype(frame[name]) else
               [format_int(v) for v in frame[name]] if pd.api.types.is_integer_dtype(frame[name]) else
               frame[name].tolist() for name in frame.columns}
    text = pd.DataFrame(columns, index=frame.index)
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250):
        return text.to_string(index=False) + "\n"


def render_validation(targets: list[dict], fmt: str) -> str:
    if fmt == "json":
        return dumps(targets, indent=1) + "\n"
    out = io.StringIO()
    by_source: dict[str, list[dict]] = {}
    for t in targets:
        by_source.setdefault(t["source"], []).append(t)
    summary = []
    for source, group in by_source.items():
        if len(group) <= 8:
            summary += group
            continue
        # A long per-layer group: one line, plus every failure.
        passed = sum(t["pass"] for t in group)
        worst = max(group, key=lambda t: abs(t["error_pct"]))
        out.write(f"{source}:\n  {passed}/{len(group)} targets within {group[0]['tolerance_pct']:g} %; "
                  f"largest error {worst['error_pct']:+.3f} % ({worst['target']})\n")
        for t in group:
            if not t["pass"]:
                out.write(f"  FAIL {t['target']}: published {t['published']:g}, ours {t['simulated']:g}\n")
        out.write("\n")
    width = max(len(t["target"]) for t in summary)
    out.write(f"{'target':<{width}}  {'published':>10}  {'ours':>10}  {'error %':>8}  {'tol %':>6}  result\n")
    for t in summary:
        out.write(f"{t['target']:<{width}}  {t['published']:>10.4g}  {t['simulated']:>10.4g}  "
                  f"{t['error_pct']:>+8.2f}  {t['tolerance_pct']:>6g}  {'pass' if t['pass'] else 'FAIL'}\n")
    out.write("\nsources:\n")
    for source in dict.fromkeys(t["source"] for t in summary):
        out.write(f"  {source}\n")
    total = sum(t["pass"] for t in targets)
    out.write(f"\n{total}/{len(targets)} targets pass\n")
    return out.getvalue()
