"""`pyshim launcher OUT --python PY ...`: a stamped launcher outside any venv
(README, "Dev-mode entrypoints"), used as multiprocessing.set_executable()'s
target by a plain interpreter, written idempotently for build systems."""

import os
import subprocess
import textwrap
from pathlib import Path

import pytest

from conftest import pyshim_tool, read_stamp, run, assert_stamped_launcher

WORKERS = textwrap.dedent(
    """
    import json, multiprocessing, sys
    def report():
        import os, sys
        maps = open("/proc/self/maps").read()
        return {"executable": sys.executable, "jemalloc": "libjemalloc" in maps,
                "foo": os.environ.get("DEVMODE_TEST_FOO")}
    if __name__ == "__main__":
        multiprocessing.set_executable(sys.argv[1])
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(2) as pool:
            workers = [pool.apply(report) for _ in range(2)]
        parent = "libjemalloc" in open("/proc/self/maps").read()
        print(json.dumps({"parent_jemalloc": parent, "workers": workers}))
    """
)


def write_launcher(stage, out, *args, env, check=True):
    res = pyshim_tool(stage, "launcher", out, *args, env=env)
    if check:
        assert res.returncode == 0, res.stderr.decode()
    return res


def files_state(paths):
    """What a build system looks at: mtime, inode (a rename makes a new one) and ctime."""
    out = {}
    for p in paths:
        st = os.lstat(p)
        out[str(p)] = (st.st_mtime_ns, st.st_ino, st.st_ctime_ns)
    return out


def test_set_executable_gives_preloaded_workers(stage, py, jemalloc, tmp_path, base_env):
    out = tmp_path / "build" / "py"
    write_launcher(stage, out, "--python", py.path, "--preload", "jemalloc", env=base_env)
    # The restore library goes beside OUT: the launcher's second place to
    # look (../lib/pyshim/ is outside what the user named), and the stamp
    # names it.
    restore = out.parent / "libpyshim-restore.so"
    assert restore.read_bytes() == stage.restore.read_bytes()
    stamp = read_stamp(out)
    assert stamp["restore_library"] == str(restore)
    assert stamp["preload"] == [str(jemalloc)]
    assert not (tmp_path / "lib").exists(), "nothing written outside OUT's folder"

    script = tmp_path / "workers.py"
    script.write_text(WORKERS)
    res = run([py.path, script, out], base_env)
    assert res.returncode == 0, res.stderr.decode()
    import json

    report = json.loads(res.stdout)
    assert report["parent_jemalloc"] is False, "the plain parent must not have it"
    for worker in report["workers"]:
        assert worker["executable"] == str(out)
        assert worker["jemalloc"] is True, worker


