"""Solved plans on a real halo plan: the cost model agrees, budgets hold, the CLI round-trips."""

import dataclasses
import json

import numpy as np
import pytest
from adaqp.costmodel.analytic import ModelShape, estimate
from adaqp.costmodel.bundled import load_cluster
from adaqp.costmodel.profile import load_profile
from adaqp.costmodel.workload import PlanStats
from adaqp.solver.groups import build_groups, level_factor
from adaqp.solver.model import build_model
from adaqp.solver.plan import parse_budget, solve_bitplan

from adaqp.data.spec import load_dataset
from adaqp.halo import build_halo_plan
from adaqp.partition import partition_graph
from adaqp.plans import BitPlan

DATA = "sbm:nodes=600,classes=4,feat=16,deg=6,seed=1"
SHAPE = ModelShape("gcn", (16, 32, 32, 4))


@pytest.fixture(scope="module")
def setup():
    g = load_dataset(DATA)
    halo = build_halo_plan(g, partition_graph(g, 4, "metis", 0, "nodes"))
    cluster = load_cluster("reference-2x4-v100-pcie-100gbe").with_ranks(4)
    return g, halo, PlanStats.from_halo_plan(halo), cluster, load_profile(cluster.profile)


def test_linear_model_is_the_analytic_epoch_time(setup):
    g, halo, stats, cluster, profile = setup
    groups = build_groups(halo, SHAPE.widths[:-1], "gcn", features=g.features, max_groups=60)
    model = build_model(groups, (2, 4, 8), stats, SHAPE, "adaqp", cluster, profile)
    rng = np.random.default_rng(0)
    for choice in (np.full(groups.num_groups, 2), rng.integers(0, 3, groups.num_groups)):
        plan = BitPlan.from_groups(stats.pair_rows, 3, groups.to_groups_spec(np.array([2, 4, 8])[choice]))
        assert model.time(choice) == pytest.approx(estimate(stats, SHAPE, "adaqp", cluster, profile, plan).epoch_time_s,
                                                   rel=1e-12)


def _assert_uniform_widths_are_analytic(model, groups, stats, cluster, profile):
    """At 2 and at 8 bits everywhere, the solver's linear time is the analytic epoch time."""
    for b in (0, 2):
        choice = np.full(groups.num_groups, b)
        plan = BitPlan.from_groups(stats.pair_rows, 3, groups.to_groups_spec(np.array([2, 4, 8])[choice]))
        assert model.time(choice) == pytest.approx(estimate(stats, SHAPE, "adaqp", cluster, profile, plan).epoch_time_s,
                                                   rel=1e-12)


def test_linear_model_is_the_analytic_epoch_time_over_shaped_links(setup):
    from adaqp.cluster import ClusterSpec

    g, halo, stats, _, _ = setup
    cluster = ClusterSpec.emulated(4, 12.5e6)  # 100 Mbit/s hosts, 50 kB token buckets
    assert cluster.network.burst_bytes > 0
    # sync floors looked up by the compute before them are fixed at the 8-bit program's (solver.model):
    # without that table the sum is the analytic time at every width
    profile = dataclasses.replace(load_profile(cluster.profile), sync_by_gap={})
    groups = build_groups(halo, SHAPE.widths[:-1], "gcn", features=g.features, max_groups=60)
    model = build_model(groups, (2, 4, 8), stats, SHAPE, "adaqp", cluster, profile)
    _assert_uniform_widths_are_analytic(model, groups, stats, cluster, profile)  # 2 bits: in the bucket; 8: past it


