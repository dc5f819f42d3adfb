"""The restore library restores only in the process the launcher planned it
for (README: "The restore library"): the launcher records the argv[0] it
gives the interpreter in PYSHIM_TARGET, and a program between the launcher
and the interpreter passes the environment on untouched, so the interpreter
still gets its preload:

- `valgrind --trace-children=yes venv/bin/python`: Debian's valgrind is a
  #!/bin/sh script and valgrind.bin is dynamically linked; both are exec'd
  with the shim's environment before the interpreter is;
- an `interpreter` that is a #!/bin/sh wrapper exec'ing the real python,
  directly or through another dynamically linked program (env, nice), as
  HPC wrappers do with numactl or taskset.

In each, the interpreter reports jemalloc mapped (/proc/self/maps) and no
bookkeeping in its environment, and a /bin/sh child gets the caller's
LD_PRELOAD. Also: the interpreter's process name is the launcher's name, as
a plain venv's is, and the restore library needs no glibc symbol version
above the manylinux2014 floor (2.17)."""

import json
import re
import shutil
import subprocess

import pytest

from conftest import default_interp, install_venv, run, run_json

REPORT = r"""
import json, os, subprocess
maps = open("/proc/self/maps").read()
sh = subprocess.run(["/bin/sh", "-c", 'printf "%s|%s|%s" "${LD_PRELOAD-<unset>}" '
                     '"${PYSHIM_TARGET-<unset>}" "${PYSHIM_ORIG_LD_PRELOAD-<unset>}"'],
                    capture_output=True, text=True).stdout.split("|")
print(json.dumps({
    "jemalloc": "libjemalloc" in maps,
    "restore": "libpyshim-restore" in maps,
    "bookkeeping": sorted(k for k in os.environ if k.startswith("PYSHIM_")),
    "ld_preload": os.environ.get("LD_PRELOAD"),
    "sh_preload": sh[0], "sh_target": sh[1], "sh_orig": sh[2],
    "comm": open("/proc/self/comm").read().strip(),
}))
"""


@pytest.fixture
def venv(stage, tmp_path, base_env, jemalloc):
    interp = default_interp()
    return install_venv(stage, interp, tmp_path / "v", base_env, "--python", interp.path,
                        "--preload", jemalloc)


def report(argv, env):
    res = run(argv, env, timeout=600)
    assert res.returncode == 0, res.stderr.decode(errors="replace")
    # valgrind may print to stdout-free stderr only; the report is the last line.
    return json.loads(res.stdout.decode().strip().splitlines()[-1])


def assert_restored_in_interpreter(got, caller_preload):
    assert got["jemalloc"], got  # the configured preload reached the interpreter
    assert got["bookkeeping"] == [], got  # restored there, nowhere before
    assert got["sh_target"] == "<unset>" and got["sh_orig"] == "<unset>", got
    return got


@pytest.mark.parametrize("caller", ["unset", "set"])
def test_valgrind_trace_children_keeps_the_preload(venv, base_env, tmp_path, caller):
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        pytest.skip("valgrind not installed (Debian package valgrind)")
    env = dict(base_env)
    if caller == "set":
        extra = tmp_path / "extra.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", extra, "-x", "c", "-"],
                       input=b"int pyshim_test_extra;", check=True)
        env["LD_PRELOAD"] = str(extra)
    got = report([valgrind, "-q", "--trace-children=yes", "--error-exitcode=0",
                  venv.root / "bin" / "python", "-c", REPORT], env)
    assert_restored_in_interpreter(got, env.get("LD_PRELOAD"))
    # valgrind puts its own preloads in LD_PRELOAD for the programs it runs;
    # the caller's entry comes back and nothing of the shim's is left.
    for entry in got["sh_preload"].split(":"):
        assert "jemalloc" not in entry and "pyshim" not in entry, got
    if caller == "set":
        assert env["LD_PRELOAD"] in got["sh_preload"].split(":"), got


WRAPPERS = {
    "exec": 'exec "{py}" "$@"',
    "env": 'exec env WRAPPED=2 "{py}" "$@"',
    "nice": 'exec nice -n 0 "{py}" "$@"',
}


