"""The physical data-movement rules (mapping.conventions: physical) on every accelerator style."""
import dataclasses
import math

import numpy as np
import pytest
import yaml

from dfs_sim.cost.table import build_cost_table
from dfs_sim.engine import simulate_network
from dfs_sim.hardware.config import load_hw, shipped_configs_dir
from dfs_sim.trace import default_options
from dfs_sim.workload.network import Layer, Network
from dfs_sim.workload.resnet import dfs_resnet

STYLES = ["dadiannao", "stripes", "loom", "loom_2b", "unpu", "bitsystolic_os", "bitsystolic_ws", "eyeriss"]


def conv(c_in, c_out, size, kernel=3, bits=(8, 8), name="conv"):
    return Layer(name, "conv", c_in, c_out, size, size, size, size, kernel=kernel, stride=1, padding=kernel // 2,
                 precision="fixed", w_bits=bits[0], a_bits=bits[1])


def run(hw, *layers, batch=1):
    """Per-layer rows of a static network (the first layer reads the input from DRAM, the last writes there)."""
    if isinstance(hw, str):
        hw = load_hw(hw)
    first = layers[0]
    network = Network("t", tuple(layers), (), (first.c_in, first.h_in, first.w_in))
    return simulate_network(network, hw, batch=batch).per_layer_cases.set_index("layer")


@pytest.mark.parametrize("name", STYLES + ["bitfusion"])
def test_dram_output_bits_grow_with_real_output_channels(name):
    # A 1x1 convolution writes its 14 x 14 x c_out outputs at array.output_bits (it is the network's last layer):
    # the padding of the array to its lanes moves nothing.
    hw = load_hw(name)
    hw = dataclasses.replace(hw, mapping=dataclasses.replace(hw.mapping, conventions="physical"))
    written = {c_out: run(hw, conv(16, c_out, 14, kernel=1)).loc["conv", "dram_outputs_write_bits"]
               for c_out in (16, 32, 128)}
    for c_out, bits in written.items():
        assert bits == 14 * 14 * c_out * hw.array.output_bits
    assert written[128] == 8 * written[16]


def _array(hw, bits):
    from dfs_sim.hardware.accelerators import MODELS
    from dfs_sim.hardware.accelerators.base import KIND_CODES, Work

    model = MODELS[hw.model]
    w, a = model.effective_bits(hw, np.array([bits[0]]), np.array([bits[1]]))
    return model.array_mapping(hw, Work(np.array([KIND_CODES["conv"]]), np.array([1]), np.array([1]), w, a))


def ideal_steps(hw, c_in, c_out, pixels, taps, bits):
    """Array steps with every fold full but the last (blocks of output channels x reduction steps x pixel
    folds), and the steps of one more pixel fold."""
    m = _array(hw, bits)
    u_k, u_c, u_p = int(m.u_k[0]), int(m.u_c[0]), int(m.u_p[0])
    k_blocks, red_steps, pixel_folds = math.ceil(c_out / u_k), taps * math.ceil(c_in / u_c), math.ceil(pixels / u_p)
    return k_blocks * red_steps * pixel_folds, k_blocks * red_steps, u_k * u_c * u_p


@pytest.mark.parametrize("name", STYLES)
@pytest.mark.parametrize("size", [13, 16, 28, 7])
def test_outputs_that_are_not_powers_of_two_cost_their_real_size(name, size):
    # Two layers, so that the measured one is neither unfolded (im2col) nor the network's last.
    hw = load_hw(name)
    bits = (16, 16) if hw.precision.max_bits >= 16 else (8, 8)
    rows = run(hw, conv(16, 16, size, bits=bits, name="first"), conv(16, 16, size, bits=bits),
               conv(16, 16, size, kernel=1, bits=bits, name="last"))
    row = rows.loc["conv"]
    ideal, one_fold, lanes = ideal_steps(hw, 16, 16, size * size, 9, bits)
    steps = row["macs"] / (lanes * row["utilization"])  # array steps of the chosen mapping
    assert ideal <= round(steps) <= ideal + one_fold, (steps, ideal)


def test_thirteen_by_thirteen_costs_less_than_sixteen_by_sixteen():
    # A 13 x 13 output is 169 pixels, not a 16 x 16 tile: ceil(169 / 16) = 11 pixel folds on Loom's 16 window
    # lanes, against 16 for 16 x 16; its DRAM bits are 169/256 of the larger layer's.
    hw = load_hw("loom")
    small = run(hw, conv(16, 16, 13)).loc["conv"]
    large = run(hw, conv(16, 16, 16)).loc["conv"]
    assert small["compute_cycles"] / large["compute_cycles"] == pytest.approx(11 / 16)
    assert small["dram_inputs_read_bits"] == 13 * 13 * 16 * 8 and large["dram_inputs_read_bits"] == 16 * 16 * 16 * 8
    assert small["dram_outputs_write_bits"] / large["dram_outputs_write_bits"] == pytest.approx(169 / 256)