def test_linear_model_is_the_analytic_epoch_time_over_crowded_links(setup):
    """NICs that carry less with several flows each way (network.bw_crowded): a constant of the
    plan's flows in the solver's terms, as in the analytic model."""
    from adaqp.cluster import ClusterSpec
    from adaqp.costmodel.network import nic_crowding

    g, halo, stats, _, _ = setup
    plain_net = dataclasses.replace(ClusterSpec.emulated(4, 12.5e6).network, burst_bytes=0.0)  # every byte at the rate
    plain_cluster = dataclasses.replace(ClusterSpec.emulated(4, 12.5e6), network=plain_net)
    cluster = dataclasses.replace(plain_cluster, network=dataclasses.replace(plain_net, bw_crowded={2: 10e6, 3: 9e6}))
    assert nic_crowding(cluster, stats.pair_rows).min() < 1.0  # the plan's NICs are crowded
    # no host delay: the transfers, not its floor, set the exchanges
    profile = dataclasses.replace(load_profile(cluster.profile), sync_by_gap={}, sync_s={})
    groups = build_groups(halo, SHAPE.widths[:-1], "gcn", features=g.features, max_groups=60)
    model = build_model(groups, (2, 4, 8), stats, SHAPE, "adaqp", cluster, profile)
    plain = build_model(groups, (2, 4, 8), stats, SHAPE, "adaqp", plain_cluster, profile)
    _assert_uniform_widths_are_analytic(model, groups, stats, cluster, profile)
    eight = np.full(groups.num_groups, 2)
    assert model.time(eight) > plain.time(eight)  # the crowded NICs cost time


def test_linear_model_is_the_analytic_epoch_time_with_a_core_per_rank(setup):
    """2 ranks of one thread on 2 cores: the host delay comes before each transfer
    (network.sync_is_floor), in the solver's terms as in the analytic model."""
    from adaqp.cluster import ClusterSpec
    from adaqp.costmodel.network import sync_is_floor

    g = setup[0]
    halo = build_halo_plan(g, partition_graph(g, 2, "metis", 0, "nodes"))
    stats = PlanStats.from_halo_plan(halo)
    cluster = ClusterSpec.emulated(2, 12.5e6)
    profile = dataclasses.replace(load_profile(cluster.profile), sync_by_gap={})
    assert not sync_is_floor(cluster, profile) and profile.sync(2) > 0
    groups = build_groups(halo, SHAPE.widths[:-1], "gcn", features=g.features, max_groups=60)
    model = build_model(groups, (2, 4, 8), stats, SHAPE, "adaqp", cluster, profile)
    _assert_uniform_widths_are_analytic(model, groups, stats, cluster, profile)


def test_group_variance_is_the_reference_formula(setup):
    g, halo, *_ = setup
    groups = build_groups(halo, SHAPE.widths[:-1], "gcn", features=g.features, max_groups=60)
    rh = halo.ranks[0]
    peer = int(np.flatnonzero(rh.send_counts())[0])
    rows = rh.send_global(peer)
    rng = g.features[rows].max(1) - g.features[rows].min(1)
    score = rh.send_score_gcn[rh.send_ptr[peer]:rh.send_ptr[peer + 1]]
    want = (score ** 2 * 16 * rng ** 2 / (6 * 15 ** 2)).sum()  # F range^2 / (6 (2^4-1)^2) at 4 bits
    mine = groups.channel == groups.channels.index((0, "fwd", 0, peer))
    assert groups.V[mine].sum() * level_factor((4,))[0] == pytest.approx(want)
    assert groups.num_groups <= 60 + len(groups.channels)


def test_solved_plan_meets_its_budget_in_estimate_and_simulator(setup):
    g, halo, stats, cluster, profile = setup
    hi = estimate(stats, SHAPE, "adaqp", cluster, profile, 8).epoch_time_s
    lo = estimate(stats, SHAPE, "adaqp", cluster, profile, 2).epoch_time_s
    budget = lo + 0.5 * (hi - lo)
    res = solve_bitplan(halo, stats, SHAPE, cluster, profile, f"{budget}s", features=g.features, max_groups=80)
    e = estimate(stats, SHAPE, "adaqp", cluster, profile, res.bitplan)
    assert e.epoch_time_s <= budget * (1 + 1e-9)
    assert res.solution.variance <= res.solution.greedy_variance * (1 + 1e-9)
    assert set(np.unique(np.concatenate(list(res.bitplan.bits.values())))) <= {2, 4, 8}
    from adaqp.simulator import simulate

    sim = simulate(stats, SHAPE, "adaqp", cluster, profile, res.bitplan, trace=False)
    assert sim.epoch_time_s <= budget * 1.05  # the simulator models contention the formula folds in


