"""Compute models, counted by hand: Stripes against DaDianNao and BitSim, its first-layer mapping, and
Loom's precision scaling. Every expected number is derived in the test from the array's shape."""
from dataclasses import replace

import pytest

from dfs_sim.engine import simulate_network
from dfs_sim.errors import InputError
from dfs_sim.hardware.accelerators.base import fold_stride_into_channels
from dfs_sim.hardware.config import hw_from_dict, load_hw, shipped_configs_dir
from dfs_sim.workload.network import Layer, Network

STRIPES, DADN = load_hw("stripes"), load_hw("dadiannao")


def compute_cycles(layer: Layer, hw, batch: int = 1) -> float:
    """The layer's array cycles for the whole batch, run between two tiny layers so that neither the network
    input nor its output crosses DRAM around it (its exposed loads would steer the tiling)."""
    tiny = dict(kind="fc", c_in=1, c_out=1, precision="fixed", w_bits=16, a_bits=16)
    network = Network("one", (Layer("before", **tiny), layer, Layer("after", **tiny)), (),
                      (layer.c_in, layer.h_in, layer.w_in))
    return float(simulate_network(network, hw, batch=batch).per_layer.iloc[1]["compute_cycles"]) * batch


def fc(c_in, c_out, a_bits, w_bits=16) -> Layer:
    return Layer("fc", "fc", c_in, c_out, precision="fixed", w_bits=w_bits, a_bits=a_bits)


def conv(c_in, c_out, h_out, w_out, a_bits, kernel=3, stride=1, w_bits=16) -> Layer:
    return Layer("conv", "conv", c_in, c_out, (h_out - 1) * stride + kernel, (w_out - 1) * stride + kernel,
                 h_out, w_out, kernel, stride, precision="fixed", w_bits=w_bits, a_bits=a_bits)


# --- Stripes fully-connected layers: DaDianNao's rate at every precision and output count ------------

