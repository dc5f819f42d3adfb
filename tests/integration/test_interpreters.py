"""The interpreter matrix: sys.executable / prefix / path and the preload
in every kind of worker, in venv and standalone layouts, for every CPython
3.8-3.13 under /root/.pyenv/versions, Debian's python3.11 and
python3.11-dbg, and PyPy 3.9 as venv/bin/python.

Each interpreter runs probe.py through the shim with jemalloc preloaded and
the test library's folder as library_path; the parent, spawn / forkserver /
ProcessPoolExecutor(spawn) workers, and /bin/sh children (from the parent
and from a spawn worker) report what they actually see."""

import pytest

from conftest import (
    CONFIG_ENV,
    INFO,
    assert_self_contained_venv,
    caller_env,
    check_probe,
    interp_params,
    main_launcher_name,
    make_probe_venv,
    make_venv,
    place_launcher,
    plain_pool_spawn_error,
    plain_venv,
    probe_parts,
    pyshim_tool,
    run_json,
    write_config,
)


PYPY_SYMLINK_UNSUPPORTED = (
    "PyPy venv with bin/python a symlink to the shim: not a supported layout. PyPy resolves "
    "a symlinked argv[0] and searches for its stdlib and pyvenv.cfg from the pyshim binary's "
    "folder (wrong base_prefix/sys.path); `pyshim install` always copies the launcher into a "
    "PyPy venv, --symlink or not (test_pypy_install_copies_the_launcher)"
)


def _skip_unsupported_layout(interp, layout):
    if interp.kind == "pypy" and layout == "symlink":
        pytest.skip(PYPY_SYMLINK_UNSUPPORTED)


@pytest.mark.parametrize("variant", ["unset", "empty", "set"])
@pytest.mark.parametrize("interp", interp_params())
def test_venv_symlink_probe(interp, variant, stage, tmp_path, base_env, jemalloc, testlibs):
    venv = make_probe_venv(stage, interp, tmp_path / "venv", base_env, jemalloc, testlibs)
    env = caller_env(variant, base_env, tmp_path, testlibs)
    result = check_probe(venv.python, env, jemalloc=jemalloc, restore=stage.restore,
                         parts=probe_parts(interp, tmp_path))
    for name in ("parent", "spawn", "forkserver", "pool"):
        if name in result:
            assert result[name]["prefix"] == str(venv.root), name


@pytest.mark.parametrize("interp", interp_params())
def test_venv_pool_worker(interp, stage, tmp_path, base_env, jemalloc, testlibs):
    """ProcessPoolExecutor(mp_context=spawn) workers, on their own, so that an
    interpreter whose own executor is broken is reported as a skip."""
    error = plain_pool_spawn_error(interp, tmp_path)
    if error is not None:
        pytest.skip(
            f"{interp.path}: ProcessPoolExecutor(mp_context=spawn) fails without the shim "
            f"too: {error}"
        )
    venv = make_probe_venv(stage, interp, tmp_path / "venv", base_env, jemalloc, testlibs)
    env = caller_env("set", base_env, tmp_path, testlibs)
    check_probe(venv.python, env, jemalloc=jemalloc, restore=stage.restore, parts=("pool",))


@pytest.mark.parametrize("interp", interp_params())
def test_venv_copy_probe(interp, stage, tmp_path, base_env, jemalloc, testlibs):
    venv = make_probe_venv(stage, interp, tmp_path / "venv", base_env, jemalloc, testlibs,
                           mode="copy")
    assert not venv.python.is_symlink()
    env = caller_env("set", base_env, tmp_path, testlibs)
    restore_copy = venv.root / "lib" / "pyshim" / stage.restore.name
    check_probe(venv.python, env, jemalloc=jemalloc, restore=restore_copy,
                parts=probe_parts(interp, tmp_path))


@pytest.mark.parametrize("layout", ["symlink", "copy", "copy-beside"])
@pytest.mark.parametrize("interp", interp_params())
def test_venv_prefix_matches_plain_venv(interp, layout, stage, tmp_path, base_env):
    """sys.prefix / base_prefix / path / executable of the shim venv equal
    what the same venv reported with its plain bin/python."""
    _skip_unsupported_layout(interp, layout)
    venv = make_venv(stage, interp, tmp_path / "venv", base_env, mode=layout)
    assert venv.plain["executable"] == str(venv.python)
    names = sorted(p.name for p in (venv.root / "bin").iterdir() if p.name.startswith(("python", "pypy")))
    assert {"python", "python3"} <= set(names)
    for name in names:
        got = run_json([venv.root / "bin" / name, "-c", INFO], base_env)
        assert got["executable"] == str(venv.root / "bin" / name)
        for key in ("prefix", "base_prefix", "path"):
            assert got[key] == venv.plain[key], f"bin/{name}: sys.{key}"