def test_exchange_budget_as_fraction_of_fp32(setup):
    # tiny messages: the coding ops' fixed cost dominates, so the budget exceeds the fp32 exchange time
    g, halo, stats, cluster, profile = setup
    res = solve_bitplan(halo, stats, SHAPE, cluster, profile, "4x", features=g.features, max_groups=80)
    assert res.scope == "exchange" and res.solution.time_s <= res.budget_s * (1 + 1e-9)


def test_one_part_is_a_trivial_plan():
    g = load_dataset(DATA)
    halo = build_halo_plan(g, partition_graph(g, 1, "metis", 0, "nodes"))
    stats = PlanStats.from_halo_plan(halo)
    cluster = load_cluster("local-cpu").with_ranks(1)
    res = solve_bitplan(halo, stats, SHAPE, cluster, load_profile(cluster.profile), "1s", features=g.features)
    assert res.bitplan.total_rows == 0 and res.solution.variance == 0.0


def test_parse_budget():
    assert parse_budget("1.2s").value == 1.2 and parse_budget("800ms").value == pytest.approx(0.8)
    assert parse_budget("0.4x").scope == "exchange"
    with pytest.raises(ValueError, match="expected e.g."):
        parse_budget("fast")


def test_cli_writes_a_loadable_bitplan(tmp_path, monkeypatch, capsys):
    from adaqp.cli import main as cli

    monkeypatch.setitem(cli.COMMANDS, "plan", "adaqp.cli.plan_cmd")
    out = tmp_path / "plan"
    rc = cli.main(["plan", DATA, "--parts", "4", "--cluster", "reference-2x4-v100-pcie-100gbe",
                   "--time-budget", "4x", "--layers", "2", "--hidden", "16", "--out", str(out)])
    assert rc == 0
    summary = json.loads((out / "summary.json").read_text())
    for key in ("predicted_epoch_time_s", "variance", "solve_time_s", "gap", "bits_histogram"):
        assert key in summary
    g = load_dataset(DATA)
    pr = build_halo_plan(g, partition_graph(g, 4, "metis", 0, "nodes")).pair_rows()
    plan = BitPlan.load(out / "bitplan.json").validate(pr, 2)
    assert {k: {str(b): n for b, n in h.items()} for (l, d), h in plan.histogram().items()
            for k in [f"{l}/{d}"]} == summary["bits_histogram"]
    assert "predicted epoch" in capsys.readouterr().out


def test_cli_certify_proves_a_bound_for_the_whole_problem(tmp_path, capsys):
    from adaqp.cli import main as cli

    out = tmp_path / "plan"
    rc = cli.main(["plan", DATA, "--parts", "4", "--cluster", "reference-2x4-v100-pcie-100gbe", "--solver", "highs",
                   "--time-budget", "4x", "--layers", "2", "--hidden", "16", "--max-groups", "200",
                   "--certify", "60", "--out", str(out)])
    assert rc == 0
    s = json.loads((out / "summary.json").read_text())
    assert s["certified_lower_bound"] <= s["variance"] * (1 + 1e-9)
    assert s["certified_gap"] == pytest.approx((s["variance"] - s["certified_lower_bound"]) / s["variance"], abs=1e-12)
    assert not s["certify_complete"] or s["certified_gap"] <= 1e-3 + 1e-12
    assert "certified: no plan within the budget" in capsys.readouterr().out


def test_cli_refuses_a_negative_certify_time(tmp_path, capsys):
    from adaqp.cli import main as cli

    rc = cli.main(["plan", DATA, "--parts", "2", "--cluster", "reference-2x4-v100-pcie-100gbe",
                   "--time-budget", "4x", "--certify", "-1"])
    assert rc == 2 and "--certify must be >= 0" in capsys.readouterr().err


def test_highs_paths_name_the_missing_package(monkeypatch, tmp_path, capsys):
    from adaqp.cli import main as cli
    from adaqp.solver import milp

    monkeypatch.setattr(milp, "has_highspy", lambda: False)
    monkeypatch.setattr("adaqp.solver.plan.has_highspy", lambda: False)
    for extra in (["--solver", "highs"], ["--certify", "5"]):
        rc = cli.main(["plan", DATA, "--parts", "2", "--cluster", "reference-2x4-v100-pcie-100gbe",
                       "--time-budget", "4x", "--layers", "2", "--hidden", "16", "--max-groups", "50", *extra])
        assert rc == 2 and "pip install highspy" in capsys.readouterr().err