@pytest.mark.parametrize("form", sorted(WRAPPERS))
@pytest.mark.parametrize("caller", ["unset", "empty", "set"])
def test_sh_wrapper_as_interpreter_keeps_the_preload(venv, base_env, tmp_path, caller, form):
    interp = default_interp()
    wrapper = tmp_path / "wrapper.sh"
    wrapper.write_text("#!/bin/sh\nexport WRAPPED=1\n" + WRAPPERS[form].format(py=interp.path)
                       + "\n")
    wrapper.chmod(0o755)
    config = venv.root / "pyshim.toml"
    text = config.read_text()
    text = re.sub(r'(?m)^interpreter = .*$', f'interpreter = "{wrapper}"', text, count=1)
    config.write_text(text)
    env = dict(base_env)
    if caller == "empty":
        env["LD_PRELOAD"] = ""
    elif caller == "set":
        extra = tmp_path / "extra.so"
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", extra, "-x", "c", "-"],
                       input=b"int pyshim_test_extra;", check=True)
        env["LD_PRELOAD"] = str(extra)
    got = report([venv.root / "bin" / "python", "-c", REPORT], env)
    assert_restored_in_interpreter(got, env.get("LD_PRELOAD"))
    assert got["ld_preload"] == env.get("LD_PRELOAD"), got
    assert got["sh_preload"] == env.get("LD_PRELOAD", "<unset>"), got


def test_direct_launch_restores_and_names_the_process_like_a_plain_venv(venv, base_env):
    got = report([venv.root / "bin" / "python", "-c", REPORT], base_env)
    assert_restored_in_interpreter(got, None)
    assert got["ld_preload"] is None and got["sh_preload"] == "<unset>", got
    # A plain venv's bin/python is named "python" by the kernel (the name it
    # was exec'd by); the launcher execs python3.X, the restore library names
    # it back. `ps -C python` and `pkill -x python` find both alike.
    assert got["comm"] == "python", got
    plain = run_json([venv.root / "bin" / "python3", "-c",
                      "import json; print(json.dumps(open('/proc/self/comm').read().strip()))"],
                     base_env)
    assert plain == "python3"


def test_program_with_another_argv0_passes_the_environment_on(venv, base_env, tmp_path):
    """The library loaded into a program the launcher did not plan for
    (argv[0] neither PYSHIM_TARGET nor an interpreter's name) leaves the
    environment exactly as it was."""
    restore = venv.root / "lib" / "pyshim" / "libpyshim-restore.so"
    env = dict(base_env, LD_PRELOAD=str(restore), PYSHIM_ORIG_LD_PRELOAD="",
               PYSHIM_ORIG_LD_LIBRARY_PATH="", PYSHIM_TARGET="/somewhere/bin/python")
    res = run(["/bin/sh", "-c", 'printf "%s|%s|%s" "$LD_PRELOAD" "${PYSHIM_ORIG_LD_PRELOAD+set}" '
               '"${PYSHIM_TARGET-<unset>}"'], env)
    assert res.stdout.decode().split("|") == [str(restore), "set", "/somewhere/bin/python"]
    # Started with the planned argv[0]: restored.
    res = run(["/bin/sh", "-c", 'printf "%s|%s" "${LD_PRELOAD-<unset>}" "${PYSHIM_TARGET-<unset>}"'],
              dict(env, PYSHIM_TARGET="/bin/sh"))
    assert res.stdout.decode() == "<unset>|<unset>"


def _version_needs(path):
    """GLIBC_x.y versions `readelf -V` lists as needed by path."""
    readelf = shutil.which("readelf")
    if readelf is None:
        pytest.skip("readelf not installed (Debian package binutils)")
    out = subprocess.run([readelf, "-V", "-W", path], capture_output=True, text=True, check=True)
    return set(re.findall(r"Name: (GLIBC_[0-9.]+)", out.stdout))


def test_restore_library_needs_nothing_above_glibc_2_17(stage):
    needs = _version_needs(stage.restore)
    too_new = [v for v in needs
               if tuple(int(x) for x in v[len("GLIBC_"):].split(".")) > (2, 17)]
    assert not too_new, f"{stage.restore} needs {sorted(too_new)} (floor: GLIBC_2.17)"
    dynamic = subprocess.run(["readelf", "-d", "-W", stage.restore], capture_output=True,
                             text=True, check=True).stdout
    # Cheapest to load: no library it needs, no relocations to apply.
    assert "(NEEDED)" not in dynamic, dynamic
    relocs = subprocess.run(["readelf", "-r", "-W", stage.restore], capture_output=True,
                            text=True, check=True).stdout
    assert "There are no relocations" in relocs, relocs