def _pypy_params():
    return [p for p in interp_params() if p.values[0].kind == "pypy"]


@pytest.mark.parametrize("layout", ["default", "--symlink"])
@pytest.mark.parametrize("interp", _pypy_params())
def test_pypy_install_copies_the_launcher(interp, layout, stage, tmp_path, base_env, jemalloc,
                                          testlibs):
    """`pyshim install` on a `pypy3 -m venv` venv installs a stamped copy of
    the launcher whatever the layout asked for (with --symlink it says why
    not), the restore library in VENV/lib/pyshim/, no base launcher (PyPy
    cannot run standalone), and the venv reports what the plain PyPy venv
    did."""
    root = tmp_path / "venv"
    plain = plain_venv(interp, root, base_env)
    env_args = [arg for k, v in CONFIG_ENV.items() for arg in ("--env", f"{k}={v}")]
    layout_args = [] if layout == "default" else [layout]
    res = pyshim_tool(stage, "install", root, *layout_args, "--preload", jemalloc,
                      "--library-path", testlibs.libdir, *env_args, env=base_env)
    out = res.stdout.decode()
    assert res.returncode == 0, out + res.stderr.decode()
    note = "PyPy interpreter: installing a copy of the launcher" in out
    assert note == (layout == "--symlink"), out

    main = main_launcher_name(interp)
    stamp = assert_self_contained_venv(stage, root, main, base=False)
    assert stamp["preload"] == [str(jemalloc)] and stamp["env"] == CONFIG_ENV
    python = root / "bin" / "python"
    restore_copy = root / "lib" / "pyshim" / stage.restore.name

    names = sorted(p.name for p in (root / "bin").iterdir()
                   if p.name.startswith(("python", "pypy")))
    assert {"python", "python3", "pypy3", main} <= set(names), names
    for name in names:
        launcher = root / "bin" / name
        # every name leads to the copy inside the venv, never to the
        # launcher of the prefix
        assert launcher.resolve() == root / "bin" / main
        got = run_json([launcher, "-c", INFO], base_env)
        assert got["executable"] == str(launcher), name
        for key in ("prefix", "base_prefix", "path"):
            assert got[key] == plain[key], f"bin/{name}: sys.{key}"

    env = caller_env("set", base_env, tmp_path, testlibs)
    check_probe(python, env, jemalloc=jemalloc, restore=restore_copy,
                parts=probe_parts(interp, tmp_path))


@pytest.mark.parametrize("interp", interp_params())
def test_standalone_probe(interp, stage, tmp_path, base_env, jemalloc, testlibs):
    """A launcher outside any venv: same prefix/path as the plain interpreter,
    and the preload checks of the venv probe in full."""
    if interp.venv_only:
        pytest.skip("standalone PyPy is unsupported by design (the README)")
    root = tmp_path / "standalone"
    launcher = root / "bin" / "python"
    place_launcher(stage, launcher)
    write_config(
        root, interp.path, preload=[jemalloc], library_path=[testlibs.libdir], env=CONFIG_ENV
    )
    env = caller_env("set", base_env, tmp_path, testlibs)
    check_probe(launcher, env, jemalloc=jemalloc, restore=stage.restore)
    plain = run_json([interp.path, "-c", INFO], base_env)
    shim = run_json([launcher, "-c", INFO], env)
    assert shim["executable"] == str(launcher)
    for key in ("prefix", "base_prefix", "path"):
        assert shim[key] == plain[key], f"sys.{key}"


@pytest.mark.parametrize("interp", interp_params())
def test_library_not_found_without_shim(interp, base_env, testlibs):
    """Control for the cdll checks: the plain interpreter cannot load the test
    library by bare name, so finding it is library_path's doing."""
    res = run_json(
        [interp.path, "-c", "import ctypes, json\n"
         "try:\n  ctypes.CDLL('libpyshimtest.so'); print(json.dumps('loaded'))\n"
         "except OSError as e: print(json.dumps(str(e)))"],
        base_env,
    )
    assert res != "loaded" and "libpyshimtest.so" in res
