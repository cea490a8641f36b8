"""Spec-derived profiles: complete, documented, reproducible, and of sensible magnitude."""

import pytest

from adaqp.cluster import PCIE_LANE_Bps
from adaqp.costmodel import specs
from adaqp.costmodel.profile import BUNDLED_DIR, LINKS, OPS, load_profile
from adaqp.errors import AdaqpInputError

KEYS = ("v100", "a100", "h100", "h200")


@pytest.mark.parametrize("key", KEYS)
def test_bundled_profile_is_complete_and_documented(key):
    p = load_profile(key)
    assert (p.name, p.kind, p.device) == (key, "spec-derived", "cuda")
    assert set(p.ops) == set(OPS) and set(p.links) == set(LINKS)
    for name, op in p.ops.items():
        assert op.kind == "linear" and op.features == OPS[name], name
        assert op.coef[0] > 0 and all(c > 0 for c in op.coef), name  # a launch term and real costs
    g = specs.GPUS[key]
    sources = p.meta["sources"]
    assert any(g.datasheet in s and f"{g.hbm_Bps / 1e9:g} GB/s" in s for s in sources)
    assert any(g.datasheet in s and f"{g.fp32_flops / 1e12:g} TFLOP/s FP32" in s for s in sources)
    assert any("13.6 ms" in s for s in sources)  # the calibration anchor is cited
    assert "calibrated" in p.meta["method"] and "ClusterSpec" in p.meta["method"]
    assert p.meta["assumptions"]["calibrated"]["spmm_fraction_of_hbm"] == pytest.approx(specs.SPMM_FRACTION)


def test_datasheet_figures():
    # Guard against a typo in the table: the figures the module docstrings and YAML headers quote.
    got = {k: (g.hbm_Bps, g.fp32_flops, g.pcie_gen) for k, g in specs.GPUS.items()}
    assert got == {"v100": (900e9, 15.7e12, 3), "a100": (1555e9, 19.5e12, 4),
                   "h100": (3.35e12, 67e12, 5), "h200": (4.8e12, 67e12, 5)}


def test_spmm_on_h200_matches_the_measured_figure():
    # The SpMM fraction is calibrated on this very measurement, so this checks the arithmetic.
    t = load_profile("h200").op("spmm_fwd", nnz=50e6, rows=2e6, width=128)
    assert 13.6e-3 / 2 < t < 13.6e-3 * 2
    assert t == pytest.approx(13.6e-3, rel=1e-9)
    assert 0.2 < specs.SPMM_FRACTION < 0.8  # a plausible achieved fraction of HBM bandwidth


def test_spmm_scales_with_memory_bandwidth():
    sizes = dict(nnz=50e6, rows=2e6, width=128)
    h200 = load_profile("h200").op("spmm_fwd", **sizes) - specs.LAUNCH_S
    for key in ("v100", "a100", "h100"):
        t = load_profile(key).op("spmm_fwd", **sizes) - specs.LAUNCH_S
        assert t == pytest.approx(h200 * 4.8e12 / specs.GPUS[key].hbm_Bps, rel=1e-9)


def test_gemm_on_a100_follows_the_documented_formula():
    rows, k, n = 1e6, 256, 256
    t = load_profile("a100").op("gemm_fwd", rows=rows, in_dim=k, out_dim=n)
    compute = 2 * rows * k * n / (specs.GEMM_FRACTION * 19.5e12)
    io = 4 * rows * (k + n) / (specs.ELEM_FRACTION * 1555e9)
    assert t == pytest.approx(specs.LAUNCH_S + compute + io, rel=1e-9)
    assert compute == pytest.approx(9.6e-3, rel=0.01)  # 131 GFLOP at 13.65 TFLOP/s
    assert 5e-3 < t < 15e-3
    bwd = load_profile("a100").op("gemm_bwd", rows=rows, in_dim=k, out_dim=n)
    assert bwd == pytest.approx(2 * t, rel=1e-9)


def test_quantize_follows_the_eager_rate_and_bits():
    p = load_profile("h200")
    q8 = p.op("quantize_b8", elements=128e6, rows=1e6)
    # 512 MB of fp32 input at the measured ~190 GB/s eager rate dominates
    assert q8 == pytest.approx(4 * 128e6 / 190e9, rel=0.1)
    q2 = p.op("quantize_b2", elements=128e6, rows=1e6)
    assert q2 < q8 < 1.1 * q2  # packing more bits costs a little more, not much
    assert p.op("dequantize_b8", elements=128e6, rows=1e6) < q8  # fewer eager kernels


def test_elementwise_and_links():
    p = load_profile("h200")
    relu = p.op("relu", elements=1e9)
    assert relu == pytest.approx(specs.LAUNCH_S + 8e9 / 4.26e12, rel=1e-9)  # at the measured D2D rate
    assert p.links["d2h_pinned"].bw_Bps == 55e9 and p.links["d2h_pageable"].bw_Bps == pytest.approx(16e9)
    v = load_profile("v100")
    pinned = v.links["h2d_pinned"].bw_Bps
    assert pinned == pytest.approx(16 * PCIE_LANE_Bps[3] * 55e9 / (16 * PCIE_LANE_Bps[5]))
    assert v.links["h2d_pageable"].bw_Bps < pinned
    for key in KEYS:
        links = load_profile(key).links
        assert links["net"].latency_s > 0 and links["allreduce"].latency_s >= links["net"].latency_s


def test_write_bundled_reproduces_the_checked_in_files(tmp_path):
    written = specs.write_bundled(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{k}.json" for k in KEYS)
    for p in written:
        assert p.read_text() == (BUNDLED_DIR / p.name).read_text(), f"{p.name}: rerun python -m adaqp.costmodel.specs"


def test_unknown_device_is_refused():
    with pytest.raises(AdaqpInputError, match="known: v100, a100, h100, h200"):
        specs.spec_profile("tpu")
