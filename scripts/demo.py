"""A program run through the shim: jemalloc in the parent and in spawned
workers, none in a /bin/sh child, whose environment is the caller's."""
import multiprocessing as mp
import os
import subprocess
import sys


def mapped(name):
    with open("/proc/self/maps") as maps:
        return any(name in line for line in maps)


def report(who):
    return (f"{who:<22} pid={os.getpid():<7} sys.executable={sys.executable}  "
            f"jemalloc mapped={mapped('libjemalloc')}  LD_PRELOAD={os.environ.get('LD_PRELOAD', '<unset>')}")


def worker(_):
    return report(f"{mp.get_start_method()} worker")


if __name__ == "__main__":
    print(report("parent"))
    for method in ("spawn", "forkserver"):
        with mp.get_context(method).Pool(2) as pool:
            for line in pool.map(worker, range(2)):
                print(line)
    sh = subprocess.run(
        ["/bin/sh", "-c",
         'echo "/bin/sh child           pid=$$ jemalloc mapped=$(grep -q libjemalloc /proc/self/maps'
         ' && echo True || echo False)  LD_PRELOAD=${LD_PRELOAD-<unset>}"'],
        check=True, capture_output=True, text=True)
    print(sh.stdout, end="")
