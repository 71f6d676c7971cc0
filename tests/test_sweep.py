"""dfs-sim sweep: the points a spec describes, identical results whatever the workers (a real Dask
LocalCluster, and the process-pool fallback), resuming an interrupted sweep, constraints, bad input."""
import pandas as pd
import pytest
import yaml

from dfs_sim.cli import main
from dfs_sim.engine import simulate
from dfs_sim.errors import InputError
from dfs_sim.hardware.config import load_hw
from dfs_sim.sweep import load_spec, parts_dir, run_sweep
from dfs_sim.trace import load_trace


def _spec(tmp_path, make_trace, **changes):
    make_trace(n=24, name="a.npz")
    make_trace(n=16, seed=1, name="b.npz")
    spec = {"traces": ["a.npz", "b.npz"], "base": "bitfusion_physical",
            "grid": {"array.unroll.K": [16, 32], "dram.bandwidth_bits_per_cycle": {"range": [96, 288, 96]}},
            "random": {"n": 2, "seed": 7, "axes": {"buffers.wbuf.size_kb": {"integers": [32, 128]}}},
            "batch": [1, 4], "constraints": ["area_mm2 <= 2.2", "energy_uj_mean <= 1e9"], "chunk": 5}
    spec.update(changes)
    path = tmp_path / "spec.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def test_spec_expands_grid_ranges_and_seeded_samples(tmp_path, make_trace):
    spec = load_spec(_spec(tmp_path, make_trace))
    assert len(spec.points) == 2 * 3 * 2 * 2
    assert sorted({p.overrides["dram.bandwidth_bits_per_cycle"] for p in spec.points}) == [96, 192, 288]
    sizes = [p.overrides["buffers.wbuf.size_kb"] for p in spec.points]
    assert all(32 <= s <= 128 for s in sizes)
    assert sizes == [p.overrides["buffers.wbuf.size_kb"] for p in load_spec(tmp_path / "spec.yaml").points]
    assert spec.axes == ("array.unroll.K", "dram.bandwidth_bits_per_cycle", "buffers.wbuf.size_kb")


def test_results_are_identical_on_one_and_two_dask_workers_and_on_a_process_pool(tmp_path, make_trace):
    pytest.importorskip("distributed")  # in the test extra; the process pool below needs nothing
    spec = load_spec(_spec(tmp_path, make_trace))
    outputs = []
    for workers, backend, suffix in ((1, "dask", "parquet"), (2, "dask", "parquet"), (2, "processes", "parquet"),
                                     (2, "dask", "csv")):
        out = tmp_path / f"r{workers}{backend}.{suffix}"
        done = run_sweep(spec, out, workers=workers, backend=backend)
        assert done["executor"] == ("dask" if backend == "dask" else "process pool")
        assert not parts_dir(out).exists()
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2]
    table = pd.read_parquet(tmp_path / "r1dask.parquet")
    as_csv = pd.read_csv(tmp_path / "r2dask.csv")  # the same rows, floats at the CSV's precision
    assert list(as_csv.columns) == list(table.columns) and len(as_csv) == len(table)
    pd.testing.assert_series_equal(as_csv["energy_uj_mean"], table["energy_uj_mean"], rtol=1e-9)
    assert len(table) == len(spec.points) * 2 and list(table["point"]) == sorted(table["point"])
    # area-infeasible points (K=32 with a bigger WBUF) are recorded, not run
    infeasible = table[~table["feasible"]]
    assert len(infeasible) and (infeasible["area_mm2"] > 2.2).all() and infeasible["energy_uj_mean"].isna().all()
    assert (table[table["feasible"]]["area_mm2"] <= 2.2).all()
    # a row is what `simulate` says for that derived config
    row = table[table["feasible"]].iloc[-1]
    overrides = {k: row[k].item() for k in spec.axes}
    hw = load_hw("bitfusion_physical", None).replace(overrides)
    summary = simulate(load_trace(row["trace"]), hw, batch=int(row["batch"])).summary
    assert row["energy_uj_mean"] == pytest.approx(summary["metrics"]["energy_uj"]["mean"], rel=1e-10)
    assert row["area_mm2"] == pytest.approx(summary["area"]["total_mm2"], rel=1e-10)
    assert row["hw_digest"] == hw.digest


