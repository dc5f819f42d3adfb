"""One link of a chain of interpreters: `python nest.py DEPTH TOTAL OUTDIR`.

Writes OUTDIR/DEPTH.environ (os.environb, entries NUL-terminated, in order),
OUTDIR/DEPTH.procenv (/proc/self/environ: what the launcher passed to
execve, before the restore library edited it) and OUTDIR/DEPTH.json, then
starts the next link with subprocess.run([sys.executable, ...]) until TOTAL.
"""

import ctypes
import json
import os
import subprocess
import sys


def main():
    depth, total, outdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    base = os.path.join(outdir, "%02d" % depth)
    with open(base + ".environ", "wb") as f:
        f.write(b"".join(k + b"=" + v + b"\0" for k, v in os.environb.items()))
    with open("/proc/self/environ", "rb") as src, open(base + ".procenv", "wb") as f:
        f.write(src.read())
    with open("/proc/self/maps") as f:
        maps = f.read()
    try:
        cdll = ctypes.CDLL("libpyshimtest.so").pyshimtest_answer()
    except OSError as e:
        cdll = str(e)
    with open(base + ".json", "w") as f:
        json.dump(
            {
                "executable": sys.executable,
                "pid": os.getpid(),
                "ppid": os.getppid(),
                "jemalloc": "libjemalloc" in maps,
                "restore": "libpyshim-restore" in maps,
                "cdll": cdll,
            },
            f,
        )
    if depth < total:
        subprocess.run([sys.executable, __file__, str(depth + 1), str(total), outdir], check=True)


if __name__ == "__main__":
    main()
