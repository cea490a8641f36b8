"""Stochastic integer quantization, bit packing, mixed-width message buffers, variance helpers."""

from fractions import Fraction

import numpy as np
import pytest
import torch

from adaqp import quant as Q
from adaqp import wire
from adaqp.errors import AdaqpInputError
from adaqp.rng import as_key

WIDTHS = [1, 3, 7, 13, 300, 2000]
ROWS = [0, 1, 3, 17]


def _gen(seed=0, device="cpu"):
    return torch.Generator(device=device).manual_seed(seed)


def _rows(r, f, seed=0):
    """Rows of different scales and offsets, negatives included."""
    g = _gen(seed)
    x = torch.randn(r, f, generator=g)
    scale = 10.0 ** torch.randint(-3, 4, (r, 1), generator=g).float()
    shift = torch.randn(r, 1, generator=g) * 100
    return x * scale + shift


def _lo_step(header):
    return header[:, 0:1].float(), header[:, 1:2].float()


# ---------------------------------------------------------------------------- bf16 rounding

def _all_finite_bf16():
    v = torch.arange(-32768, 32768, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    return v[torch.isfinite(v)]


def test_bf16_next_up_and_down_walk_every_finite_value():
    v = _all_finite_bf16()
    v = v[v != 0]  # the two zeros are checked below
    srt = torch.sort(v.float()).values.to(torch.bfloat16)
    up = Q.bf16_next_up(srt[:-1])
    down = Q.bf16_next_down(srt[1:])
    # between the largest negative and smallest positive subnormal there is zero, handled apart
    neg_to_pos = (srt[:-1] < 0) & (srt[1:] > 0)
    assert torch.equal(up[~neg_to_pos].float(), srt[1:][~neg_to_pos].float())
    assert torch.equal(down[~neg_to_pos].float(), srt[:-1][~neg_to_pos].float())
    tiny = torch.tensor([2.0 ** -133])  # smallest positive bfloat16 subnormal
    for z in (0.0, -0.0):
        zz = torch.tensor([z], dtype=torch.bfloat16)
        assert Q.bf16_next_up(zz).float().item() == tiny.item()
        assert Q.bf16_next_down(zz).float().item() == -tiny.item()
    big = torch.tensor([torch.finfo(torch.bfloat16).max], dtype=torch.bfloat16)
    assert Q.bf16_next_up(big).float().item() == float("inf")
    assert Q.bf16_next_down(-big).float().item() == float("-inf")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_bf16_directed_rounding_is_correct_and_tight(dtype):
    g = _gen(1)
    mag = 10.0 ** (torch.rand(20000, generator=g, dtype=torch.float64) * 76 - 38)  # 1e-38 .. 1e38
    sign = torch.where(torch.rand(20000, generator=g) < 0.5, -1.0, 1.0).double()
    x = torch.cat([mag * sign, torch.tensor([0.0, -0.0, 1.0, -1.0, 2.0 ** -140, -(2.0 ** -140), 3.0e38,
                                              -3.0e38, 1e-45, -1e-45]).double()])
    x = x.to(dtype)
    down, up = Q.bf16_round_down(x), Q.bf16_round_up(x)
    assert down.dtype == up.dtype == torch.bfloat16
    d, u = down.to(dtype), up.to(dtype)
    assert bool((d <= x).all()) and bool((u >= x).all())
    # tight: the next bfloat16 value crosses x
    assert bool((Q.bf16_next_up(down).to(dtype) > x).all())
    assert bool((Q.bf16_next_down(up).to(dtype) < x).all())
    exact = x.to(torch.bfloat16).to(dtype) == x
    assert torch.equal(d[exact], x[exact]) and torch.equal(u[exact], x[exact])
    # beyond bfloat16's range
    over = torch.tensor([3.395e38], dtype=dtype)
    assert Q.bf16_round_up(over).float().item() == float("inf")
    assert Q.bf16_round_down(over).float().item() == torch.finfo(torch.bfloat16).max


def test_row_headers_lo_below_min_and_step_minimal_exactly():
    x = torch.cat([_rows(300, 37, seed=2), torch.tensor([[1e-30] * 36 + [1.0]]),
                   torch.tensor([[-3.0e37] * 36 + [3.0e37]]), torch.full((1, 37), 0.1),
                   torch.full((1, 37), -2.5), torch.zeros(1, 37)])
    mn, mx = x.amin(1).tolist(), x.amax(1).tolist()
    for bits in wire.QUANT_BITS:
        n = 2 ** bits - 1
        h = Q.row_headers(x, bits)
        assert h.dtype == torch.bfloat16 and h.shape == (x.shape[0], 2)
        lo, step = h[:, 0], h[:, 1]
        prev = Q.bf16_next_down(step)
        for i in range(x.shape[0]):
            flo, fst = Fraction(lo[i].item()), Fraction(step[i].item())
            assert flo <= Fraction(mn[i]) < Fraction(Q.bf16_next_up(lo[i:i + 1]).item())
            assert fst >= 0 and flo + n * fst >= Fraction(mx[i])  # (max - lo) / step <= n
            if fst > 0:  # the next smaller bfloat16 step would not cover the row
                assert flo + n * Fraction(max(prev[i].item(), 0.0)) < Fraction(mx[i])
            else:
                assert mn[i] == mx[i] == lo[i].item()


# ---------------------------------------------------------------------------- bit packing

def _ref_pack(q, bits):
    r, f = q.shape
    per, nb = 8 // bits, (f * bits + 7) // 8
    out = np.zeros((r, nb), dtype=np.int64)
    qn = q.numpy().astype(np.int64)
    for j in range(f):
        out[:, j // per] |= qn[:, j] << ((j % per) * bits)
    return torch.from_numpy(out.astype(np.uint8))


@pytest.mark.parametrize("bits", wire.QUANT_BITS)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("rows", ROWS)
def test_pack_unpack_bits_round_trip(bits, width, rows):
    q = torch.randint(0, 2 ** bits, (rows, width), generator=_gen(width * 31 + rows), dtype=torch.uint8)
    p = Q.pack_bits(q, bits)
    assert p.dtype == torch.uint8 and p.shape == (rows, Q.packed_row_nbytes(width, bits))
    assert Q.packed_row_nbytes(width, bits) + wire.HEADER_NBYTES == wire.row_nbytes(width, bits)
    assert torch.equal(Q.unpack_bits(p, bits, width), q)
    if width <= 300:
        assert torch.equal(p, _ref_pack(q, bits))  # little-endian within a byte, zero padding


def test_pack_bits_byte_order_example():
    q = torch.tensor([[1, 0, 3, 2, 1]], dtype=torch.uint8)
    assert Q.pack_bits(q, 2).tolist() == [[0b10110001, 0b00000001]]
    assert Q.pack_bits(torch.tensor([[1, 0, 1]], dtype=torch.uint8), 1).tolist() == [[0b101]]
    assert Q.pack_bits(torch.tensor([[0xA, 0x3, 0xF]], dtype=torch.uint8), 4).tolist() == [[0x3A, 0x0F]]
    every = torch.arange(256, dtype=torch.uint8).reshape(256, 1)
    for bits in (1, 2, 4):
        assert torch.equal(Q.pack_bits(Q.unpack_bits(every, bits, 8 // bits), bits), every)


# ---------------------------------------------------------------------------- quantize

@pytest.mark.parametrize("bits", wire.QUANT_BITS)
@pytest.mark.parametrize("width", [1, 3, 13, 300])
def test_quantize_is_unbiased_with_variance_within_bound(bits, width):
    r0, draws = (3 if width < 300 else 2), 4000
    x = _rows(r0, width, seed=bits * 7 + width)
    xr = x.repeat(draws, 1)  # the headers depend on the row only: one row, many draws
    qp, h = Q.quantize(xr, bits, _gen(bits + width))
    xh = Q.dequantize(qp, h, bits, width).reshape(draws, r0, width).double()
    lo, step = _lo_step(h[:r0])
    step = step.double()
    mean = xh.mean(0)
    tol = 5 * torch.sqrt(step ** 2 / 4 / draws) + 1e-6 * (x.abs().double() + 1)
    assert bool(((mean - x.double()).abs() <= tol).all())
    # the mean error summed over all elements stays within 5 sigma of the sum, too
    total_sd = torch.sqrt((step ** 2 / 4 / draws).sum() * width).item()
    assert abs((mean - x.double()).sum().item()) <= 5 * total_sd + 1e-4
    # two neighbouring levels, p (1 - p) <= 1/4; their float32 values may lie an ulp further apart
    spread = step + 2.0 ** -23 * (x.abs().double() + lo.abs().double() + (2 ** bits - 1) * step)
    var = xh.var(0, unbiased=False)
    assert bool((var <= spread ** 2 / 4).all())


@pytest.mark.parametrize("bits", wire.QUANT_BITS)
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("rows", ROWS)
def test_quantize_stays_on_the_grid_and_within_one_step(bits, width, rows):
    n = 2 ** bits - 1
    x = _rows(rows, width, seed=rows * 13 + width)
    qp, h = Q.quantize(x, bits, _gen(3))
    assert qp.shape == (rows, Q.packed_row_nbytes(width, bits)) and h.shape == (rows, 2)
    q = Q.unpack_bits(qp, bits, width)
    assert bool((q <= n).all())
    xh = Q.dequantize(qp, h, bits, width)
    assert xh.dtype == torch.float32 and xh.shape == (rows, width)
    lo, step = _lo_step(h)
    assert bool((xh >= lo).all()) and bool((xh <= lo + n * step).all())
    slack = 2.0 ** -22 * (x.abs() + lo.abs() + n * step)
    assert bool(((xh - x).abs() <= step + slack).all())


@pytest.mark.parametrize("bits", wire.QUANT_BITS)
@pytest.mark.parametrize("lo,step", [(0.0, 0.5), (-3.0, 0.25), (1024.0, 8.0)])
def test_values_on_the_grid_come_back_exactly(bits, lo, step):
    n = 2 ** bits - 1
    k = torch.randint(0, n + 1, (50, 301), generator=_gen(bits))
    k[:, 0], k[:, 1] = 0, n  # fixes the row's min and max, hence lo and step
    x = lo + k.float() * step
    for seed in range(3):
        qp, h = Q.quantize(x, bits, _gen(seed))
        assert bool((h[:, 0].float() == lo).all()) and bool((h[:, 1].float() == step).all())
        assert torch.equal(Q.unpack_bits(qp, bits, 301), k.to(torch.uint8))
        assert torch.equal(Q.dequantize(qp, h, bits, 301), x)


def test_grid_values_stay_exact_over_many_draws():
    """floor(t + u) in float32 rounds k + u up to k + 1 when u is within 2^-17 of 1 (k >= 128):
    about 15 of these 2M elements would move; floor(t) + [u < frac(t)] never does."""
    k = torch.randint(128, 256, (4096, 512), generator=_gen(11))
    k[:, 0], k[:, 1] = 0, 255
    x = k.float() * 0.5
    qp, h = Q.quantize(x, 8, _gen(12))
    assert torch.equal(Q.dequantize(qp, h, 8, 512), x)


@pytest.mark.parametrize("bits", wire.QUANT_BITS)
def test_constant_rows(bits):
    exact = torch.tensor([0.0, -0.0, -3.0, 0.375, -1024.0, 2.0 ** -20, 5.0])  # bfloat16 values
    width = 13
    x = torch.cat([exact[:, None].expand(-1, width), _rows(2, width)])  # constants among others
    qp, h = Q.quantize(x, bits, _gen(0))
    k = len(exact)
    assert torch.equal(h[:k, 1].float(), torch.zeros(k))
    assert torch.equal(Q.dequantize(qp, h, bits, width)[:k], x[:k])
    # not bfloat16-representable: unbiased, within one bfloat16 ulp
    odd = torch.tensor([0.1, -1e4 - 1, 1 / 3, -7e-5])
    draws = 4000
    xo = odd[:, None].expand(-1, width).repeat(draws, 1)
    qp, h = Q.quantize(xo, bits, _gen(1))
    xh = Q.dequantize(qp, h, bits, width).double()
    ulp = (Q.bf16_next_up(Q.bf16_round_down(odd)).double() - Q.bf16_round_down(odd).double())
    assert bool(((xh - xo.double()).abs() <= ulp.repeat(draws)[:, None]).all())
    mean = xh.reshape(draws, len(odd), width).mean((0, 2))
    assert bool(((mean - odd.double()).abs() <= 5 * ulp / 2 / np.sqrt(draws * width)).all())


def test_variance_matches_the_reference_estimate_on_wide_rows():
    """Fractional positions of Gaussian rows are near-uniform: the row variance approaches
    F step^2 / 6 (the reference's estimate) and stays below the bound F step^2 / 4."""
    width, draws, bits = 2000, 200, 4
    x = torch.randn(2, width, generator=_gen(5))
    qp, h = Q.quantize(x.repeat(draws, 1), bits, _gen(6))
    xh = Q.dequantize(qp, h, bits, width).reshape(draws, 2, width).double()
    row_var = xh.var(0, unbiased=False).sum(1)
    _, step = _lo_step(h[:2])
    rng = (x.amax(1) - x.amin(1)).double()
    ref = torch.as_tensor(Q.variance_reference(rng, width, bits))
    bound = torch.as_tensor(Q.variance_bound(rng, width, bits))
    assert bool(((row_var / ref - 1).abs() < 0.1).all())
    assert bool((row_var <= width * step.double()[:, 0] ** 2 / 4).all())
    assert bool((row_var <= bound * 1.02).all())  # bfloat16 step rounds up by < 2^-7


def test_quantize_input_checks():
    g = _gen(0)
    for bad in (float("nan"), float("inf"), float("-inf"), 3.4e38):
        x = torch.zeros(3, 5)
        x[1, 2] = bad
        with pytest.raises(AdaqpInputError, match="finite"):
            Q.quantize(x, 4, g)
    big = torch.tensor([[-3e38, 3e38]])  # finite, but the range overflows float32
    with pytest.raises(AdaqpInputError, match="finite"):
        Q.quantize(big, 8, g)
    with pytest.raises(AdaqpInputError):
        Q.quantize(torch.zeros(5), 4, g)
    with pytest.raises(AdaqpInputError):
        Q.quantize(torch.zeros(3, 0), 4, g)
    with pytest.raises(AdaqpInputError):
        Q.quantize(torch.zeros(3, 4), 3, g)
    with pytest.raises(AdaqpInputError):
        Q.quantize(torch.zeros(3, 4, dtype=torch.int32), 4, g)
    # other float dtypes are accepted (computed in float32)
    x = _rows(4, 9).to(torch.float16)
    qp, h = Q.quantize(x, 8, g)
    assert bool(((Q.dequantize(qp, h, 8, 9) - x.float()).abs() <= _lo_step(h)[1] * 1.0001).all())


# ---------------------------------------------------------------------------- messages

def _mixed_bits(rows, seed):
    choice = torch.tensor(wire.ALL_BITS, dtype=torch.int8)
    return choice[torch.randint(0, len(choice), (rows,), generator=_gen(seed))]


def _expected_buffer(x, row_bits, seed):
    """The layout spelled out: widths ascending, stable; [data][headers] per group; one key per
    message, each row drawing with its position in the message as its counter."""
    key = as_key(_gen(seed))
    parts = []
    for b in sorted(set(row_bits.tolist())):
        idx = torch.nonzero(row_bits == b)[:, 0]  # ascending: stable
        xg = x[idx]
        if b == 32:
            parts.append(xg.reshape(-1).view(torch.uint8))
        elif b == 16:
            parts.append(xg.to(torch.bfloat16).reshape(-1).view(torch.uint8))
        else:
            qp, h = Q.quantize(xg, b, key, row_ids=idx)
            parts += [qp.reshape(-1), h.reshape(-1).view(torch.uint8)]
    return torch.cat(parts) if parts else torch.empty(0, dtype=torch.uint8)


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("rows", ROWS + [100])
def test_mixed_message_round_trip_and_layout(width, rows):
    x = _rows(rows, width, seed=width + rows)
    rb = _mixed_bits(rows, seed=rows * 3 + width)
    buf = Q.pack_message(x, rb, _gen(7))
    assert buf.dtype == torch.uint8 and buf.dim() == 1
    per_width = sum(wire.message_nbytes(int((rb == b).sum()), width, b) for b in wire.ALL_BITS)
    assert buf.numel() == per_width == Q.message_size(rb, width)
    assert buf.numel() == sum(wire.row_nbytes(width, int(b)) for b in rb)
    assert torch.equal(buf, _expected_buffer(x, rb, 7))
    y = Q.unpack_message(buf, rb, width)
    assert y.dtype == torch.float32 and y.shape == (rows, width)
    m32, m16 = rb == 32, rb == 16
    assert torch.equal(y[m32], x[m32])  # bit-exact
    assert torch.equal(y[m16], x[m16].to(torch.bfloat16).float())
    for b in wire.QUANT_BITS:
        m = rb == b
        if m.any():
            lo, step = _lo_step(Q.row_headers(x[m], b))
            n = 2 ** b - 1
            assert bool((y[m] >= lo).all()) and bool((y[m] <= lo + n * step).all())
            slack = 2.0 ** -22 * (x[m].abs() + lo.abs() + n * step)
            assert bool(((y[m] - x[m]).abs() <= step + slack).all())


def test_message_from_an_unaligned_buffer_and_single_width():
    x = _rows(11, 7, seed=3)
    for rb in (torch.tensor([1, 32, 16, 1, 32, 2, 16, 8, 4, 32, 1], dtype=torch.int8),
               torch.full((11,), 32, dtype=torch.int8), torch.full((11,), 16, dtype=torch.int8),
               torch.full((11,), 1, dtype=torch.int8)):
        buf = Q.pack_message(x, rb, _gen(0))
        big = torch.zeros(buf.numel() + 1, dtype=torch.uint8)
        big[1:] = buf
        assert torch.equal(Q.unpack_message(big[1:], rb, 7), Q.unpack_message(buf, rb, 7))


def test_message_determinism_and_seeds():
    x = _rows(50, 33, seed=9)
    rb = _mixed_bits(50, seed=1)
    a = Q.pack_message(x, rb, _gen(123))
    assert torch.equal(a, Q.pack_message(x, rb, _gen(123)))
    assert not torch.equal(a, Q.pack_message(x, rb, _gen(124)))
    # the int64 / int32 row_bits dtypes give the same buffer
    assert torch.equal(a, Q.pack_message(x, rb.long(), _gen(123)))


def test_empty_message():
    rb = torch.empty(0, dtype=torch.int8)
    buf = Q.pack_message(torch.empty(0, 5), rb, _gen(0))
    assert buf.numel() == 0 and Q.message_size(rb, 5) == 0
    assert Q.unpack_message(buf, rb, 5).shape == (0, 5)


def test_message_input_checks():
    x = torch.zeros(3, 4)
    for bad in ([3, 4, 8], [-1, 4, 8], [64, 4, 8], [0, 1, 2]):
        with pytest.raises(AdaqpInputError, match="bit-width"):
            Q.pack_message(x, torch.tensor(bad), _gen(0))
    with pytest.raises(AdaqpInputError):
        Q.pack_message(x, torch.tensor([4, 4]), _gen(0))
    with pytest.raises(AdaqpInputError):
        Q.pack_message(x, torch.tensor([4.0, 4.0, 4.0]), _gen(0))
    rb = torch.tensor([4, 8, 32])
    buf = Q.pack_message(x, rb, _gen(0))
    with pytest.raises(AdaqpInputError, match="bytes"):
        Q.unpack_message(buf[:-1], rb, 4)
    with pytest.raises(AdaqpInputError, match="bytes"):
        Q.unpack_message(buf, rb, 5)


# ---------------------------------------------------------------------------- variance helpers

def test_variance_helpers():
    assert Q.variance_reference(3.0, 10, 2) == pytest.approx(10 * 9 / (6 * 9))
    assert Q.variance_bound(3.0, 10, 2) == pytest.approx(10 * 1.0 / 4)
    for b in wire.QUANT_BITS:
        n = 2 ** b - 1
        assert Q.variance_bound(2.0, 7, b) == pytest.approx(7 * (2.0 / n) ** 2 / 4)
        assert Q.variance_bound(2.0, 7, b) == pytest.approx(1.5 * Q.variance_reference(2.0, 7, b))
    for b in wire.PASS_BITS:
        assert Q.variance_reference(2.0, 7, b) == 0 and Q.variance_bound(2.0, 7, b) == 0
    rng = np.array([1.0, 2.0, 0.0, 4.0])
    bits = np.array([1, 8, 4, 32])
    v = Q.variance_bound(rng, 5, bits)
    assert isinstance(v, np.ndarray)
    np.testing.assert_allclose(v, [5 / 4, 5 * (2 / 255) ** 2 / 4, 0, 0])
    vt = Q.variance_reference(torch.tensor(rng), 5, torch.tensor(bits))
    np.testing.assert_allclose(vt.numpy(), Q.variance_reference(rng, 5, bits))
    decreasing = [Q.variance_bound(1.0, 256, b) for b in wire.ALL_BITS]
    assert decreasing == sorted(decreasing, reverse=True)
    with pytest.raises(AdaqpInputError):
        Q.variance_bound(1.0, 4, 3)
    with pytest.raises(AdaqpInputError):
        Q.variance_reference(rng, 4, np.array([1, 2, 3, 4]))


# ---------------------------------------------------------------------------- CUDA

@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_the_cpu_contract():
    x = _rows(257, 300, seed=4)
    rb = _mixed_bits(257, seed=2)
    xc, rbc = x.cuda(), rb.cuda()
    buf = Q.pack_message(xc, rbc, _gen(0, "cuda"))
    assert buf.is_cuda and buf.numel() == Q.message_size(rb, 300)
    assert torch.equal(buf, Q.pack_message(xc, rbc, _gen(0, "cuda")))
    y = Q.unpack_message(buf, rbc, 300).cpu()
    assert torch.equal(y[rb == 32], x[rb == 32])
    assert torch.equal(y[rb == 16], x[rb == 16].to(torch.bfloat16).float())
    for b in wire.QUANT_BITS:
        m = rb == b
        lo, step = _lo_step(Q.row_headers(x[m], b))
        assert torch.equal(Q.row_headers(xc[m.cuda()], b).cpu(), Q.row_headers(x[m], b))
        slack = 2.0 ** -22 * (x[m].abs() + lo.abs() + (2 ** b - 1) * step)
        assert bool(((y[m] - x[m]).abs() <= step + slack).all())
    # packing is bit-identical across devices
    q = torch.randint(0, 16, (33, 13), dtype=torch.uint8)
    assert torch.equal(Q.pack_bits(q.cuda(), 4).cpu(), Q.pack_bits(q, 4))


def test_pack_message_into_a_preallocated_buffer_is_identical():
    x = torch.randn(37, 13)
    row_bits = torch.tensor([2, 4, 8, 32, 16] * 7 + [1, 2])
    ref = Q.pack_message(x, row_bits, torch.Generator().manual_seed(3))
    big = torch.full((ref.numel() + 10,), 7, dtype=torch.uint8)
    got = Q.pack_message(x, row_bits, torch.Generator().manual_seed(3), out=big[5:5 + ref.numel()])
    assert torch.equal(got, ref) and torch.equal(big[5:5 + ref.numel()], ref)
    assert (big[:5] == 7).all() and (big[-5:] == 7).all()  # nothing written outside the slice
    with pytest.raises(AdaqpInputError, match="out must be"):
        Q.pack_message(x, row_bits, out=big)


def test_a_message_plan_built_once_gives_the_same_buffers():
    """The exchanger builds (layout, order) once per BitPlan and passes it with every message."""
    x = _rows(40, 9, seed=2)
    for rb in (_mixed_bits(40, seed=4), torch.full((40,), 2, dtype=torch.int8)):
        plan = Q.message_plan(rb, 9)
        buf = Q.pack_message(x, rb, 21, plan=plan)
        assert torch.equal(buf, Q.pack_message(x, rb, 21))
        assert torch.equal(Q.unpack_message(buf, rb, 9, plan=plan), Q.unpack_message(buf, rb, 9))