@pytest.mark.parametrize("c_out", [10, 100, 1000, 4096, 5000])
def test_stripes_fc_runs_at_dadiannao_rate_at_every_precision(c_out):
    # DaDianNao: 256 filters x 16 lanes per cycle, so ceil(c_out/256) * ceil(c_in/16) cycles. Stripes'
    # window columns take filters in turn (DNNsim's FC_MULTIPLEX_COLUMNS): one column of 256 weights starts
    # every cycle and is busy p cycles, so 16 columns keep up for any p <= 16.
    c_in = 512
    expected = -(-c_out // 256) * (c_in // 16)
    assert compute_cycles(fc(c_in, c_out, 16), DADN) == expected
    for a_bits in range(1, 17):
        assert compute_cycles(fc(c_in, c_out, a_bits), STRIPES) == expected, a_bits


def test_stripes_fc_resnet18_classifier_is_not_slower_than_dadiannao():
    # The case: 512 -> 1000 at 16 bits took 512 cycles (ceil(1000/4096) filter blocks at 16 cycles
    # each x 32 reduction steps) against DaDianNao's 4 x 32 = 128.
    assert compute_cycles(fc(512, 1000, 16), STRIPES) == compute_cycles(fc(512, 1000, 16), DADN) == 128


def test_stripes_fc_wider_than_16_bits_is_compute_bound():
    # 24-bit activations: each column is busy 24 cycles, 16 columns start one per cycle: 24/16 per step.
    assert compute_cycles(fc(512, 256, 24), STRIPES) == 32 * 24 / 16


def test_stripes_fc_batch_uses_columns_for_inputs():
    # A batch of 16 at 4 bits: the 16 columns take the 16 inputs sharing each weight (4 cycles per step)
    # instead of 16 steps of one cycle each.
    layer = fc(512, 256, 4)
    assert compute_cycles(layer, STRIPES, batch=16) == 32 * 4
    assert compute_cycles(layer, DADN, batch=16) == 32 * 16


# --- Stripes convolutions against DaDianNao and BitSim -----------------------------------------------

def test_stripes_conv_equals_dadiannao_at_16_bits_and_scales_as_p_over_16():
    layer = conv(64, 256, 16, 16, 16)
    # 1 filter block x 9 taps x 4 channel steps x 256 windows / 16 columns x p cycles.
    assert compute_cycles(layer, DADN) == 9 * 4 * 256
    for p in (1, 4, 7, 9, 16):
        assert compute_cycles(replace(layer, a_bits=p), STRIPES) == 9 * 4 * 16 * p


def bitsim_stripes_cycles(c_in, c_out, h_out, w_out, kernel, p, rows=256, columns=16, lanes=16):
    """BitSim's Stripes (github.com/yc2367/BitSim, sim/sim/stripes.py, _calc_conv2d_tile, calc_cycle): the
    lanes take kernel taps when k*k > c_in, else channels; columns take output columns within one output
    row (tile_ow = ceil(ow/columns), tile_oh = oh); cycles = tiles x serial precision."""
    taps = kernel * kernel
    tile_kernel = -(-taps // lanes) * c_in if taps > c_in else -(-c_in // lanes) * taps
    tiles = tile_kernel * -(-c_out // rows) * -(-w_out // columns) * h_out
    return tiles * p


def test_stripes_speedup_over_16_bits_is_p_over_16_as_in_bitsim():
    # Both tools charge p cycles per array step, so the time at p bits over the time at 16 is p/16 exactly.
    layer = conv(64, 256, 32, 8, 16)
    ours_16 = compute_cycles(layer, STRIPES)
    for p in range(1, 17):
        ours = compute_cycles(replace(layer, a_bits=p), STRIPES)
        assert ours / ours_16 == p / 16
        assert bitsim_stripes_cycles(64, 256, 32, 8, 3, p) / bitsim_stripes_cycles(64, 256, 32, 8, 3, 16) == p / 16


def test_bitsim_groups_windows_within_a_row_up_to_twice_pessimistic():
    # An output 8 wide and 32 high: across rows (DNNsim, and here) 256 windows fill 16 columns 16 times;
    # within a row (BitSim) each row of 8 takes a whole 16-column step, 32 steps: twice the time.
    ours = compute_cycles(conv(64, 256, 32, 8, 9), STRIPES)
    assert ours == 9 * 4 * 16 * 9
    assert bitsim_stripes_cycles(64, 256, 32, 8, 3, 9) == 2 * ours
    # At a width that is a multiple of the columns, the two groupings agree.
    assert bitsim_stripes_cycles(64, 256, 16, 16, 3, 9) == compute_cycles(conv(64, 256, 16, 16, 9), STRIPES)


# --- The first layer ---------------------------------------------------------------------------------

ALEXNET_CONV1 = Layer("conv1", "conv", 3, 96, 227, 227, 55, 55, 11, 4, precision="fixed", w_bits=16, a_bits=9,
                      reads_input=True)


def test_stride_fold_geometry():
    folded = fold_stride_into_channels(ALEXNET_CONV1)
    # 11x11/4 on 3 channels -> 3x3/1 on 48 channels of a 57x57 image; same outputs, same MACs.
    assert (folded.c_in, folded.kernel, folded.stride, folded.h_in, folded.w_in) == (48, 3, 1, 57, 57)
    assert (folded.h_out, folded.w_out, folded.macs) == (55, 55, ALEXNET_CONV1.macs)
    assert folded.weights == 96 * 48 * 9  # the folded kernel's zero taps are stored


def test_stripes_first_layer_mapping_is_a_choice_with_stride_fold_default():
    channels = replace(STRIPES, array=replace(STRIPES.array, params={"first_layer": "channels"}))
    folded = compute_cycles(ALEXNET_CONV1, STRIPES)
    unfolded = compute_cycles(ALEXNET_CONV1, channels)
    # Lane steps per window: 121 taps x ceil(3/16) = 121 on channels; 9 taps x ceil(48/16) = 27 folded.
    assert unfolded / folded == pytest.approx(121 / 27, rel=0.01)
    # A stride-1 stem is left alone.
    vgg_stem = replace(conv(3, 64, 16, 16, 12), reads_input=True)
    assert compute_cycles(vgg_stem, STRIPES) == compute_cycles(vgg_stem, channels)


def test_first_layer_mapping_is_checked():
    import yaml

    data = yaml.safe_load((shipped_configs_dir() / "stripes.yaml").read_text())
    data["array"]["params"] = {"first_layer": "sideways"}
    with pytest.raises(InputError, match="array.params.first_layer"):
        hw_from_dict(data, "stripes.yaml")


# --- Loom: conv time proportional to ceil(Pw/k) ceil(Pa/k), FC time to ceil(Pw/k) ---------------------
# Loom borrows Bit Fusion's 64 KB weight buffer, in which 16-bit tiles do not fit whole: the tiling search
# then splits the array's blocks (dfs_sim/cost). These tests check the compute model's arithmetic, so they
# give the array buffers that hold any tile.

def roomy(name):
    hw = load_hw(name)
    return replace(hw, buffers=tuple(replace(b, size_bits=b.size_bits * 4096) for b in hw.buffers),
                   mapping=replace(hw.mapping, weights_on_chip="always", activations_on_chip="always"))


@pytest.mark.parametrize("name,k", [("loom", 1), ("loom_2b", 2)])
def test_loom_fc_scales_with_weight_bits_only(name, k):
    hw = roomy(name)
    columns = hw.array.unroll["P"]
    assert k * columns == 16  # the window columns hold a 16-bit activation's bits
    # One step: all filter rows x 16 lanes; 512 inputs -> 32 steps per filter block.
    blocks = -(-256 // hw.array.unroll["K"])
    for w_bits in (1, 2, 3, 5, 8, 11, 16):
        for a_bits in (1, 4, 8, 9, 16):
            assert compute_cycles(fc(512, 256, a_bits, w_bits), hw) == blocks * 32 * -(-w_bits // k), (w_bits, a_bits)


@pytest.mark.parametrize("name,k", [("loom", 1), ("loom_2b", 2)])
def test_loom_conv_scales_with_both_precisions(name, k):
    hw = roomy(name)
    u_k, u_p = hw.array.unroll["K"], hw.array.unroll["P"]
    layer = conv(64, 128, 16, 16, 16, w_bits=16)
    steps = -(-128 // u_k) * 9 * 4 * (256 // u_p)
    for w_bits, a_bits in ((16, 16), (8, 8), (5, 7), (1, 16), (3, 2)):
        expected = steps * -(-w_bits // k) * -(-a_bits // k)
        assert compute_cycles(replace(layer, w_bits=w_bits, a_bits=a_bits), hw) == expected
    # At 16 x 16 bits both match 128 16-bit MACs per cycle.
    assert layer.macs / compute_cycles(layer, hw) == 128
