"""Render a summary or a per-layer frame as a table, JSON or CSV."""
from __future__ import annotations

import io

import pandas as pd

from dfs_sim.jsonio import dumps

FORMATS = ("table", "json", "csv")
_UNITS = {"cycles": "cycles", "latency_us": "µs", "energy_uj": "µJ", "dram_bytes": "B", "sram_bytes": "B"}


def _num(value, digits=4) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        if abs(value) >= 1e5:
            return f"{value:,.0f}"
        return f"{value:.{digits}g}"
    return str(value)


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
    for part, value in summary["energy_breakdown_uj"].items():
        rows.append(("energy_breakdown_uj", part, value))
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
        frame = pd.DataFrame(summary_rows(summary), columns=["section", "name", "value"])
        return frame.to_csv(index=False)
    return summary_table(summary)


def summary_table(s: dict) -> str:
    out = io.StringIO()
    w = out.write
    w(f"trace     {s['trace']}  ({s['network']}, {s['n_inputs']:,} inputs)\n")
    w(f"hardware  {s['hw']}  [{s['hw_config']}]  model={s['hw_model']}  batch={s['batch']['size']} "
      f"({s['batch']['policy']})\n")
    mapping = s["precision_mapping"]
    cases = ", ".join(f"{c['option']}->{'skip' if c['runs_at_bits'] is None else '%d/%d' % tuple(c['runs_at_bits'])}"
                      for c in mapping["cases"])
    w(f"precision bit-serial: {mapping['bit_serial']}; {mapping['rule']}; options run at (w/a bits): {cases}\n")
    w(f"weights   {'resident on chip' if s['weights_resident_on_chip'] else 'fetched from DRAM every batch'}\n")
    coding = s["fmap_compression"]
    if coding["scheme"] != "none":
        w(f"fmaps     {coding['scheme']}-coded on the DRAM link where densities are known "
          f"({coding['layers_with_densities']} of {coding['layers']} layers; the rest move raw)\n")
    w("\n")
    acc = "n/a (trace has no labels)" if s["accuracy"] is None else f"{s['accuracy']:.2f} %"
    w(f"accuracy                          {acc}\n")
    w(f"computation % (paper's proxy)     {_num(s['computation_pct'])}\n")
    w(f"bit-op % (MAC-weighted, all layers) {_num(s['bitops_pct'])}\n\n")
    header = f"{'per input':<12}{'unit':>7}{'mean':>14}{'p50':>14}{'p95':>14}{'p99':>14}{'max':>14}" \
             f"{'full prec.':>14}{'% of FP':>9}\n"
    w(header)
    w("-" * (len(header) - 1) + "\n")
    for metric, stats in s["metrics"].items():
        pct = stats["pct_of_full_precision"]
        w(f"{metric:<12}{_UNITS[metric]:>7}" + "".join(f"{_num(stats[k]):>14}" for k in
                                                      ("mean", "p50", "p95", "p99", "max", "full_precision"))
          + f"{'n/a' if pct is None else f'{pct:.1f}':>9}\n")
    w("\nenergy per input (µJ): " + ", ".join(f"{k} {_num(v)}" for k, v in s["energy_breakdown_uj"].items()) + "\n")
    budget = s["budget"]
    if budget["target_pct"] is not None:
        w(f"\nbudget: trained for {budget['target_pct']:g} % computation\n")
        for name, entry in budget["against_target"].items():
            if entry["pct"] is None:
                continue
            sign = "+" if entry["over_target_points"] >= 0 else ""
            w(f"  {name:<16}{entry['pct']:8.1f} %   ({sign}{entry['over_target_points']:.1f} points vs target)\n")
    else:
        w("\nbudget: the trace records no target computation percentage\n")
    for name, entry in budget["absolute"].items():
        w(f"  {name} <= {entry['budget']:g}: {entry['n_over']:,} inputs over "
          f"({entry['share_over_pct']:.2f} %)\n")
    return out.getvalue()


def render_frame(frame: pd.DataFrame, fmt: str) -> str:
    if fmt == "json":  # strict JSON: a value that does not apply (NaN) is null
        records = frame.astype(object).where(frame.notna(), None).to_dict(orient="records")
        return dumps(records, indent=1) + "\n"
    if fmt == "csv":
        return frame.to_csv(index=False)
    with pd.option_context("display.max_rows", None, "display.max_columns", None, "display.width", 250,
                           "display.float_format", lambda v: f"{v:.4g}"):
        return frame.to_string(index=False) + "\n"


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
