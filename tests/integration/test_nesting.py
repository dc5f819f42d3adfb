"""Nesting: a chain of 10 interpreters, each started with
subprocess.run([sys.executable, ...]) by the previous one, sees a
byte-identical environment at every depth; and (README, "How it works",
"No growth when nested") launchers chained without the restore library running in
between compute a byte-identical environment at every hop."""

import json

import pytest

from conftest import (
    CONFIG_ENV,
    HERE,
    caller_env,
    check_probe,
    make_probe_venv,
    place_launcher,
    probe_parts,
    read_env_dump,
    run,
    write_config,
)

DEPTH = 10


def _as_bytes_env(env):
    return {k.encode(): v.encode() for k, v in env.items()}


def _entries_to_dict(entries):
    out = {}
    for entry in entries:
        name, sep, value = entry.partition(b"=")
        assert sep, entry
        assert name not in out, f"duplicate variable {name!r}"
        out[name] = value
    return out


@pytest.mark.parametrize("variant", ["unset", "empty", "set"])
def test_chain_of_ten_interpreters(py, variant, stage, tmp_path, base_env, jemalloc, testlibs):
    venv = make_probe_venv(stage, py, tmp_path / "venv", base_env, jemalloc, testlibs)
    env = caller_env(variant, base_env, tmp_path, testlibs)
    out = tmp_path / "out"
    out.mkdir()
    res = run([venv.python, HERE / "nest.py", "1", str(DEPTH), out], env, cwd="/")
    assert res.returncode == 0, res.stderr.decode()
    assert res.stderr == b""

    environs = [(out / f"{d:02d}.environ").read_bytes() for d in range(1, DEPTH + 1)]
    procenvs = [(out / f"{d:02d}.procenv").read_bytes() for d in range(1, DEPTH + 1)]
    metas = [json.loads((out / f"{d:02d}.json").read_text()) for d in range(1, DEPTH + 1)]

    # what Python sees (after the restore library) is the caller's environment
    # plus [env], byte for byte the same at every depth
    for depth, data in enumerate(environs, 1):
        assert data == environs[0], f"os.environb at depth {depth} differs from depth 1"
    expected = _as_bytes_env(env)
    expected.update(_as_bytes_env(CONFIG_ENV))
    assert _entries_to_dict(environs[0].split(b"\0")[:-1]) == expected

    # What each launcher passed to execve does not grow either. The first
    # launcher's caller lacked the [env] variables, so they were appended
    # there and sit in place from depth 2 on: same entries, other order.
    launched = _entries_to_dict(procenvs[0].split(b"\0")[:-1])
    for depth, data in enumerate(procenvs[1:], 2):
        assert data == procenvs[1], f"launcher's environment at depth {depth} differs"
    assert _entries_to_dict(procenvs[1].split(b"\0")[:-1]) == launched
    assert launched[b"LD_PRELOAD"].split(b":")[:2] == [bytes(jemalloc), bytes(stage.restore)]

    pids = [m["pid"] for m in metas]
    assert len(set(pids)) == DEPTH
    for depth, meta in enumerate(metas, 1):
        assert meta["executable"] == str(venv.python), depth
        assert meta["jemalloc"] and meta["restore"], depth
        assert meta["cdll"] == 42, depth
        if depth > 1:
            assert meta["ppid"] == metas[depth - 2]["pid"], depth


def _hop_launcher(stage, root, static_hop, jemalloc, testlibs):
    launcher = root / "bin" / "python"
    place_launcher(stage, launcher)
    write_config(
        root, static_hop, preload=[jemalloc], library_path=[testlibs.libdir], env=CONFIG_ENV
    )
    return launcher


@pytest.mark.parametrize("variant", ["unset", "empty", "set"])
def test_no_growth_when_restore_did_not_run(
    variant, stage, tmp_path, base_env, jemalloc, testlibs, static_hop
):
    """launcher -> static hop -> launcher -> ... ten deep: the incoming
    environment already carries the bookkeeping variables at every hop after
    the first, and each launcher must still compute exactly the same one."""
    launcher = _hop_launcher(stage, tmp_path / "hop", static_hop, jemalloc, testlibs)
    env = caller_env(variant, base_env, tmp_path, testlibs)
    argv = []
    for d in range(1, DEPTH + 1):
        argv += [launcher, tmp_path / f"{d:02d}.hopenv"]
    res = run(argv, env)
    assert res.returncode == 0, res.stderr.decode()
    dumps = [read_env_dump(tmp_path / f"{d:02d}.hopenv") for d in range(1, DEPTH + 1)]
    for depth, dump in enumerate(dumps, 1):
        assert dump == dumps[0], f"environment at hop {depth} differs from hop 1"

    got = _entries_to_dict(dumps[0])
    caller_preload = env.get("LD_PRELOAD") or ""
    caller_libpath = env.get("LD_LIBRARY_PATH") or ""
    assert got.pop(b"LD_PRELOAD") == b":".join(
        [bytes(jemalloc), bytes(stage.restore)] + ([caller_preload.encode()] if caller_preload else [])
    )
    assert got.pop(b"LD_LIBRARY_PATH") == b":".join(
        [bytes(testlibs.libdir)] + ([caller_libpath.encode()] if caller_libpath else [])
    )
    assert b"PYSHIM_ORIG_LD_PRELOAD" in got and b"PYSHIM_ORIG_LD_LIBRARY_PATH" in got
    got.pop(b"PYSHIM_ORIG_LD_PRELOAD")
    got.pop(b"PYSHIM_ORIG_LD_LIBRARY_PATH")
    # The restore target: the argv[0] the launcher gave its interpreter.
    assert got.pop(b"PYSHIM_TARGET") == bytes(launcher)
    expected = _as_bytes_env({k: v for k, v in env.items()
                              if k not in ("LD_PRELOAD", "LD_LIBRARY_PATH")})
    expected.update(_as_bytes_env(CONFIG_ENV))
    assert got == expected


@pytest.mark.parametrize("variant", ["unset", "empty", "set"])
def test_restore_after_a_hop_without_restore(
    py, variant, stage, tmp_path, base_env, jemalloc, testlibs, static_hop
):
    """launcher -> static hop (restore does not run) -> shim venv python: the
    interpreter and its children still get the *caller's* values back, not
    the first launcher's."""
    launcher = _hop_launcher(stage, tmp_path / "hop", static_hop, jemalloc, testlibs)
    venv = make_probe_venv(stage, py, tmp_path / "venv", base_env, jemalloc, testlibs)
    env = caller_env(variant, base_env, tmp_path, testlibs)
    check_probe(venv.python, env, jemalloc=jemalloc, restore=stage.restore,
                parts=probe_parts(py, tmp_path), through=[launcher, tmp_path / "hop.env"])
