"""k ranks sharing one GPU: the profile's per-rank-count Gloo link ("net@k") and sync floors,
their fit from what the shared-GPU benchmark measures, and the simulator's prediction on
``ClusterSpec.shared_gpu`` with such a profile (the path gpu_check uses)."""

import dataclasses

import numpy as np
import pytest
import torch

from adaqp.cluster import ClusterSpec
from adaqp.costmodel.bundled import load_cluster
from adaqp.costmodel.network import exchange_s, host_sync_s, resources
from adaqp.costmodel.profile import HardwareProfile, LinkModel, load_profile
from adaqp.runtime.profiling.gpu import fit_shared
from adaqp.errors import AdaqpInputError

NO_GPU = "needs a CUDA GPU: profiles k ranks sharing it (streams, pinned copies)"


def _points(lat_s, bw_Bps, k):
    """What shared_worker reports: per-peer nbytes, seconds for all (k-1) peers' worth."""
    return [{"nbytes": nb, "median_s": lat_s + nb * (k - 1) / bw_Bps, "p10_s": 0.0, "p90_s": 1.0}
            for nb in (1024, 65_536, 1 << 20, 8 << 20)]


def _measured(k, bw):
    return {"net": _points(1e-4, bw, k), "staged": _points(3e-4, bw * 0.9, k),
            "allreduce": _points(2e-4, 2e9, 2), "sync": {"exchange": 1e-4 * k, "allreduce": 2e-4 * k},
            "interference": [{"rank": r, "ratios": [1.1, 1.2], "alone_s": (2.0, 1, 3), "solo_s": (1.0, 1, 1)}
                             for r in range(k)]}


def test_fit_shared_fits_total_bytes_per_rank():
    links, extra = fit_shared({2: _measured(2, 0.9e9), 4: _measured(4, 1.2e9)}, nprocs=2)
    assert links["net@2"].bw_Bps == pytest.approx(0.9e9, rel=1e-3)
    assert links["net@4"].bw_Bps == pytest.approx(1.2e9, rel=1e-3)  # not 3x that: bytes to all 3 peers
    assert links["net"] is links["net@2"] and links["allreduce"].bw_Bps == pytest.approx(2e9, rel=1e-3)
    assert extra["sync_s"] == {"2": 2e-4, "4": 4e-4} and extra["allreduce_sync_s"]["4"] == 8e-4
    assert extra["staged_exchange"]["4"]["bw_Bps"] == pytest.approx(1.08e9, rel=1e-3)
    assert len(extra["interference"]) == 6 and extra["shared_ranks"] == [2, 4]


def _gpu_profile(**kw) -> HardwareProfile:
    base = load_profile("h200")
    links = {**base.links, "net@2": LinkModel(1e-4, 0.9e9), "net@4": LinkModel(1e-4, 1.2e9)}
    return dataclasses.replace(base, kind="measured", links=links, sync_s={"2": 5e-4, "4": 1e-3}, **kw)


def test_net_at_k_is_a_valid_link_name_and_round_trips(tmp_path):
    p = _gpu_profile()
    p.save(tmp_path / "p.json")
    q = load_profile(tmp_path / "p.json")
    assert q.net_for(4).bw_Bps == 1.2e9 and q.net_for(3) is q.links["net"]
    for bad in ("net@x", "net@1", "wifi"):
        with pytest.raises(AdaqpInputError, match="unknown link"):
            dataclasses.replace(p, links={**p.links, bad: LinkModel(0.0, 1e9)})


