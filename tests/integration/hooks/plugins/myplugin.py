import os
import sys


def exec_bg():
    print(f"exec_bg ran in pid {os.getpid()} executable {sys.executable}", flush=True)


def fn(x):
    return x * 7
