"""The allocator settings every adaqp process applies (runtime.hostmem)."""

import subprocess
import sys

import pytest

from adaqp.runtime import hostmem

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt")


def _in_child(code: str, **env) -> str:
    import os

    full = {k: v for k, v in os.environ.items() if k not in hostmem.USER_VARS} | env
    return subprocess.run([sys.executable, "-c", code], env=full, capture_output=True, text=True,
                          check=True).stdout.strip()


def test_applied_once_and_recorded():
    code = ("from adaqp.runtime import hostmem; a = hostmem.state(); b = hostmem.keep_freed_pages(); "
            "print(a, b, hostmem.keep_freed_pages(), hostmem.state(), sep='|')")
    assert _in_child(code).split("|") == ["glibc defaults", "kept", "kept", "kept"]


def test_the_users_environment_wins():
    code = "from adaqp.runtime import hostmem; print(hostmem.keep_freed_pages())"
    assert _in_child(code, MALLOC_TRIM_THRESHOLD_="131072") == "user"


def test_freed_blocks_are_reused_instead_of_faulted_in_again():
    # minor page faults of 30 cycles that allocate and touch eight 1 MiB temporaries, then free
    # them all (an op's intermediates): with glibc's defaults the freed heap top grows past the
    # trim threshold (twice a sliding mmap threshold of about 1 MiB) and goes back to the kernel,
    # so each cycle faults the pages in again; with the settings they stay in the process
    code = ("import sys, resource, numpy as np\n"
            "from adaqp.runtime import hostmem\n"
            "if sys.argv[1] == 'on': hostmem.keep_freed_pages()\n"
            "def cycle(): return [np.ones(1 << 17) for _ in range(8)]\n"
            "cycle()\n"
            "f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
            "for _ in range(30): cycle()\n"
            "print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)\n")

    def faults(mode: str) -> int:
        import os

        env = {k: v for k, v in os.environ.items() if k not in hostmem.USER_VARS}
        out = subprocess.run([sys.executable, "-c", code, mode], env=env, capture_output=True, text=True, check=True)
        return int(out.stdout.strip())

    pages = (8 << 20) // 4096  # one cycle's temporaries
    assert faults("off") >= 10 * pages
    assert faults("on") < pages
