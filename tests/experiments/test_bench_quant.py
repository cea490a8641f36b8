"""The kernel benchmark's code path on CPU (Triton's interpreter): rows, rates, identity checks."""

import pytest
import torch

pytest.importorskip("triton", reason="triton is not installed: the fused kernels' benchmark cannot run")

from adaqp.experiments import bench_quant as B  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"


def test_grid_rows_carry_rates_and_the_identity_check(tmp_path):
    rows = B.run_grid(device=DEV, widths=(8, 20), rows=(50,), bits=(1, 4), progress=None)
    assert [(r["width"], r["bits"]) for r in rows] == [(8, 1), (8, 4), (20, 1), (20, 4)]
    for r in rows:
        assert r["identical"] is True
        assert r["msg_nbytes"] == r["rows"] * ((r["width"] * r["bits"] + 7) // 8 + 4)
        for k in ("copy_GBps", "fused_q_GBps", "fused_dq_GBps", "eager_q_GBps", "eager_dq_GBps"):
            assert r[k] > 0
        assert r["fused_q_frac"] == pytest.approx(r["fused_q_GBps"] / r["copy_GBps"])
    B.write(rows, tmp_path, {"device": DEV})
    assert (tmp_path / "kernels.csv").read_text().startswith("width,rows,bits")


def test_every_launch_shape_gives_the_same_bytes():
    rows = B.tune(device=DEV, widths=(12,), rows=40, bits=(2, 8), tiles=(16, 64), warps=(4,),
                  groups=(None, 8), progress=None)
    # 2 bits: 2 tiles x 2 groupings; 8 bits: 2 tiles (grouping does not apply). Every grouping of
    # 1, 2 and 4 bits against the torch path: tests/core/test_quant_triton.py
    assert len(rows) == 6 and all(r["identical"] for r in rows)
    assert {r["group_values"] for r in rows if r["bits"] == 2} == {"byte", 8}
