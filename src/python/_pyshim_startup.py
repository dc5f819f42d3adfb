"""pyshim startup hooks: imported by pyshim-startup.pth in every interpreter
started through a pyshim launcher whose pyshim.toml has [python] startup.

The launcher passes the hook list in PYSHIM_STARTUP; the restore library
removes it from the environment before main(), so no child process inherits
it, and it is read here from /proc/self/environ, which keeps the environment
the interpreter was exec'd with. Written by `pyshim install`; do not edit.
"""


def _hook_spec():
    # os.open/os.read rather than open(): no buffered file object, so no
    # fstat, ioctl and lseek calls in every interpreter start (site has
    # imported os already).
    import os

    try:
        fd = os.open("/proc/self/environ", os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    environ = b"".join(chunks)
    if environ.startswith(b"PYSHIM_STARTUP="):
        start = 0
    else:
        start = environ.find(b"\0PYSHIM_STARTUP=") + 1
        if start == 0:
            return None
    start += len(b"PYSHIM_STARTUP=")
    end = environ.find(b"\0", start)
    return environ[start:end if end >= 0 else len(environ)].decode("utf-8", "surrogateescape")


def _fail(hook, config, what):
    import sys

    sys.stderr.write(f"pyshim: startup hook '{hook}' (from {config}) {what}\n")


_ran = False


def run():
    # site runs the .pth lines of a venv's site-packages twice (venv() and
    # main() both add the folder); hooks must run once per interpreter.
    global _ran
    if _ran:
        return
    _ran = True
    spec = _hook_spec()
    if spec is None:
        return
    import sys

    config, *lines = spec.split("\n")
    for line in lines:
        kind, _, value = line.partition("=")
        if kind == "path" and value not in sys.path:
            sys.path.append(value)
    for line in lines:
        kind, _, hook = line.partition("=")
        if kind != "hook":
            continue
        module_name, _, attribute = hook.partition(":")
        try:
            # __import__ + sys.modules rather than importlib: importing
            # importlib (and warnings) would cost more than a small hook.
            __import__(module_name)
            target = sys.modules[module_name]
        except ImportError as e:
            _fail(hook, config, f"could not be imported: {type(e).__name__}: {e} "
                  f"(module '{module_name}' searched in sys.path = {sys.path})")
            continue
        except BaseException as e:  # a module that fails while importing
            _fail(hook, config, f"raised while importing '{module_name}': "
                  f"{type(e).__name__}: {e}")
            continue
        try:
            for name in attribute.split("."):
                target = getattr(target, name)
        except AttributeError:
            _fail(hook, config, f"does not exist: module '{module_name}' "
                  f"({getattr(target, '__file__', '?')}) has no '{attribute}'")
            continue
        try:
            target()
        except BaseException as e:
            _fail(hook, config, f"raised {type(e).__name__}: {e}")