@pytest.mark.parametrize("name", ["loom", "loom_2b"])
def test_loom_cycles_are_proportional_to_both_precisions(name):
    # 64 -> 128 channels, 3x3, 28 x 28: at 16 bits the kernel's weights for a full block of filters (128 on Loom) do not
    # fit the 32 KB half of WBUF (9 x 64 x 128 x 16 bits), so the search splits the kernel's rows instead of
    # idling filter lanes; time stays exactly ideal steps x ceil(pw/k) x ceil(pa/k).
    hw = load_hw(name)
    k = hw.array.params["bits_per_cycle"]
    filter_blocks = math.ceil(128 / hw.array.unroll["K"])
    steps = filter_blocks * (9 * 64 // hw.array.unroll["C"]) * math.ceil(28 * 28 / hw.array.unroll["P"])  # x reduction x pixel folds
    for pw, pa in ((16, 16), (8, 8), (4, 4), (8, 4), (2, 2)):
        rows = run(hw, conv(64, 64, 28, bits=(pw, pa), name="first"), conv(64, 128, 28, bits=(pw, pa)),
                   conv(128, 16, 28, kernel=1, bits=(pw, pa), name="last"))
        row = rows.loc["conv"]
        assert row["compute_cycles"] == steps * math.ceil(pw / k) * math.ceil(pa / k), (pw, pa)
        if (pw, pa) == (16, 16):
            assert row["tile_kernel_rows"] < 3 and row["tile_oc"] == 128 // filter_blocks and row["utilization"] == 1.0


def test_weight_stationary_loads_each_weight_fold_once():
    # Time is SCALE-Sim's with unbounded buffers, folds x (2R + C + T - 2), even where the buffers force tiles:
    # the array keeps a weight fold while every tile that uses it streams past.
    hw = load_hw("bitsystolic_ws")
    # 128 -> 8 channels, 3x3, 14 x 14: the input (14 x 14 x 128 x 8 bits) is over the 16 KB half of IBUF.
    rows = run(hw, conv(16, 128, 14, kernel=1, name="first"), conv(128, 8, 14), conv(8, 16, 14, kernel=1, name="last"))
    row = rows.loc["conv"]
    assert row["loop_order"] != "-"  # tiled
    folds = math.ceil(9 * 128 / 16) * math.ceil(8 / 16)
    assert row["compute_cycles"] == folds * (2 * 16 + 16 + 14 * 14 * 16 - 2)  # T = pixels x 16 cycles per MAC
    assert row["wbuf_read_bits"] == 9 * 128 * 8 * 8  # each weight into the array once
    # 1x1, 16 -> 16 channels, 48 x 48: one weight fold; neither the input nor the partial sums fit, so the
    # layer is tiled in space, and the fold still loads once.
    rows = run(hw, conv(16, 16, 48, kernel=1, name="first"), conv(16, 16, 48, kernel=1),
               conv(16, 16, 48, kernel=1, name="last"))
    row = rows.loc["conv"]
    assert row["tile_oh"] * row["tile_ow"] < 48 * 48
    assert row["compute_cycles"] == 1 * (2 * 16 + 16 + 48 * 48 * 16 - 2)
    assert row["dataflow"] == "weight-stationary"


def test_systolic_configs_account_buffers_by_their_own_dataflow():
    for name, flow in (("bitsystolic_os", "output-stationary"), ("bitsystolic_ws", "weight-stationary")):
        raw = yaml.safe_load((shipped_configs_dir() / f"{name}.yaml").read_text())
        assert raw["mapping"]["dataflow"] == raw["array"]["params"]["dataflow"] == flow
        assert load_hw(name).mapping.dataflow == flow


def test_output_stationary_fc_credits_only_busy_lanes():
    # One input, so a fully-connected layer has one pixel on the 16 pixel rows: each weight is read once, not
    # once per 16 rows; with K = 10 outputs, 10 of 16 columns share each input read, which counts once.
    hw = load_hw("bitsystolic_os")
    fc = Layer("fc", "fc", 256, 10, precision="fixed", w_bits=8, a_bits=8)
    row = run(hw, Layer("first", "fc", 256, 256, precision="fixed", w_bits=8, a_bits=8), fc).loc["fc"]
    assert row["wbuf_read_bits"] == 256 * 10 * 8
    assert row["ibuf_read_bits"] == 256 * 8
    assert row["utilization"] == pytest.approx(10 / (16 * 16))


def test_stripes_ten_logits_write_ten_values():
    # Stripes' 10-way classifier used to write all 4096 filter lanes (65,536 bits); it writes 10 x 16 bits.
    network = dfs_resnet((3, 3, 3), in_channels=1, input_size=28)
    from dfs_sim.engine import simulate
    from dfs_sim.trace import Trace

    trace = Trace("t", network, default_options(), np.full((1, network.n_units), 3, dtype=np.uint8))
    row = simulate(trace, "stripes").per_layer.set_index("layer").loc["fc"]
    assert row["dram_write_bits"] == 10 * 16


def test_partial_sums_leave_at_the_output_width():
    # Loom, 16 -> 128 channels at 16 bits: a full block of filters does not fit with the whole kernel, so the
    # kernel's rows are split and partial sums of the first part go to DRAM at array.output_bits (16) and come
    # back; the finished outputs leave once at their stored width.
    hw = load_hw("loom")
    row = run(hw, conv(16, 16, 28, bits=(16, 16), name="first"), conv(16, 128, 28, bits=(16, 16))).loc["conv"]
    outputs = 28 * 28 * 128 * 16
    assert row["dram_psums_read_bits"] > 0 and row["dram_psums_read_bits"] % outputs == 0
    assert row["dram_outputs_write_bits"] == row["dram_psums_read_bits"] + outputs


def test_output_storage_precision_follows_the_consumer():
    network = dfs_resnet((3, 3, 3), in_channels=1, input_size=28)
    names = [layer.name for layer in network.layers]
    hw = load_hw("stripes")  # activations stored packed at their bits; full precision runs at 16
    table = build_cost_table(network, default_options(), hw, 1)
    out = table.stored_bits[..., 2]  # cases: skip, 8, 16, full, reference
    # Inside a gated block conv1's output is read by conv2 at the same decision's bits.
    assert out[names.index("block2.conv1")].tolist() == [0, 8, 16, 16, 16]
    # A block's output is read across a gate (the next block at any option, the gate at full precision):
    # stored at the widest width its consumer may need.
    assert out[names.index("block2.conv2")].tolist() == [0, 16, 16, 16, 16]
    assert out[names.index("fc")].tolist() == [hw.array.output_bits] * 5  # the network's result
    # A static network: each output at the bits its consumer stores.
    layers = (conv(3, 8, 8, bits=(8, 4), name="a"), conv(8, 8, 8, bits=(8, 2), name="b"), conv(8, 8, 8, name="c"))
    static = Network("s", layers, (), (3, 8, 8))
    table = build_cost_table(static, default_options(), load_hw("loom"), 1)
    assert table.stored_bits[:, 0, 2].tolist() == [2, 8, 16]
    # Bit Fusion's simulator writes every output at 32 bits.
    table = build_cost_table(static, default_options(), load_hw("bitfusion"), 1)
    assert table.stored_bits[:, 0, 2].tolist() == [32, 32, 32]


def test_zero_padding_border_is_not_fetched():
    # 5x5 kernel, padding 2, on a 9 x 9 input: the input read from DRAM is 9 x 9 x 16 x 8 bits, not 13 x 13.
    hw = load_hw("bitsystolic_ws")
    row = run(hw, conv(16, 16, 9, kernel=5)).loc["conv"]
    assert row["dram_inputs_read_bits"] == 9 * 9 * 16 * 8


def test_per_layer_mapping_columns(make_trace, tmp_path):
    from dfs_sim.cli import main
    import pandas as pd

    out = tmp_path / "layers.csv"
    assert main(["run", "--trace", str(make_trace()), "--hw", "loom", "--per-layer", "--format", "csv",
                 "-o", str(out)]) == 0
    frame = pd.read_csv(out)
    for column in ("case", "w_bits", "a_bits", "output_stored_bits", "share_of_inputs", "tile_b", "tile_oh",
                   "tile_ow", "tile_ic", "tile_kernel_rows", "tile_oc", "loop_order", "utilization", "resident",
                   "dataflow", "dram_weights_read_bits", "dram_inputs_read_bits", "dram_psums_read_bits",
                   "dram_outputs_write_bits"):
        assert column in frame.columns, column
    gated = frame[frame.layer == "block2.conv1"]
    options = [option.name for option in default_options()]
    assert gated.case.tolist() == options[1:]  # every option it can run at; a skipped block runs nothing
    assert 0 < gated.share_of_inputs.sum() <= 1
    assert (frame[frame.case == "-"].share_of_inputs == 1).all()
    # The rows add up to the per-layer means and to the summary's per-input means.
    from dfs_sim.engine import simulate

    result = simulate(str(make_trace()), "loom")
    per_layer = result.per_layer.set_index("layer")
    by_layer = frame.groupby("layer")[["energy_uj", "cycles", "dram_write_bits"]].sum()
    assert np.allclose(by_layer.loc[per_layer.index].to_numpy(), per_layer[by_layer.columns].to_numpy())
    assert frame.energy_uj.sum() == pytest.approx(result.summary["metrics"]["energy_uj"]["mean"])
    assert frame.cycles.sum() == pytest.approx(result.summary["metrics"]["cycles"]["mean"])
    assert set(frame.dataflow) <= {"input-stationary", "output-stationary", "weight-stationary"}
    assert (frame.utilization > 0).all() and (frame.utilization <= 1 + 1e-12).all()