def test_works_when_pyshim_is_gone(stage, py, jemalloc, tmp_path, base_env):
    # "Needs nothing else from the system": a copy of the whole output folder
    # elsewhere, with the install prefix out of reach (the stamp still names
    # the restore library of the original folder, which is removed).
    out = tmp_path / "a" / "py"
    write_launcher(stage, out, "--python", py.path, "--preload", "jemalloc", env=base_env)
    moved = tmp_path / "b"
    (tmp_path / "a").rename(moved)
    res = run([moved / "py", "-c", "import sys; print(sys.executable); "
               "print('libjemalloc' in open('/proc/self/maps').read())"], base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode().split() == [str(moved / "py"), "True"]


def test_same_arguments_change_no_file(stage, py, jemalloc, tmp_path, base_env):
    out = tmp_path / "build" / "py"
    config = tmp_path / "build" / "etc" / "pyshim.toml"
    args = ("--python", py.path, "--preload", "jemalloc", "--env", "DEVMODE_TEST_FOO=1",
            "--config", config)
    write_launcher(stage, out, *args, env=base_env)
    written = [out, out.parent / "libpyshim-restore.so", config]
    assert_stamped_launcher(stage, out, source=config, restore_library=written[1])
    before = files_state(written)
    listing = sorted(os.listdir(out.parent))
    res = write_launcher(stage, out, *args, env=base_env)
    assert b"nothing changed" in res.stdout
    assert files_state(written) == before
    assert sorted(os.listdir(out.parent)) == listing, "no temporary left behind"


def test_other_arguments_rewrite(stage, py, jemalloc, tmp_path, base_env):
    out = tmp_path / "py"
    write_launcher(stage, out, "--python", py.path, "--preload", "jemalloc", env=base_env)
    before = files_state([out])
    write_launcher(stage, out, "--python", py.path, "--preload", "jemalloc",
                   "--env", "DEVMODE_TEST_FOO=bar", env=base_env)
    assert files_state([out]) != before
    assert read_stamp(out)["env"] == {"DEVMODE_TEST_FOO": "bar"}
    script = tmp_path / "workers.py"
    script.write_text(WORKERS)
    res = run([py.path, script, out], base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert b'"foo": "bar"' in res.stdout
    # and back: without --config the arguments are the whole config
    write_launcher(stage, out, "--python", py.path, env=base_env)
    stamp = read_stamp(out)
    assert stamp["env"] == {} and stamp["preload"] == []


def test_edited_config_is_read(stage, py, tmp_path, base_env):
    out = tmp_path / "py"
    config = tmp_path / "pyshim.toml"
    write_launcher(stage, out, "--python", py.path, "--config", config, env=base_env)
    text = config.read_text()
    assert text.rstrip().endswith("[env]"), text
    config.write_text(text + 'DEVMODE_TEST_FOO = "edited"\n')
    res = run([out, "-c", "import os; print(os.environ['DEVMODE_TEST_FOO'])"], base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode().strip() == "edited"


@pytest.mark.parametrize("kind", ["text", "symlink", "folder"])
def test_refuses_what_is_not_a_launcher(stage, py, tmp_path, base_env, kind):
    out = tmp_path / "py"
    victim = tmp_path / "victim"
    victim.write_text("keep me\n")
    if kind == "text":
        out.write_text("#!/bin/sh\necho mine\n")
    elif kind == "symlink":
        write_launcher(stage, tmp_path / "real" / "py", "--python", py.path, env=base_env)
        out.symlink_to(victim)
    else:
        out.mkdir()
    before = os.lstat(out)
    res = write_launcher(stage, out, "--python", py.path, env=base_env, check=False)
    assert res.returncode == 2, res
    assert b"is not a pyshim launcher" in res.stderr
    after = os.lstat(out)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    assert victim.read_text() == "keep me\n"


def test_refuses_a_config_that_would_shadow_the_stamp(stage, py, tmp_path, base_env):
    # The launcher reads a pyshim.toml beside it or one folder up before its
    # stamp: one there that is not --config would silently win.
    (tmp_path / "pyshim.toml").write_text('interpreter = "/bin/false"\n')
    res = write_launcher(stage, tmp_path / "build" / "py", "--python", py.path, env=base_env,
                         check=False)
    assert res.returncode == 2
    assert b"would read it instead of its stamped config" in res.stderr
    assert not (tmp_path / "build" / "py").exists()


def test_asan_preset_keeps_the_soname_and_sets_asan_options(stage, py, tmp_path, base_env):
    found = subprocess.run(["gcc", "-print-file-name=libasan.so"], capture_output=True, text=True)
    if found.returncode != 0 or "/" not in found.stdout:
        pytest.skip("no libasan.so from gcc (Debian package libasan8 / gcc)")
    out = tmp_path / "asan-python"
    write_launcher(stage, out, "--python", py.path, "--preload", "asan", env=base_env)
    stamp = read_stamp(out)
    (preload,) = stamp["preload"]
    name = Path(preload).name
    # libasan.so.8, not libasan.so.8.0.0 (renamed by the next upgrade)
    assert name.startswith("libasan.so.") and name.count(".") == 2, preload
    assert stamp["env"] == {"ASAN_OPTIONS": "detect_leaks=0"}
    res = run([out, "-c", "import os; print(os.environ['ASAN_OPTIONS'])"], base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode().strip() == "detect_leaks=0"


def test_doctor_passes_without_venv_wording(stage, py, jemalloc, tmp_path, base_env):
    out = tmp_path / "py"
    write_launcher(stage, out, "--python", py.path, "--preload", "jemalloc", env=base_env)
    res = pyshim_tool(stage, "doctor", out, env=base_env)
    text = res.stdout.decode()
    assert res.returncode == 0, text + res.stderr.decode()
    assert "preload mapped in a spawn worker" in text
    assert "pyvenv.cfg" not in text and "pyshim install" not in text


def test_startup_hooks_need_a_venv(stage, py, tmp_path, base_env):
    res = write_launcher(stage, tmp_path / "py", "--python", py.path, "--startup", "a.b:c",
                         env=base_env, check=False)
    assert res.returncode == 2
    assert b"need a venv" in res.stderr
    assert not (tmp_path / "py").exists()


def test_show_says_the_stamp_is_the_whole_config(stage, py, tmp_path, base_env):
    out = tmp_path / "py"
    write_launcher(stage, out, "--python", py.path, env=base_env)
    res = pyshim_tool(stage, "show", out, env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    lines = res.stdout.decode().splitlines()
    assert lines[1] == (f"config:          {tmp_path}/pyshim.toml  "
                        "(none: the launcher's stamp is its whole config)"), lines
    # With --config, the file is named as any stamped config is.
    config = tmp_path / "etc" / "pyshim.toml"
    write_launcher(stage, out, "--python", py.path, "--config", config, env=base_env)
    lines = pyshim_tool(stage, "show", out, env=base_env).stdout.decode().splitlines()
    assert lines[1] == (f"config:          {config}  "
                        "(stamped in the launcher: not parsed at launch)"), lines
