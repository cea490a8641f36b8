"""The node time floor: never above a plan's time, and exact when a node holds one plan."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from adaqp.solver.timefloor import TimeFloor

_here = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("_patterns_tests", _here / "test_solver_patterns.py")
_pt = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_pt)
_spec = importlib.util.spec_from_file_location("_compact_tests", _here / "test_solver_compact.py")
_ct = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_ct)


@pytest.fixture(scope="module", params=["small-0", "small-1", "small-2", "small-3", "eight-ranks"])
def instance(request):
    if request.param == "eight-ranks":
        return _ct._multi_channel()
    return _pt._model(int(request.param.split("-")[1]))


def test_never_exceeds_a_plans_time(instance):
    """With the plan's own indicators fixed on, or with every indicator still free (its
    constants then come from the blocks), over random sets of allowed widths."""
    model, _ = instance
    floor, rng = TimeFloor(model), np.random.default_rng(0)
    G, nb = model.groups.num_groups, len(model.bits_set)
    for _ in range(20):
        choice = rng.integers(0, nb, G)
        allowed = rng.random((G, nb)) < 0.5
        allowed[np.arange(G), choice] = True
        for y_lo in (model.z(choice)[model.nx:], np.zeros(len(model.ysets))):
            assert floor.seconds(allowed, y_lo) <= model.time(choice) * (1 + 1e-12)
    assert floor.seconds(np.zeros((G, nb), bool), np.zeros(len(model.ysets))) == np.inf


def test_is_the_plans_time_when_the_node_holds_one_plan(instance):
    """One allowed width per group: every row's least value is its value, and the free coding
    constants of the widths used are charged (without them this fell short by those constants)."""
    model, _ = instance
    floor, rng = TimeFloor(model), np.random.default_rng(1)
    G, nb = model.groups.num_groups, len(model.bits_set)
    assert any(np.asarray(t.A[:, model.nx:].sum()) > 0 for t in model.terms if t.const.size)  # constants exist
    for _ in range(5):
        choice = rng.integers(0, nb, G)
        allowed = np.zeros((G, nb), bool)
        allowed[np.arange(G), choice] = True
        assert floor.seconds(allowed, np.zeros(len(model.ysets))) == pytest.approx(model.time(choice), rel=1e-12)


def test_a_child_from_its_parent_equals_a_fresh_floor(instance):
    """The search asks for a child's floor with its parent's allowed widths: only the groups that
    lost a width are recomputed, and the floor is the one computed from scratch."""
    model, _ = instance
    G, nb = model.groups.num_groups, len(model.bits_set)
    rng = np.random.default_rng(2)
    incremental = TimeFloor(model)
    ny = len(model.ysets)
    for _ in range(10):
        parent = np.ones((G, nb), bool)
        parent[rng.random((G, nb)) < 0.2] = False
        parent[np.arange(G), rng.integers(0, nb, G)] = True
        y_lo = (rng.random(ny) < 0.3).astype(float)
        incremental.seconds(parent, y_lo)  # the parent's floor is asked for first, as in the search
        for _ in range(3):
            child = parent.copy()
            lost = rng.random((G, nb)) < 0.1
            child[lost] = False
            child[np.arange(G), np.argmax(parent, axis=1)] = True  # every group keeps a width
            got = incremental.seconds(child, y_lo, parent)
            assert got == pytest.approx(TimeFloor(model).seconds(child, y_lo), rel=1e-12, abs=0)
            # a parent the child is not inside (a width regained) is computed from scratch
            wider = child.copy()
            wider[rng.integers(0, G), :] = True
            assert incremental.seconds(wider, y_lo, child) == \
                pytest.approx(TimeFloor(model).seconds(wider, y_lo), rel=1e-12, abs=0)