@pytest.mark.parametrize("size, gap, shown", [
    ({"formulation": "exact", "gap_full_lp": 0.14}, 0.0, "within the chosen width pattern, 14.000 % against the full LP"),
    ({"formulation": "conservative", "gap_full_lp": 0.2}, 0.01, "within the conservative formulation, 20.000 %"),
    ({"formulation": "exact", "gap_full_lp": 0.0}, 0.0, ""),  # nothing more to say
    ({"formulation": "greedy", "gap_full_lp": 0.3}, 0.3, ""),  # greedy's gap is the full LP's already
])
def test_plan_says_what_its_gap_is_against(size, gap, shown):
    from adaqp.cli.plan_cmd import _gap_note

    note = _gap_note(size, gap)
    assert (shown in note) if shown else note == ""


def test_plan_table_has_every_width_on_every_row():
    from adaqp.cli.plan_cmd import _histogram_rows

    rows = _histogram_rows({(0, "fwd"): {4: 766}, (1, "bwd"): {8: 766}, (2, "fwd"): {2: 3, 4: 5}})
    assert [list(r) for r in rows] == [["layer", "direction", "2 bits", "4 bits", "8 bits"]] * 3
    assert rows[1]["8 bits"] == 766 and rows[1]["4 bits"] == 0


def _coding_as_curves(profile):
    """``profile`` with its quantize/dequantize ops as log-log curves through their measured
    points (whatever kind the fit chose for the bundled profile)."""
    from adaqp.costmodel.fit import feature_matrix, loglog_points

    ops = dict(profile.ops)
    for name in (f"{d}quantize_b{b}" for d in ("", "de") for b in (2, 4, 8)):
        m = ops[name]
        xs, ys = loglog_points(feature_matrix(["elements"], m.points)[:, 0], [p["median_s"] for p in m.points])
        ops[name] = dataclasses.replace(m, features=("elements",), coef=(), kind="loglog",
                                        xs=tuple(map(float, xs)), ys=tuple(map(float, ys)))
    return dataclasses.replace(profile, ops=ops)


def test_a_measured_curve_is_costed_at_the_whole_message(setup):
    """Quantize ops that are measured curves (not lines): at a uniform width the model still
    gives the analytic epoch, because each rank's coding is costed at its whole message."""
    g, halo, stats, _, _ = setup
    # without sync_by_gap: its floors are looked up at the 8-bit program's compute (solver/model.py)
    cluster = load_cluster("local-cpu").with_ranks(4)
    profile = dataclasses.replace(_coding_as_curves(load_profile("cpu-2core")), sync_by_gap={})
    assert all(profile.ops[f"quantize_b{b}"].kind == "loglog" for b in (2, 4, 8))
    groups = build_groups(halo, SHAPE.widths[:-1], "gcn", features=g.features, max_groups=60)
    model = build_model(groups, (2, 4, 8), stats, SHAPE, "adaqp", cluster, profile)
    for j, b in enumerate((2, 4, 8)):
        plan = BitPlan.from_groups(stats.pair_rows, 3, groups.to_groups_spec(np.full(groups.num_groups, b)))
        assert model.time(np.full(groups.num_groups, j)) == pytest.approx(
            estimate(stats, SHAPE, "adaqp", cluster, profile, plan).epoch_time_s, rel=1e-9)
    # with sync_by_gap the floors follow the compute of the 8-bit program: exact at 8 bits
    gapped = _coding_as_curves(load_profile("cpu-2core"))
    assert gapped.sync_by_gap
    model = build_model(groups, (2, 4, 8), stats, SHAPE, "adaqp", cluster, gapped)
    plan = BitPlan.from_groups(stats.pair_rows, 3, groups.to_groups_spec(np.full(groups.num_groups, 8)))
    assert model.time(np.full(groups.num_groups, 2)) == pytest.approx(
        estimate(stats, SHAPE, "adaqp", cluster, gapped, plan).epoch_time_s, rel=1e-9)
