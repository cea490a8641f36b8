"""CBC through an MPS file written from arrays: known optima, infeasibility, every bound kind."""

import itertools

import numpy as np
import pytest
import scipy.sparse as sp
from adaqp.solver.cbc import read_solution, solve_mps


def _solve(tmp_path, c, A_ub, b_ub, A_eq, b_eq, lb, ub, integer):
    A_ub, A_eq = sp.csr_matrix(np.atleast_2d(A_ub)), sp.csr_matrix(np.atleast_2d(A_eq))
    values, status, _ = solve_mps(np.asarray(c, float), A_ub, np.asarray(b_ub, float), A_eq,
                                  np.asarray(b_eq, float), np.asarray(lb, float), np.asarray(ub, float),
                                  np.asarray(integer, bool), 30, 0.0, tmp_path / "cbc.log")
    return values, status


@pytest.mark.parametrize("seed", range(4))
def test_a_small_knapsack_with_a_continuous_column_matches_enumeration(tmp_path, seed):
    """max value of binaries under a weight row, plus a continuous column tied by an equality
    (s = total weight, 0 <= s <= cap): the optimum by enumeration."""
    rng = np.random.default_rng(seed)
    n = 6
    value, weight = rng.integers(1, 20, n), rng.integers(1, 9, n)
    cap = int(weight.sum() // 2)
    c = np.r_[-value, 0.0]
    A_eq = np.r_[weight, -1.0][None, :]
    x, status = _solve(tmp_path, c, np.zeros((0, n + 1)), [], A_eq, [0.0], np.zeros(n + 1),
                       np.r_[np.ones(n), cap], np.r_[np.ones(n, bool), False])
    best = max(int(value @ np.array(p)) for p in itertools.product((0, 1), repeat=n) if weight @ np.array(p) <= cap)
    assert status == "Optimal"
    assert float(value @ np.round(x[:n])) == best
    assert x[n] == pytest.approx(float(weight @ np.round(x[:n])))


def test_infeasible_is_said(tmp_path):
    """x + y <= 1 with x, y >= 1 (integer)."""
    _, status = _solve(tmp_path, [1.0, 1.0], [[1.0, 1.0]], [1.0], np.zeros((0, 2)), [], [1.0, 1.0], [5.0, 5.0],
                       [True, True])
    assert status == "Infeasible"


def test_free_fixed_and_lower_bounded_columns(tmp_path):
    """min x - y + z with x free but x >= -3.5 by a row, y fixed at 2, z in [1.5, inf):
    -3.5 - 2 + 1.5 (MI, FX, LO and PL bounds all written)."""
    x, status = _solve(tmp_path, [1.0, -1.0, 1.0], [[-1.0, 0.0, 0.0]], [3.5], np.zeros((0, 3)), [],
                       [-np.inf, 2.0, 1.5], [np.inf, 2.0, np.inf], [False, False, False])
    assert status == "Optimal"
    assert x == pytest.approx([-3.5, 2.0, 1.5])


def test_fixed_columns_move_into_the_right_hand_sides(tmp_path):
    """min 3x + 2y + z, x fixed at 2 (not written), x + y + z >= 4 -> y = 0, z = 2 (cheaper than y);
    the values come back whole and the offset is the fixed column's objective (6)."""
    from adaqp.solver.milp import _cbc_bound

    log = tmp_path / "cbc.log"
    x, status, offset = solve_mps(np.array([3.0, 2.0, 1.0]), sp.csr_matrix([[-1.0, -1.0, -1.0]]), np.array([-4.0]),
                                  sp.csr_matrix((0, 3)), np.zeros(0), np.array([2.0, 0.0, 0.0]),
                                  np.array([2.0, 5.0, 5.0]), np.array([False, True, True]), 30, 0.0, log)
    assert status == "Optimal" and offset == 6.0
    assert x == pytest.approx([2.0, 0.0, 2.0])
    assert _cbc_bound(log.read_text(), 0.0, offset) == pytest.approx(8.0)  # the whole objective


def test_solution_file_words_and_marked_lines(tmp_path):
    f = tmp_path / "s.sol"
    f.write_text("Stopped on time - objective value 12.5\n      0 R0   1   0\n**    1 C1   2.5   0\n      2 C0   1   0\n")
    values, status = read_solution(f, 3)
    assert status == "Stopped with a plan"
    assert values[0] == 1.0 and values[1] == 2.5 and np.isnan(values[2])
    f.write_text("Stopped on time\n")
    assert read_solution(f, 1)[1] == "Not Solved"
    assert read_solution(tmp_path / "missing.sol", 2)[1] == "Not Solved"


def test_a_cbc_that_cannot_run_is_one_clear_error(monkeypatch):
    import pulp
    from adaqp.solver import cbc

    from adaqp.errors import AdaqpInputError

    cbc.cbc_path.cache_clear()
    monkeypatch.setattr(pulp.PULP_CBC_CMD, "available", lambda self: False)
    try:
        with pytest.raises(AdaqpInputError, match="--solver highs"):
            cbc.cbc_path()
    finally:
        cbc.cbc_path.cache_clear()


@pytest.mark.parametrize("rhs, status", [(5.0, "Optimal"), (-1.0, "Infeasible")])
def test_every_column_fixed_leaves_cbc_an_empty_model(tmp_path, rhs, status):
    """A pattern that fixes every width (one allowed per group): CBC gets no column and still
    answers, from the moved right-hand side."""
    x, got, offset = solve_mps(np.array([1.0, 2.0]), sp.csr_matrix([[1.0, 1.0]]), np.array([rhs]),
                               sp.csr_matrix((0, 2)), np.zeros(0), np.ones(2), np.ones(2), np.ones(2, bool), 30, 0.0,
                               tmp_path / "cbc.log")
    assert got == status and offset == 3.0 and list(x) == [1.0, 1.0]
