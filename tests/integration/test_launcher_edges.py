"""Launcher edge cases found in review: the launcher as a script's #!
interpreter (every pip console script), and a caller environment holding the
same variable twice."""
import os
import subprocess
from pathlib import Path

import pytest

PYSHIM = Path(os.environ.get("PYSHIM_PREFIX", "/nonexistent")) / "bin" / "pyshim"
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
CHECK = ("import os, sys\n"
         "maps = open('/proc/self/maps').read()\n"
         "print(sys.executable)\n"
         "print('jemalloc' in maps, 'pyshim-restore' in maps)\n"
         "print(sorted(k for k in os.environ if k.startswith('PYSHIM')))\n"
         "print(os.environ.get('LD_PRELOAD', '<unset>'))\n"
         "print(sys.argv[1:])\n")


@pytest.fixture
def venv(tmp_path):
    if not os.path.exists(JEMALLOC):
        pytest.skip(f"{JEMALLOC} missing (Debian libjemalloc2)")
    venv = tmp_path / "venv"
    subprocess.run([str(PYSHIM), "init", str(venv), "--python", "/usr/bin/python3.11",
                    "--preload", JEMALLOC], check=True, capture_output=True)
    return venv


def clean_env(**extra):
    return dict({"PATH": "/usr/bin:/bin", "HOME": "/root"}, **extra)


@pytest.mark.parametrize("where", ["bin", "elsewhere"])
@pytest.mark.parametrize("shebang_arg", ["", " -E"])
def test_launcher_as_shebang_interpreter(venv, tmp_path, where, shebang_arg):
    folder = venv / "bin" if where == "bin" else tmp_path / "scripts"
    folder.mkdir(exist_ok=True)
    script = folder / "tool"
    script.write_text(f"#!{venv / 'bin/python'}{shebang_arg}\n{CHECK}")
    script.chmod(0o755)
    res = subprocess.run([str(script), "a", ""], env=clean_env(), capture_output=True,
                         text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    # sys.executable is the launcher from the #! line, not the script.
    assert lines[0] == str(venv / "bin/python")
    assert lines[1] == "True True"
    assert lines[2] == "[]"
    assert lines[3] == "<unset>"
    assert lines[4] == "['a', '']"


def test_shebang_script_spawn_pool_workers_are_the_launcher(venv, tmp_path):
    script = venv / "bin" / "pooltool"
    script.write_text(
        f"#!{venv / 'bin/python'}\n"
        "import multiprocessing as mp, sys\n"
        "def who(_):\n"
        "    return sys.executable, 'jemalloc' in open('/proc/self/maps').read()\n"
        "if __name__ == '__main__':\n"
        "    with mp.get_context('spawn').Pool(2) as pool:\n"
        "        print(set(pool.map(who, range(4))))\n")
    script.chmod(0o755)
    res = subprocess.run([str(script)], env=clean_env(), capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str({(str(venv / "bin/python"), True)})


RAWEXEC = r"""
#include <unistd.h>
#include <string.h>
/* rawexec VAR=x VAR=y ... -- PROGRAM ARGS: execve with exactly this env,
   duplicates included (no shell or libc call would keep them). */
int main(int argc, char **argv) {
  int i = 1;
  for (; i < argc && strcmp(argv[i], "--") != 0; ++i) {}
  argv[i] = NULL;
  execve(argv[i + 1], argv + i + 1, argv + 1);
  return 127;
}
"""


def test_duplicate_caller_variables_do_not_defeat_the_preload(venv, tmp_path):
    src = tmp_path / "rawexec.c"
    src.write_text(RAWEXEC)
    rawexec = tmp_path / "rawexec"
    subprocess.run(["gcc", "-O2", "-o", str(rawexec), str(src)], check=True)
    libz = "/lib/x86_64-linux-gnu/libz.so.1"
    libm = "/lib/x86_64-linux-gnu/libm.so.6"
    res = subprocess.run(
        [str(rawexec), "PATH=/usr/bin:/bin", f"LD_PRELOAD={libz}", f"LD_PRELOAD={libm}", "--",
         str(venv / "bin/python"), "-c", CHECK], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[1] == "True True", "jemalloc and the restore library must be loaded"
    assert lines[2] == "[]", "no bookkeeping variable may leak into the interpreter"
    # The loader's view of the caller's value (the last entry) is restored.
    assert lines[3] == libm