def test_shared_gpu_cluster_uses_the_k_rank_link_and_sync_floor():
    p = _gpu_profile()
    for k, bw in ((2, 0.9e9), (4, 1.2e9)):
        c = ClusterSpec.shared_gpu(k, "measured.json")
        assert c == dataclasses.replace(load_cluster(f"h200-shared-{k}"), profile="measured.json")
        assert resources(c, p)["endpoint"].bw_Bps == bw
        assert host_sync_s(c, p) == p.sync_s[str(k)]
    # a tiny exchange costs at least the sync floor; NCCL ranks (a GPU each) have none
    B = np.full((2, 2), 64.0) - np.diag([64.0, 64.0])
    t, where = exchange_s(ClusterSpec.shared_gpu(2), p, B)
    assert where == "host scheduling" and t >= 5e-4
    nccl = ClusterSpec("g", 1, 2, "h200", ClusterSpec.shared_gpu(2).intra_link)
    assert nccl.transport == "nccl" and host_sync_s(nccl, p) == 0.0


def test_simulated_epoch_on_a_shared_gpu_follows_the_measured_links():
    from adaqp.costmodel.program import ModelShape
    from adaqp.simulator import simulate
    from adaqp.simulator.synthetic import synthetic_stats

    shape = ModelShape("gcn", (128, 128, 128, 16))
    times = {}
    for k in (2, 4):
        stats = synthetic_stats(200_000, 4_000_000, k, 0.05)
        c = ClusterSpec.shared_gpu(k)
        slow = dataclasses.replace(_gpu_profile(), links={**_gpu_profile().links, f"net@{k}": LinkModel(1e-4, 0.3e9)})
        times[k] = [simulate(stats, shape, s, c, prof, b, trace=False).epoch_time_s
                    for prof in (_gpu_profile(), slow) for s, b in (("vanilla", 32), ("adaqp", 4))]
        fast_v, fast_a, slow_v, slow_a = times[k]
        assert slow_v > fast_v and fast_a < fast_v  # slower Gloo, slower epoch; 4 bits beat fp32 here


TINY_LINKS = dict(link_bytes=(1024, 65_536), allreduce_bytes=(4096, 65_536), warmup=1, reps=3, budget_s=0.02,
                  interference={"rows": 4000, "nnz": 20_000, "width": 16, "reps": 3, "max_bytes": 1 << 20, "loop": 2})


def test_shared_worker_runs_on_cpu_tensors():
    """The benchmark's code on CPU tensors (staging without streams): the GPU run has no surprises
    left but the CUDA calls themselves."""
    from adaqp.runtime.profiling.profiler import Grid
    from adaqp.runtime.profiling.gpu import measure_shared_gpu

    sync = {"rows": 2000, "nnz": 10_000, "width": 16, "loop": 1, "reps": 5, "allreduce_floats": 1024}
    links, extra = measure_shared_gpu(Grid("tiny", **TINY_LINKS), "cpu", ranks=(2,), sync=sync)
    assert {"net", "net@2", "allreduce"} <= set(links) and links["net@2"].bw_Bps > 0
    assert set(extra["sync_s"]) == {"2"} and extra["sync_s"]["2"] >= 0
    assert len(extra["interference"]) == 2 and extra["staged_exchange"]["2"]["points"]


@pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_GPU)
def test_measure_on_one_gpu_fills_the_shared_tables():
    from adaqp.runtime.profiling.profiler import Grid, measure

    tiny = Grid("tiny", spmm=((1000, 4000, 16), (4000, 40_000, 32)), gemm=((500, 16, 16), (2000, 64, 32)),
                elementwise=((500, 16), (4000, 32)), adam=(1000, 30_000), link_bytes=(1024, 65_536),
                allreduce_bytes=(4096, 65_536), copy_bytes=(4096, 65_536), warmup=1, reps=3, budget_s=0.02,
                interference={"rows": 4000, "nnz": 20_000, "width": 16, "reps": 3, "max_bytes": 1 << 20},
                shared_ranks=(2,))
    p = measure("cuda", nprocs=2, progress=False, grid=tiny)
    assert "net@2" in p.links and "d2h_pinned" in p.links and "2" in p.sync_s and p.corun == 1.0
    assert p.meta["staged_exchange"]["2"]["bw_Bps"] > 0
