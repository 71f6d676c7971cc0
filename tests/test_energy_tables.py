"""Every shipped energy number follows from its cited table."""
import pytest

from dfs_sim.hardware import energy
from dfs_sim.hardware.config import load_hw


def buffer(hw, name):
    return next(b for b in hw.buffers if b.name == name)


def test_horowitz_derivations():
    assert energy.int_mult_pj(32) == pytest.approx(3.2, rel=0.05)  # quadratic fit hits the published 3.1 pJ
    assert energy.int_mac_pj(16) == pytest.approx(0.9)  # DaDianNao / Eyeriss unit
    assert energy.int_add_pj(16) + 0.1 / 16 == pytest.approx(0.0596, abs=0.0001)  # a Stripes / UNPU lane-cycle
    assert energy.dram_pj_per_bit() == pytest.approx(20.3, abs=0.05)


@pytest.mark.parametrize("name", ["dadiannao", "eyeriss"])
def test_bit_parallel_mac_energy(name):
    hw = load_hw(name)
    units = 1 + 4.04 + 0.12 if name == "eyeriss" else 1  # Eyeriss: a MAC with its RF and inter-PE traffic
    assert hw.compute.energy_pj_per_op == pytest.approx(units * energy.int_mac_pj(16))


@pytest.mark.parametrize("name", ["stripes", "unpu"])
def test_serial_lane_energy(name):
    assert load_hw(name).compute.energy_pj_per_op == pytest.approx(energy.int_add_pj(16) + 0.1 / 16, abs=0.0001)


@pytest.mark.parametrize("name, k", [("loom", 1), ("loom_2b", 2)])
def test_loom_lane_energy(name, k):
    per_bit_product = energy.int_mac_pj(16) / 256
    assert load_hw(name).compute.energy_pj_per_op == pytest.approx(per_bit_product * k * k, rel=0.03)


@pytest.mark.parametrize("name", ["bitfusion", "loom", "loom_2b", "unpu", "bitsystolic_os", "bitsystolic_ws"])
def test_bitfusion_memories_come_from_cacti(name):
    hw = load_hw(name)
    for buf, bank, port in (("wbuf", 128, 0), ("ibuf", 2048, 0), ("obuf", 512, 1)):
        read, write = energy.cacti_pj_per_bit(bank, port)
        assert buffer(hw, buf).read_pj_per_bit == pytest.approx(read, rel=1e-3)
        assert buffer(hw, buf).write_pj_per_bit == pytest.approx(write, rel=1e-3)


def test_bitfusion_core_energy_from_synthesis():
    hw = load_hw("bitfusion")
    assert hw.compute_pj_per_cycle == pytest.approx(energy.pe_array_pj_per_cycle(16, 32, 8, 2))


def test_bitsystolic_pe_from_synthesis():
    hw = load_hw("bitsystolic_os")
    dynamic, leakage = energy.PE_SYNTH_45NM_500MHZ[(1, 1, 2, 2)]
    assert hw.compute.energy_pj_per_op == pytest.approx(dynamic * 1e-9 / 500e6 * 1e12, rel=1e-3)
    assert hw.static_mw == pytest.approx(256 * leakage * 1e-6, rel=1e-3)


@pytest.mark.parametrize("name", ["dadiannao", "stripes"])
def test_edram_energy_from_dadiannao_ratio(name):
    # a 256-bit eDRAM read costs 1/321 of a DRAM access (DaDianNao, Sec. V-A)
    hw = load_hw(name)
    for buf in hw.buffers:
        assert buf.read_pj_per_bit == pytest.approx(256 * energy.dram_pj_per_bit() / 321 / 256, rel=0.01)
