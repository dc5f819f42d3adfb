"""Reports how the interpreter was started: argv (as bytes, hex), the raw
/proc/self/cmdline, the interpreter flags and options, and stdin. Used
through the shim and directly, and the two reports compared."""

import json
import os
import sys
import warnings


def report():
    with open("/proc/self/cmdline", "rb") as f:
        cmdline = f.read().split(b"\0")[:-1]
    try:
        warnings.warn("probe warning", UserWarning)
        warning = "ignored or printed"
    except UserWarning:
        warning = "raised"
    try:
        assert False
        asserts = "disabled"
    except AssertionError:
        asserts = "enabled"
    return {
        "name": __name__,
        "argv": [os.fsencode(a).hex() for a in sys.argv],
        "cmdline_tail": [a.hex() for a in cmdline[1:]],
        "flags": list(sys.flags),
        "warnoptions": sys.warnoptions,
        "xoptions": {k: str(v) for k, v in sys._xoptions.items()},
        "warning": warning,
        "asserts": asserts,
        "debug": __debug__,
        "optimize": sys.flags.optimize,
        "dont_write_bytecode": sys.flags.dont_write_bytecode,
        "dev_mode": sys.flags.dev_mode,
        "stdout_buffer": type(sys.stdout.buffer).__name__,
        "stdin": sys.stdin.read() if "--read-stdin" in sys.argv else None,
        "pid": os.getpid(),
        "ppid": os.getppid(),
    }


print(json.dumps(report()))