def test_an_interrupted_sweep_resumes_where_it_stopped(tmp_path, make_trace):
    spec = load_spec(_spec(tmp_path, make_trace))
    whole = tmp_path / "whole.csv"
    run_sweep(spec, whole, workers=1, backend="processes")
    out = tmp_path / "r.csv"

    class Interrupt:  # a progress reporter that stops the sweep after two chunks, like Ctrl-C
        def __init__(self, total, done):
            self.chunks = 0

        def __call__(self, points):
            self.chunks += 1
            if self.chunks == 2:
                raise KeyboardInterrupt

        def close(self):
            pass

    with pytest.raises(KeyboardInterrupt):
        run_sweep(spec, out, workers=1, backend="processes", progress=Interrupt)
    assert not out.exists() and len(list(parts_dir(out).glob("chunk-*.csv"))) >= 2
    done = run_sweep(spec, out, workers=1, backend="processes")
    assert done["chunks_resumed"] >= 2 and done["chunks_run"] < 5 and done["points_resumed"] == 5 * done["chunks_resumed"]
    assert out.read_bytes() == whole.read_bytes()


def test_cli_sweep_writes_the_csv_and_best_points(tmp_path, make_trace, capsys):
    spec = _spec(tmp_path, make_trace, random={}, batch=1, chunk=3)
    out = tmp_path / "cli.csv"
    assert main(["sweep", str(spec), "-o", str(out), "--workers", "1", "--backend", "processes"]) == 0
    captured = capsys.readouterr()
    assert "best energy_uj_mean on a.npz" in captured.out and "rows" in captured.err
    assert "6/6 points" in captured.err  # progress: a line on a non-terminal stderr, at least at the end
    assert len(pd.read_csv(out)) == 6 * 2
    assert main(["sweep", str(spec), "-o", str(tmp_path / "cli.xlsx")]) == 2
    assert "must end in .parquet or .csv" in capsys.readouterr().err


