"""GPU profiles derived from the measured H200 profile: complete, documented, reproducible, and
scaled op by op by the datasheet ratios they state."""

import dataclasses
from pathlib import Path

import pytest

from adaqp.cluster import PCIE_LANE_Bps
from adaqp.costmodel import specs
from adaqp.costmodel.profile import BUNDLED_DIR, LINKS, OPS, OpModel, load_profile
from adaqp.errors import AdaqpInputError

KEYS = ("v100", "a100", "h100", "h200")
REF = load_profile("h200-measured")
H200_HBM, H200_FP32 = 4.8e12, 67e12


def _launch(op):
    return REF.ops[op].coef[0]


@pytest.mark.parametrize("key", KEYS)
def test_bundled_profile_is_complete_and_documented(key):
    p = load_profile(key)
    assert (p.name, p.kind, p.device) == (key, "spec-derived", "cuda")
    assert set(p.ops) == set(OPS) and set(p.links) == set(LINKS)
    for name, op in p.ops.items():  # linear (the solver needs it); the measured sizes carry over
        m = REF.ops[name]
        assert op.kind == "linear" and op.features == OPS[name], name
        assert all(c >= 0 for c in op.coef) and op.coef[0] == specs.linearise(name, m).coef[0], name  # launch kept
        assert [{k: v for k, v in q.items() if not k.endswith("_s")} for q in op.points] == \
               [{k: v for k, v in q.items() if not k.endswith("_s")} for q in m.points], name
    g = specs.GPUS[key]
    sources = p.meta["sources"]
    assert any(g.datasheet in s and f"{g.hbm_Bps / 1e9:g} GB/s" in s for s in sources)
    assert any(g.datasheet in s and f"{g.fp32_flops / 1e12:g} TFLOP/s FP32" in s for s in sources)
    assert any("h200-measured" in s and REF.meta["date"] in s for s in sources)
    d = p.meta["derived_from"]
    assert (d["profile"], d["date"], d["device_name"]) == ("h200-measured", REF.meta["date"], "NVIDIA H200")
    r = p.meta["ratios"]
    assert r["memory_bound"]["time_x"] == pytest.approx(H200_HBM / g.hbm_Bps)
    assert r["gemm_flops"]["time_x"] == pytest.approx(H200_FP32 / g.fp32_flops)
    assert r["launch"]["time_x"] == 1.0
    assert "quantize_b2" in r["memory_bound"]["ops"] and r["gemm_flops"]["ops"] == ["gemm_fwd", "gemm_bwd"]
    assert "launch" in p.meta["method"] and "ClusterSpec" in p.meta["method"]
    assert p.meta["memory"] == g.memory


def test_datasheet_figures():
    # Guard against a typo in the table: the figures the profiles' meta and YAML headers quote.
    got = {k: (g.hbm_Bps, g.fp32_flops, g.pcie_gen) for k, g in specs.GPUS.items()}
    assert got == {"v100": (900e9, 15.7e12, 3), "a100": (1555e9, 19.5e12, 4),
                   "h100": (3.35e12, 67e12, 5), "h200": (4.8e12, 67e12, 5)}


def test_h200_is_the_measurement_itself():
    p = load_profile("h200")
    # ratio 1: every coefficient and point as measured; a non-linear op as the line over its points
    assert p.ops == {op: specs.linearise(op, m) for op, m in REF.ops.items()}
    assert {op for op, m in REF.ops.items() if p.ops[op] != m} == set(p.meta["linearised"]) == {"dequantize_b8"}
    for name in ("net", "allreduce", "h2d_pinned", "d2h_pinned", "h2d_pageable", "d2h_pageable"):
        assert (p.links[name].latency_s, p.links[name].bw_Bps) == (REF.links[name].latency_s, REF.links[name].bw_Bps)
    assert "h200-measured" in p.meta["note"]


