"""myapp: runs a few tasks in a process pool and reports what each worker
process has (started as bin/myapp, an entrypoint through the launcher)."""

import argparse
import concurrent.futures
import json
import multiprocessing
import os
import sys


def describe():
    with open("/proc/self/maps") as maps:
        jemalloc = any("libjemalloc" in line for line in maps)
    return {"pid": os.getpid(), "executable": sys.executable, "jemalloc": jemalloc}


def main(argv=None):
    parser = argparse.ArgumentParser(prog="myapp")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless every process has jemalloc")
    args = parser.parse_args(argv)
    ctx = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
        workers = [pool.submit(describe).result() for _ in range(args.workers * 2)]
    report = {"argv": sys.argv, "main": describe(), "workers": workers}
    print(json.dumps(report))
    processes = [report["main"], *workers]
    return 1 if args.check and not all(p["jemalloc"] for p in processes) else 0


if __name__ == "__main__":
    sys.exit(main())