@pytest.mark.parametrize("changes, field, words", [
    ({"colour": 1}, "colour", "unknown key"),
    ({"grid": {"array.unroll.K": [0]}}, "grid.array.unroll.K", "must be an integer"),
    ({"grid": {"array.unroll.Q": [4]}}, "grid.array.unroll.Q", "unknown dimension"),
    ({"grid": {"dram.bandwidth_bits_per_cycle": {"range": [96, 10, 1]}}}, "grid.dram.bandwidth_bits_per_cycle.range",
     "stop >= start"),
    ({"random": {"n": 2, "axes": {"clock_mhz": {"uniform": [100, 200]}}}}, "random.seed", "is required"),
    ({"random": {"n": 2, "seed": 1, "axes": {"clock_mhz": {"normal": [1, 2]}}}}, "random.axes.clock_mhz", "one of"),
    ({"constraints": ["area < lots"]}, "constraints[0]", "NAME OP NUMBER"),
    ({"constraints": ["speed <= 3"]}, "constraints[0]", "unknown quantity"),
    ({"base": "stripes", "random": {}, "grid": {"dram.bandwidth_bits_per_cycle": [64]}}, "constraints",
     "no complete area"),
    ({"traces": ["missing.npz"]}, "traces[0]", "no such trace"),
    ({"base": "no_such_config"}, "base", "no such hardware config"),
    ({"batch": [0]}, "batch[0]", "must be an integer"),
])
def test_bad_specs_are_one_line_naming_the_spec_and_field(tmp_path, make_trace, capsys, changes, field, words):
    spec = _spec(tmp_path, make_trace, **changes)
    with pytest.raises(InputError) as err:
        from dfs_sim.sweep import check_points

        check_points(load_spec(spec))
    assert err.value.source == str(spec) and err.value.field == field and words in err.value.message
    out = tmp_path / "never.csv"
    assert main(["sweep", str(spec), "-o", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.err.count("\n") == 1 and not out.exists() and not parts_dir(out).exists()


def test_unreachable_scheduler_names_the_flag(tmp_path, make_trace, capsys):
    pytest.importorskip("distributed")
    spec = _spec(tmp_path, make_trace, random={}, batch=1)
    assert main(["sweep", str(spec), "-o", str(tmp_path / "x.csv"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--scheduler" in err


def test_pareto_front_and_figure(tmp_path, make_trace):
    from dfs_sim.sweep_plot import pareto_mask, pareto_rows

    import numpy as np

    x, y = np.array([1.0, 2.0, 3.0, 2.0, 1.0]), np.array([3.0, 2.0, 1.0, 3.0, 3.0])
    assert pareto_mask(x, y).tolist() == [True, True, True, False, True]  # ties stay; (2, 3) is dominated
    assert pareto_mask(x, y, np.array([1.0, 1.0, 1.0, 0.5, 2.0])).tolist() == [True, True, True, True, False]
    spec = _spec(tmp_path, make_trace, random={}, batch=1, chunk=3)
    out, fig = tmp_path / "p.csv", tmp_path / "p.png"
    assert main(["sweep", str(spec), "-o", str(out), "--workers", "1", "--backend", "processes",
                 "--plot", str(fig)]) == 0
    assert fig.stat().st_size > 1000
    table = pd.read_csv(out)
    front = pareto_rows(table)
    assert len(front) and front["feasible"].all()
    for _, row in front.iterrows():  # nothing feasible on its trace beats a front point on all three
        same = table[(table["trace"] == row["trace"]) & table["feasible"]]
        assert not ((same["latency_us_mean"] < row["latency_us_mean"]) & (same["energy_uj_mean"] < row["energy_uj_mean"])
                    & (same["area_mm2"] < row["area_mm2"])).any()
    assert main(["sweep", str(spec), "-o", str(tmp_path / "q.csv"), "--plot", str(tmp_path / "p.txt")]) == 2


def test_cache_gives_the_same_rows_and_skips_the_work(tmp_path, make_trace):
    spec = load_spec(_spec(tmp_path, make_trace, random={}, batch=[1, 4], chunk=4))
    cache = tmp_path / "cache"
    cold, warm, fresh, searched = (tmp_path / f"{name}.csv" for name in ("cold", "warm", "fresh", "searched"))
    first = run_sweep(spec, cold, workers=1, backend="processes", cache=cache)
    feasible_rows = int(first["table"]["feasible"].sum())
    assert first["cache_hits"] == 0 and len(list((cache / "points").glob("*.json"))) == feasible_rows
    assert first["entries_searched"] > 0
    damaged = sorted((cache / "points").glob("*.json"))[0]
    damaged.write_text('{"accuracy": 1')  # unreadable: recomputed, not trusted
    second = run_sweep(spec, warm, workers=1, backend="processes", cache=cache)
    assert second["cache_hits"] == feasible_rows - 1
    # Without the whole results, every tiling search is read back from the search cache: nothing is searched.
    for path in (cache / "points").glob("*.json"):
        path.unlink()
    third = run_sweep(spec, searched, workers=1, backend="processes", cache=cache)
    assert third["cache_hits"] == 0 and third["entries_searched"] == 0 and third["entries_reused"] > 0
    run_sweep(spec, fresh, workers=1, backend="processes")
    assert cold.read_bytes() == warm.read_bytes() == fresh.read_bytes() == searched.read_bytes()


def test_search_cache_returns_what_the_search_finds_and_survives_damage(tmp_path, make_trace):
    from dfs_sim.cost import cache

    trace = load_trace(make_trace(n=16, name="s.npz"))
    hw = load_hw("bitfusion_physical")
    plain = simulate(trace, hw, batch=4, policy="bucketed").summary
    try:
        with cache.searching_through(tmp_path / "search"):
            cache.take_counts()
            first = simulate(trace, hw, batch=4, policy="bucketed").summary
            counts = cache.take_counts()
            assert counts["searched"] > 0 and counts["reused"] == 0
            files = list((tmp_path / "search").glob("search-*.npz"))
            assert len(files) == 1
            cache.clear_memory()  # a new process: the file is read back
            again = simulate(trace, hw, batch=4, policy="bucketed").summary
            assert cache.take_counts() == {"searched": 0, "reused": counts["searched"]}
            files[0].write_bytes(b"not an archive")  # damaged: searched afresh and rewritten
            cache.clear_memory()
            damaged = simulate(trace, hw, batch=4, policy="bucketed").summary
            assert cache.take_counts()["searched"] == counts["searched"]
            other = hw.replace({"dram.bandwidth_bits_per_cycle": 96})  # another machine: its own file
            simulate(trace, other, batch=4).summary
            assert len(list((tmp_path / "search").glob("search-*.npz"))) == 2
    finally:
        cache.clear_memory()
    for summary in (first, again, damaged):
        assert summary["metrics"] == plain["metrics"]


def test_accuracy_is_a_pareto_axis_where_traces_differ_in_it():
    from dfs_sim.sweep_plot import pareto_rows

    # Three models on two configs. "cheap" is the least accurate and cheapest; "dear" is as accurate as
    # "good" but costs more on config 0, and config 1 is worse than config 0 for every model.
    table = pd.DataFrame({"point": [0, 0, 0, 1, 1, 1], "trace": ["cheap", "good", "dear"] * 2,
                          "feasible": [True] * 6, "latency_us_mean": [1.0] * 3 + [2.0] * 3,
                          "energy_uj_mean": [1.0, 1.5, 2.0, 1.0, 3.0, 3.0], "area_mm2": [1.0] * 6,
                          "accuracy": [80.0, 90.0, 90.0] * 2})
    front = sorted(zip(*(pareto_rows(table)[c] for c in ("point", "trace"))))
    # The cheap model does not hide the accurate ones; "dear" is beaten by the equally accurate "good".
    assert front == [(0, "cheap"), (0, "good")]
    from dfs_sim.sweep import best_points

    lines = best_points(table.assign(batch=1, policy="lockstep", energy_delay_uj_us=1.0), [])
    assert [line for line in lines if line.startswith("accuracy-energy front")] == [
        "accuracy-energy front: 80.00 % at 1 uJ, cheap at point 0 (the base config, batch 1, lockstep)",
        "accuracy-energy front: 80.00 % at 1 uJ, cheap at point 1 (the base config, batch 1, lockstep)",  # a tie
        "accuracy-energy front: 90.00 % at 1.5 uJ, good at point 0 (the base config, batch 1, lockstep)"]
    # Without labels, or at equal accuracy, accuracy is not an axis: one front per trace.
    per_trace = [(0, "cheap"), (0, "dear"), (0, "good")]
    for other in (table.assign(accuracy=float("nan")), table.assign(accuracy=85.0)):
        assert sorted(zip(*(pareto_rows(other)[c] for c in ("point", "trace")))) == per_trace
    # A point outside an area constraint did not run (no accuracy, no energy): accuracy is still an axis.
    unrun = pd.DataFrame({"point": [2], "trace": ["cheap"], "feasible": [False], "latency_us_mean": [float("nan")],
                          "energy_uj_mean": [float("nan")], "area_mm2": [9.0], "accuracy": [float("nan")]})
    assert sorted(zip(*(pareto_rows(pd.concat([table, unrun]))[c] for c in ("point", "trace")))) == front