@pytest.mark.parametrize("key", ("v100", "a100", "h100"))
@pytest.mark.parametrize("bits", (2, 4))
def test_quantize_scales_by_the_bandwidth_ratio_launch_kept(key, bits):
    p = load_profile(key)
    ratio = H200_HBM / specs.GPUS[key].hbm_Bps
    sizes = dict(rows=200_000, elements=200_000 * 128)
    for op in (f"quantize_b{bits}", f"dequantize_b{bits}"):
        launch = _launch(op)
        t, t_h200 = p.op(op, **sizes), REF.op(op, **sizes)
        assert t_h200 > launch  # the fused kernel's size term was measured
        assert t == pytest.approx(launch + (t_h200 - launch) * ratio, rel=1e-12)
        assert p.ops[op].coef[0] == launch
    # the measured 2-bit quantize at 200k x 128 (25.6M elements): its size term scaled, not its launch
    pt = next(q for q in p.ops[f"quantize_b{bits}"].points if q["elements"] == 25_600_000)
    m = next(q for q in REF.ops[f"quantize_b{bits}"].points if q["elements"] == 25_600_000)
    assert pt["median_s"] == pytest.approx(m["median_s"] + (m["median_s"] - _launch(f"quantize_b{bits}")) * (ratio - 1))
    assert pt["p90_s"] / pt["median_s"] == pytest.approx(m["p90_s"] / m["median_s"])


def test_quantize_is_at_the_fused_kernels_rate():
    # 2-bit quantize of 10^6 x 256 fp32 rows on the H200 (experiments/results/h200-2026-11-26/
    # kernels.csv): eager PyTorch 11.2 ms, fused kernel 0.59 ms. The profiles charge the fused
    # kernel's rate (plus the op's measured constant), on the H100 too.
    for key in ("h200", "h100"):
        t = load_profile(key).op("quantize_b2", rows=1e6, elements=256e6)
        assert 0.59e-3 < t < 11.2e-3 / 5


@pytest.mark.parametrize("key", ("v100", "a100", "h100"))
def test_gemm_scales_by_the_flops_ratio(key):
    g = specs.GPUS[key]
    p = load_profile(key)
    f_flops, f_hbm = H200_FP32 / g.fp32_flops, H200_HBM / g.hbm_Bps
    for op in ("gemm_fwd", "gemm_bwd"):
        c0, c_flops, c_io = REF.ops[op].coef
        assert p.ops[op].coef == pytest.approx((c0, c_flops * f_flops, c_io * f_hbm), rel=1e-12)
    # a compute-heavy GEMM: its time above launch follows the FLOP/s ratio (its I/O term is small)
    sizes = dict(rows=1e6, in_dim=1024, out_dim=1024)
    launch = _launch("gemm_fwd")
    scaled = (p.op("gemm_fwd", **sizes) - launch) / (REF.op("gemm_fwd", **sizes) - launch)
    assert scaled == pytest.approx(f_flops, rel=0.05)


@pytest.mark.parametrize("key", ("v100", "a100", "h100"))
def test_memory_bound_ops_scale_by_the_hbm_ratio(key):
    p = load_profile(key)
    ratio = H200_HBM / specs.GPUS[key].hbm_Bps
    cases = {"spmm_fwd": dict(nnz=50e6, rows=2e6, width=128), "spmm_bwd": dict(nnz=50e6, rows=2e6, width=128),
             "relu": dict(elements=1e9), "copy": dict(elements=1e8), "layernorm": dict(elements=1e8)}
    for op, sizes in cases.items():
        launch = _launch(op)
        assert p.op(op, **sizes) == pytest.approx(launch + (REF.op(op, **sizes) - launch) * ratio, rel=1e-12), op
    # dequantize_b8 is a log-log interpolation in the measurement: the derived op is the line over
    # its measured points, scaled like every other memory-bound op
    assert REF.ops["dequantize_b8"].kind == "loglog" and "dequantize_b8" in p.meta["linearised"]
    line = specs.linearise("dequantize_b8", REF.ops["dequantize_b8"])
    assert p.ops["dequantize_b8"].coef == pytest.approx((line.coef[0], line.coef[1] * ratio, line.coef[2] * ratio))


