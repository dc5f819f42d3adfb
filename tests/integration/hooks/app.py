"""The user's program: loads plugins, then runs plugin functions in spawn and
forkserver processes and a spawn ProcessPoolExecutor."""
import concurrent.futures
import multiprocessing as mp
import sys

import loader

if __name__ == "__main__":
    if "myplugin" not in sys.modules:
        loader.load_plugins()
    plugin = sys.modules["myplugin"]
    failures = 0
    for method in ("spawn", "forkserver"):
        p = mp.get_context(method).Process(target=plugin.exec_bg)
        p.start()
        p.join()
        print(f"{method} exitcode {p.exitcode}", flush=True)
        failures += p.exitcode != 0
    with concurrent.futures.ProcessPoolExecutor(1, mp_context=mp.get_context("spawn")) as pool:
        try:
            print(f"pool result {pool.submit(plugin.fn, 6).result()}", flush=True)
        except Exception as e:
            print(f"pool failed {type(e).__name__}: {e}", flush=True)
            failures += 1
    sys.exit(1 if failures else 0)
