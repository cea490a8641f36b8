"""CBC, the MILP solver bundled with PuLP, run on an MPS file written straight from a problem's arrays.

Why not through PuLP's model objects: on the 10,000-group benchmark (30,177 columns, 10,452
rows) building PuLP's expressions took 0.33 s and its MPS writer 0.5 s of a 1.2 s solve; this
file is written from the sparse matrix in a tenth of that. CBC gets the options PuLP gives it
(time limit, relative gap, wall-clock time, every row and column in the solution file) and its
output goes to ``log`` as with PuLP's ``logPath`` (``milp._cbc_bound`` reads its bound there).

Status words follow the solution file's first line: ``Optimal``, ``Infeasible``, ``Unbounded``,
``Stopped with a plan`` (a limit hit after a plan was found: its values are returned) or
``Not Solved``.
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from adaqp.errors import AdaqpInputError


@functools.cache
def cbc_path() -> str:
    """The CBC executable PuLP ships."""
    import pulp

    with warnings.catch_warnings():  # PuLP 3.x deprecates the name PuLP 2.x needs
        warnings.simplefilter("ignore", DeprecationWarning)
        cmd = pulp.PULP_CBC_CMD(msg=False)
    if not cmd.available():
        raise AdaqpInputError(f"PuLP's bundled CBC cannot run here ({cmd.path}): use --solver highs "
                              "(pip install highspy) or --solver greedy")
    return cmd.path


def _num(v: float) -> str:
    return f"{float(v): .12e}"  # as PuLP writes them: CBC reads the field to its end


def write_mps(path: Path, c, A_ub, b_ub, A_eq, b_eq, lb, ub, integer) -> None:
    """``min c x`` subject to ``A_ub x <= b_ub``, ``A_eq x = b_eq``, ``lb <= x <= ub``; columns
    ``C<j>``, rows ``R<i>`` (inequalities first), integers between INTORG/INTEND markers."""
    n = len(c)
    A = sp.vstack([sp.csr_matrix(A_ub, shape=(A_ub.shape[0], n)), sp.csr_matrix(A_eq, shape=(A_eq.shape[0], n))]).tocsc()
    A.sum_duplicates()
    m_ub = A_ub.shape[0]
    if max(n, A.shape[0]) >= 10**7:
        raise ValueError("an MPS name holds 8 characters: at most 9,999,999 rows and columns")
    out = ["NAME          ADAQP", "ROWS", " N  OBJ"]  # fixed format: names in columns 5-12 and 15-22
    out += [f" L  R{i}" for i in range(m_ub)] + [f" E  R{m_ub + i}" for i in range(A.shape[0] - m_ub)]
    out.append("COLUMNS")
    cname = [f"{'C' + str(j):<8}" for j in range(n)]  # each name once: 300k lines on the benchmark
    rname = [f"{'R' + str(i):<8}  " for i in range(A.shape[0])]
    in_int, mark = False, 0
    for j, (cj, a, e) in enumerate(zip(np.asarray(c, float).tolist(), A.indptr[:-1].tolist(), A.indptr[1:].tolist())):
        if bool(integer[j]) != in_int:
            out.append(f"    {'M' + str(mark):<8}  'MARKER'                 '{'INTORG' if not in_int else 'INTEND'}'")
            in_int, mark = not in_int, mark + 1
        head = f"    {cname[j]}  "
        out.append(f"{head}OBJ       {cj: .12e}")
        out += [f"{head}{rname[i]}{v: .12e}" for i, v in zip(A.indices[a:e].tolist(), A.data[a:e].tolist())]
    if in_int:
        out.append(f"    {'M' + str(mark):<8}  'MARKER'                 'INTEND'")
    out.append("RHS")
    rhs = np.r_[np.asarray(b_ub, float), np.asarray(b_eq, float)]
    out += [f"    RHS       {rname[i]}{_num(v)}" for i, v in enumerate(rhs.tolist()) if v != 0.0]
    out.append("BOUNDS")
    for j, (lo, hi) in enumerate(zip(np.asarray(lb, float).tolist(), np.asarray(ub, float).tolist())):
        col = cname[j]
        if lo == hi:
            out.append(f" FX BND       {col}  {_num(lo)}")
            continue
        out.append(f" MI BND       {col}" if lo == -np.inf else f" LO BND       {col}  {_num(lo)}")
        out.append(f" PL BND       {col}" if hi == np.inf else f" UP BND       {col}  {_num(hi)}")
    out.append("ENDATA")
    path.write_text("\n".join(out) + "\n")


def read_solution(path: Path, n: int) -> tuple[np.ndarray, str]:
    """Column values (nan where the file has none) and the status word."""
    values = np.full(n, np.nan)
    if not path.exists():
        return values, "Not Solved"
    lines = path.read_text().splitlines()
    head = lines[0].split() if lines else []
    for line in lines[1:]:
        f = line.split()
        if f and f[0] == "**":  # marks a row or column outside its bounds
            f = f[1:]
        if len(f) >= 3 and f[1].startswith("C") and f[1][1:].isdigit():
            values[int(f[1][1:])] = float(f[2])
    return values, _status(head)


def _status(head: list) -> str:
    word = head[0] if head else ""
    if word == "Optimal":
        return "Optimal"
    if word in ("Infeasible", "Integer"):
        return "Infeasible"
    if word == "Unbounded":
        return "Unbounded"
    if word == "Stopped" and "objective" in head:
        return "Stopped with a plan"
    return "Not Solved"


def solve_mps(c, A_ub, b_ub, A_eq, b_eq, lb, ub, integer, time_limit: float, gap: float, log: Path):
    """``(values, status, offset)`` of the MILP by CBC (module doc); CBC's output is written to
    ``log``. Columns with ``lb == ub`` (the width pattern's fixed indicators and forbidden widths:
    18,195 of 30,177 on the 10,000-group benchmark) are moved into the right-hand sides before the
    file is written; ``offset`` is their share of the objective, which CBC's log leaves out."""
    c, lb, ub = np.asarray(c, float), np.asarray(lb, float), np.asarray(ub, float)
    fixed = lb == ub
    keep = np.flatnonzero(~fixed)
    xf = np.where(fixed, lb, 0.0)
    A_ub, A_eq = sp.csr_matrix(A_ub), sp.csr_matrix(A_eq)
    b_ub, b_eq = np.asarray(b_ub, float) - A_ub @ xf, np.asarray(b_eq, float) - A_eq @ xf
    with tempfile.TemporaryDirectory(prefix="adaqp-cbc-") as tmp:
        mps, sol = Path(tmp) / "model.mps", Path(tmp) / "model.sol"
        write_mps(mps, c[keep], A_ub[:, keep], b_ub, A_eq[:, keep], b_eq, lb[keep], ub[keep],
                  np.asarray(integer, bool)[keep])
        args = [cbc_path(), str(mps), "-sec", f"{time_limit:g}", "-ratio", f"{gap:g}", "-timeMode", "elapsed",
                "-solve", "-printingOptions", "all", "-solution", str(sol)]
        with open(log, "w") as out:
            done = subprocess.run(args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                  check=False)
        if done.returncode != 0:
            raise RuntimeError(f"CBC exited with status {done.returncode} (its output: {log})")
        part, status = read_solution(sol, keep.size)
    values = xf.copy()
    values[keep] = part
    return values, status, float(c @ xf)