def test_derive_op_handles_every_model_kind():
    r = specs.time_ratios(specs.GPUS["v100"])
    pts = tuple({"rows": n, "width": 64, "elements": 64 * n, "median_s": 1e-5 + 64 * n * 1e-12,
                 "p10_s": 0.9e-5 + 64 * n * 1e-12, "p90_s": 2e-5 + 64 * n * 1e-12} for n in (1e3, 1e4, 1e5, 1e6))
    near = OpModel(("elements",), (1e-12,), kind="nearest", points=pts)
    loglog = OpModel(("elements",), (), kind="loglog", xs=tuple(p["elements"] for p in pts),
                     ys=tuple(p["median_s"] for p in pts), points=pts)
    for m in (near, loglog):
        d = specs.derive_op("relu", m, r)
        assert d.kind == m.kind and len(d.points) == len(m.points)
        small, big = dict(elements=64e3, rows=1e3, width=64), dict(elements=64e6, rows=1e6, width=64)
        # launch-bound sizes barely move; above the launch, a large size scales by the HBM ratio
        assert d.seconds(**small) / m.seconds(**small) < 1.1
        t = m.seconds(**big)  # a measured size: 10 us launch + 64 us of traffic
        assert d.seconds(**big) == pytest.approx(1e-5 + (t - 1e-5) * r["hbm"], rel=0.01)
        assert specs.derive_op("relu", m, specs.time_ratios(specs.GPUS["h200"])) == m
    # a point below the op's constant is kept as measured (no negative or shrunk times)
    lin = OpModel(("1", "elements"), (1e-4, 1e-12), points=({"elements": 1e3, "median_s": 5e-5},))
    assert specs.derive_op("relu", lin, r).points[0]["median_s"] == 5e-5


def test_links():
    v, h = load_profile("v100"), load_profile("h100")
    for d in ("h2d", "d2h"):
        pinned = REF.links[f"{d}_pinned"]
        assert h.links[f"{d}_pinned"].bw_Bps == pinned.bw_Bps  # Gen5, as the H200 host
        vp = v.links[f"{d}_pinned"]
        assert vp.bw_Bps == pytest.approx(pinned.bw_Bps * PCIE_LANE_Bps[3] / PCIE_LANE_Bps[5])
        assert vp.latency_s == pinned.latency_s
        assert v.links[f"{d}_pageable"].bw_Bps < vp.bw_Bps
    for key in KEYS:
        links = load_profile(key).links
        assert links["net"].bw_Bps == REF.links["net"].bw_Bps  # Gloo on the host: as measured
        assert links["net"].latency_s > 0 and links["allreduce"].latency_s >= links["net"].latency_s


def test_write_bundled_reproduces_the_checked_in_files(tmp_path):
    written = specs.write_bundled(tmp_path)
    assert sorted(p.name for p in written) == sorted(f"{k}.json" for k in KEYS)
    for p in written:
        assert p.read_text() == (BUNDLED_DIR / p.name).read_text(), f"{p.name}: rerun python -m adaqp.costmodel.specs"


def test_a_changed_measurement_changes_the_derived_profile():
    ref = dataclasses.replace(REF, ops={**REF.ops, "relu": dataclasses.replace(
        REF.ops["relu"], coef=(REF.ops["relu"].coef[0], 2 * REF.ops["relu"].coef[1]))})
    a = specs.spec_profile("a100", ref)
    assert a.ops["relu"].coef[1] == pytest.approx(2 * load_profile("a100").ops["relu"].coef[1])


def test_no_bundled_file_cites_a_document_the_project_lacks():
    clusters = Path(specs.__file__).with_name("clusters")
    files = [*(BUNDLED_DIR / f"{k}.json" for k in KEYS), *clusters.glob("*.yaml"), Path(specs.__file__)]
    assert len(files) > 6
    for f in files:
        assert "DESIGN.md" not in f.read_text(), f


def test_unknown_device_is_refused():
    with pytest.raises(AdaqpInputError, match="known: v100, a100, h100, h200"):
        specs.spec_profile("tpu")
