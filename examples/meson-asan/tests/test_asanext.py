"""Runs through the ASan launcher (meson test: asan-python -m pytest tests/)."""

import multiprocessing
import pathlib
import subprocess
import sys

import asanext


def test_spawn_pool_workers_have_asan():
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(2) as pool:
        assert pool.map(asanext.total, [10, 100]) == [45, 4950]
        maps = pool.apply(pathlib.Path("/proc/self/maps").read_text)
        executable = pool.apply(sys.executable.__str__)
    assert "libasan.so" in maps
    assert executable == sys.executable


OVERFLOW = """
import multiprocessing, asanext
if __name__ == "__main__":
    worker = multiprocessing.get_context("spawn").Process(target=asanext.overflow)
    worker.start()
    worker.join()
    raise SystemExit(worker.exitcode)
"""


def test_worker_heap_overflow_is_reported_by_asan():
    res = subprocess.run([sys.executable, "-c", OVERFLOW], capture_output=True, text=True,
                         timeout=120)
    assert "ERROR: AddressSanitizer: heap-buffer-overflow" in res.stderr, res.stderr
    assert res.returncode != 0
