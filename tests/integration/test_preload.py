"""Issue 2, items 3 and 4: jemalloc preloaded and the test library found by
bare name in the parent and in spawn / forkserver / ProcessPoolExecutor(spawn)
workers; /bin/sh children (from the parent and from a spawn worker) get
neither jemalloc nor the restore library, and exactly the caller's
LD_PRELOAD / LD_LIBRARY_PATH (unset, empty or set); no bookkeeping variable
reaches any child. All of it under no flag, -I, -E, -S and -I -S.

The full caller x flag grid runs on Debian's python3.11; an older CPython
(whose getpath and multiprocessing differ) runs every flag once."""

import pytest

from conftest import (
    CALLER_VARIANTS,
    CONFIG_ENV,
    assert_probe,
    caller_env,
    default_interp,
    make_venv,
    probe,
    probe_parts,
    second_interp,
)

FLAGS = {
    "noflag": ([], {"isolated": False, "ignore_environment": False, "no_site": False}),
    "-I": (["-I"], {"isolated": True, "ignore_environment": True, "no_user_site": True,
                    "no_site": False}),
    "-E": (["-E"], {"isolated": False, "ignore_environment": True, "no_site": False}),
    "-S": (["-S"], {"isolated": False, "ignore_environment": False, "no_site": True}),
    "-I -S": (["-I", "-S"], {"isolated": True, "ignore_environment": True, "no_site": True}),
}


def _run(interp, flag, variant, stage, tmp_path, base_env, jemalloc, testlibs):
    venv = make_venv(
        stage,
        interp,
        tmp_path / "venv",
        base_env,
        preload=[jemalloc],
        library_path=[testlibs.libdir],
        env=CONFIG_ENV,
    )
    env = caller_env(variant, base_env, tmp_path, testlibs, jemalloc)
    # PYTHON* variables that -E / -I must ignore: if the flags were lost on
    # the way, PYTHONPATH would show up in sys.path (checked below).
    env["PYTHONPATH"] = str(tmp_path / "pythonpath-marker")
    argv, expected_flags = FLAGS[flag]
    parts = probe_parts(interp, tmp_path)
    result = probe(venv.python, env, flags=argv, parts=parts, cwd="/")
    assert_probe(
        result,
        launcher=venv.python,
        jemalloc=jemalloc,
        restore=stage.restore,
        caller_env=env,
        config_env=CONFIG_ENV,
        flags=expected_flags,
        parts=parts,
    )
    for name in ("parent", "spawn", "forkserver", "pool"):
        if name in result:
            in_path = env["PYTHONPATH"] in result[name]["path"]
            assert in_path == (not expected_flags["ignore_environment"]), name


@pytest.mark.parametrize("variant", CALLER_VARIANTS)
@pytest.mark.parametrize("flag", list(FLAGS))
def test_preload_and_restore(flag, variant, stage, tmp_path, base_env, jemalloc, testlibs):
    _run(default_interp(), flag, variant, stage, tmp_path, base_env, jemalloc, testlibs)


@pytest.mark.parametrize("flag", list(FLAGS))
def test_preload_and_restore_older_cpython(flag, stage, tmp_path, base_env, jemalloc, testlibs):
    interp = second_interp()
    if interp is None:
        pytest.skip("no CPython 3.8-3.10 under /root/.pyenv/versions")
    _run(interp, flag, "set", stage, tmp_path, base_env, jemalloc, testlibs)
