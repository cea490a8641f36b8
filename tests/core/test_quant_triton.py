"""The fused Triton kernels give the eager torch path's buffers byte for byte.

Without a GPU the kernels run in Triton's interpreter (tests/conftest.py sets TRITON_INTERPRET),
which executes the same kernel code with numpy semantics; the CUDA test at the end compares the
compiled kernels with the CPU torch path where a GPU is present."""

import pytest
import torch

from adaqp import quant as Q
from adaqp import wire
from adaqp.rng import KeyStream

quant_triton = pytest.importorskip("adaqp.quant_triton")
if not quant_triton.available():  # pragma: no cover - triton is in the dev extras
    pytest.skip("triton is not installed (pip install triton): fused kernels untested", allow_module_level=True)

CUDA = torch.cuda.is_available()
DEV = "cuda" if CUDA else "cpu"


def _rows(r, f, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(r, f, generator=g) * 10.0 ** torch.randint(-4, 5, (r, 1), generator=g).float()
    return x + torch.randn(r, 1, generator=g) * 100


def _special_rows(f):
    """Rows that exercise the header's exact arithmetic: constants (bfloat16 and not), negative
    zero, values on a quantization grid, a huge range, subnormal-sized values."""
    grid = torch.arange(f).float() % 4 * 0.25 - 3.0
    rows = [torch.zeros(f), torch.full((f,), -0.0), torch.full((f,), 0.1), torch.full((f,), -1e4 - 1),
            grid, torch.linspace(-3e37, 3e37, f), torch.linspace(-1e-39, 2e-39, f),
            torch.full((f,), 5.0)]
    return torch.stack(rows)


def _both(x, rb, key, index=None):
    a = Q.pack_message(x, rb, key, index=index, backend="torch")
    b = Q.pack_message(x.to(DEV), rb.to(DEV), key, index=None if index is None else index.to(DEV),
                       backend="triton")
    return a, b.cpu()


@pytest.mark.parametrize("width", [1, 3, 8, 13, 64, 100])
@pytest.mark.parametrize("rows", [0, 1, 7, 40])
@pytest.mark.parametrize("key", [0, 1, 0x89ABCDEF])
def test_mixed_messages_are_byte_identical(width, rows, key):
    x = _rows(rows, width, seed=width * 100 + rows)
    rb = torch.tensor(wire.ALL_BITS, dtype=torch.int64)[torch.arange(rows) * 7 % len(wire.ALL_BITS)]
    a, b = _both(x, rb, key)
    assert torch.equal(a, b)
    ya = Q.unpack_message(a, rb, width, backend="torch")
    yb = Q.unpack_message(a.to(DEV), rb.to(DEV), width, backend="triton").cpu()
    assert torch.equal(ya, yb)


@pytest.mark.parametrize("bits", wire.QUANT_BITS)
@pytest.mark.parametrize("width", [1, 5, 16, 33])
def test_special_rows_are_byte_identical(bits, width):
    x = _special_rows(width)
    rb = torch.full((x.shape[0],), bits)
    a, b = _both(x, rb, 77)
    assert torch.equal(a, b)
    assert torch.equal(Q.unpack_message(a.to(DEV), rb.to(DEV), width, backend="triton").cpu(),
                       Q.unpack_message(a, rb, width, backend="torch"))


def test_gathered_rows_and_a_key_stream():
    """The exchanger passes the inner rows and a send index; the kernel gathers them itself."""
    x = _rows(50, 24, seed=3)
    index = torch.tensor([49, 0, 7, 7, 13, 22, 31, 2])
    rb = torch.tensor([2, 4, 8, 1, 2, 32, 16, 4])
    ks_a, ks_b = KeyStream(5), KeyStream(5)
    for _ in range(3):  # successive messages draw successive keys
        a = Q.pack_message(x, rb, ks_a, index=index, backend="torch")
        b = Q.pack_message(x.to(DEV), rb.to(DEV), ks_b, index=index.to(DEV), backend="triton").cpu()
        assert torch.equal(a, b)
    assert torch.equal(a, Q.pack_message(x[index], rb, _third_key(5), backend="torch"))


def _third_key(seed):
    ks = KeyStream(seed)
    ks.next_key(), ks.next_key()
    return ks.next_key()


@pytest.mark.parametrize("bits", wire.QUANT_BITS)
def test_wide_rows_are_byte_identical(bits):
    """Any feature width: a row wider than one tile's default (4096 values) still fits one program."""
    x = _rows(3, 5000, seed=bits)
    rb = torch.full((3,), bits)
    a, b = _both(x, rb, 5)
    assert torch.equal(a, b)
    assert torch.equal(Q.unpack_message(a.to(DEV), rb.to(DEV), 5000, backend="triton").cpu(),
                       Q.unpack_message(a, rb, 5000, backend="torch"))


@pytest.mark.parametrize("bits", [1, 2, 4])
@pytest.mark.parametrize("width", [3, 13, 64])
def test_packing_more_values_per_thread_writes_the_same_bytes(bits, width):
    """The layout knob `bench_quant --tune` explores changes no byte."""
    x = _rows(9, width, seed=width).to(DEV)
    ids = torch.arange(9, device=DEV)
    nb = (width * bits + 7) // 8
    ref = torch.empty(9 * (nb + 4), dtype=torch.uint8, device=DEV)
    quant_triton.quantize_pack(x, ids, ids, bits, 5, ref)
    for group in (8, 16, 32):
        if group * bits <= 32 and group <= quant_triton.tile(width)[1]:
            buf = torch.full_like(ref, 0xA5)
            quant_triton.quantize_pack(x, ids, ids, bits, 5, buf, group_values=group)
            assert torch.equal(buf, ref), group


def test_preallocated_out_and_header_check():
    x = _rows(9, 10, seed=1)
    rb = torch.full((9,), 4)
    size = Q.message_size(rb, 10)
    big = torch.full((size + 6,), 7, dtype=torch.uint8, device=DEV)
    Q.pack_message(x.to(DEV), rb.to(DEV), 3, out=big[3:3 + size], backend="triton")
    assert torch.equal(big[3:3 + size].cpu(), Q.pack_message(x, rb, 3, backend="torch"))
    assert bool((big[:3] == 7).all()) and bool((big[-3:] == 7).all())
    bad = x.clone()
    bad[4, 2] = float("nan")
    from adaqp.errors import AdaqpInputError

    with pytest.raises(AdaqpInputError, match="finite"):
        Q.pack_message(bad.to(DEV), rb.to(DEV), 3, backend="triton")


def test_backend_choice():
    assert not Q.use_fused(torch.device("cpu"))  # auto: CPU tensors take the torch path
    assert Q.use_fused(torch.device("cpu"), "triton") and not Q.use_fused(torch.device("cpu"), "torch")
    from adaqp.errors import AdaqpInputError

    with pytest.raises(AdaqpInputError, match="backend"):
        Q.use_fused(torch.device("cpu"), "cuda")


@pytest.mark.skipif(not CUDA, reason="needs a CUDA GPU: compiled Triton kernels vs the CPU torch path")
def test_cuda_auto_backend_is_fused_and_matches_cpu():
    assert Q.use_fused(torch.device("cuda"))
    x = _rows(3000, 257, seed=9)
    rb = torch.tensor(wire.ALL_BITS)[torch.randint(0, 6, (3000,), generator=torch.Generator().manual_seed(1))]
    a = Q.pack_message(x, rb, 11, backend="torch")
    b = Q.pack_message(x.cuda(), rb.cuda(), 11)  # auto
    assert torch.equal(a, b.cpu())
    assert torch.equal(Q.unpack_message(b, rb.cuda(), 257).cpu(), Q.unpack_message(a, rb, 257))
