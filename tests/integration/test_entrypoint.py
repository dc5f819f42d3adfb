"""`pyshim entrypoint OUT --launcher L (--module M | --script P) [--arg A]...`:
an executable that runs M through L with the given arguments before the
caller's; its workers come back through L (README, "Dev-mode entrypoints")."""

import json
import os
import textwrap

import pytest

from conftest import interp_params, pyshim_tool, run

APP = textwrap.dedent(
    """
    import concurrent.futures, json, multiprocessing, os, sys

    def report():
        return {"executable": sys.executable,
                "jemalloc": "libjemalloc" in open("/proc/self/maps").read()}

    def main():
        ctx = multiprocessing.get_context(os.environ.get("APP_START", "spawn"))
        with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=ctx) as ex:
            worker = ex.submit(report).result()
        print(json.dumps({"argv": sys.argv, "main": report(), "worker": worker,
                          "name": __name__, "path0": sys.path[0]}))
        return int(os.environ.get("APP_EXIT", "0"))

    if __name__ == "__main__":
        sys.exit(main())
    """
)


@pytest.fixture
def project(stage, py, jemalloc, tmp_path, base_env):
    """A launcher with jemalloc and a module `myapp` on its PYTHONPATH."""
    src = tmp_path / "src"
    (src / "myapp").mkdir(parents=True)
    (src / "myapp" / "__init__.py").write_text("")
    # A module of the package, not its __main__: multiprocessing does not
    # re-import a package's __main__ in a spawn worker (`python -m pkg`
    # behaves the same).
    (src / "myapp" / "cli.py").write_text(APP)
    (src / "script.py").write_text(APP)
    launcher = tmp_path / "build" / "python"
    res = pyshim_tool(stage, "launcher", launcher, "--python", py.path, "--preload", "jemalloc",
                      "--env", f"PYTHONPATH={src}", env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    return launcher, src


def entrypoint(stage, out, *args, env, check=True):
    res = pyshim_tool(stage, "entrypoint", out, *args, env=env)
    if check:
        assert res.returncode == 0, res.stderr.decode()
    return res


def run_app(app, env, *args, **kw):
    res = run([app, *args], env, **kw)
    assert res.returncode == 0, res.stderr.decode()
    return json.loads(res.stdout)


@pytest.mark.parametrize("start", ["spawn", "forkserver"])
def test_module_runs_through_the_launcher(stage, project, tmp_path, base_env, start):
    launcher, _ = project
    app = tmp_path / "build" / "bin" / "myapp"
    entrypoint(stage, app, "--launcher", launcher, "--module", "myapp.cli", "--arg=--given",
               "--arg", "two words", env=base_env)
    # No shell in between: the kernel starts the launcher on the file.
    assert app.read_bytes().startswith(f"#!{launcher}\n".encode())
    report = run_app(app, {**base_env, "APP_START": start}, "user", "-x")
    assert report["argv"] == [str(app), "--given", "two words", "user", "-x"]
    assert report["name"] == "__main__"
    assert report["main"] == {"executable": str(launcher), "jemalloc": True}
    assert report["worker"] == {"executable": str(launcher), "jemalloc": True}
    # As for an installed console script: neither the entrypoint's folder
    # nor the cwd is put first on sys.path.
    assert report["path0"] not in (str(app.parent), "", "/")


def test_exit_status_and_script_form(stage, project, tmp_path, base_env):
    launcher, src = project
    app = tmp_path / "bin" / "tool"
    entrypoint(stage, app, "--launcher", launcher, "--script", src / "script.py", env=base_env)
    report = run_app(app, base_env, "a")
    # As `python script.py a` (runpy.run_path sets argv[0] to the script).
    assert report["argv"] == [str(src / "script.py"), "a"]
    assert report["worker"] == {"executable": str(launcher), "jemalloc": True}
    res = run([app], {**base_env, "APP_EXIT": "3"})
    assert res.returncode == 3


def test_long_launcher_path_goes_through_sh(stage, project, tmp_path, base_env):
    # Linux reads 256 bytes of a #! line: a longer launcher path cannot be
    # named there, so the file execs it from /bin/sh.
    launcher, _ = project
    deep = tmp_path / ("d" * 200) / ("e" * 60)
    deep.mkdir(parents=True)
    (deep / "python").symlink_to(launcher)
    app = tmp_path / "bin" / "myapp"
    res = entrypoint(stage, app, "--launcher", deep / "python", "--module", "myapp.cli",
                     "--arg", "given", env=base_env)
    assert b"via /bin/sh" in res.stdout
    assert app.read_bytes().startswith(b"#!/bin/sh\n")
    report = run_app(app, base_env, "user")
    assert report["argv"] == [str(app), "given", "user"]
    assert report["worker"]["executable"] == str(deep / "python")
    assert report["worker"]["jemalloc"] is True
    doctor = pyshim_tool(stage, "doctor", app, env=base_env)
    assert doctor.returncode == 0, doctor.stdout.decode()
    assert f"entrypoint {app} runs the launcher {deep / 'python'}" in doctor.stdout.decode()


def test_same_arguments_change_nothing(stage, project, tmp_path, base_env):
    launcher, _ = project
    app = tmp_path / "myapp"
    args = ("--launcher", launcher, "--module", "myapp.cli")
    entrypoint(stage, app, *args, env=base_env)
    before = os.stat(app)
    res = entrypoint(stage, app, *args, env=base_env)
    assert b"nothing changed" in res.stdout
    after = os.stat(app)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    entrypoint(stage, app, *args, "--arg", "x", env=base_env)
    assert os.stat(app).st_mtime_ns != before.st_mtime_ns or os.stat(app).st_ino != before.st_ino


def test_refusals(stage, project, py, tmp_path, base_env):
    launcher, _ = project
    mine = tmp_path / "mine"
    mine.write_text("#!/bin/sh\necho mine\n")
    res = entrypoint(stage, mine, "--launcher", launcher, "--module", "myapp.cli", env=base_env,
                     check=False)
    assert res.returncode == 2 and b"is not a pyshim entrypoint" in res.stderr
    assert mine.read_text() == "#!/bin/sh\necho mine\n"
    res = entrypoint(stage, tmp_path / "x", "--launcher", py.path, "--module", "myapp.cli",
                     env=base_env, check=False)
    assert res.returncode == 2 and b"not a pyshim launcher" in res.stderr
    res = entrypoint(stage, tmp_path / "x", "--launcher", launcher, env=base_env, check=False)
    assert res.returncode == 2 and b"give one of --module and --script" in res.stderr
    res = entrypoint(stage, tmp_path / "x", "--launcher", launcher, "--module", "a-b",
                     env=base_env, check=False)
    assert res.returncode == 2 and b"not a module name" in res.stderr
    assert not (tmp_path / "x").exists()


def test_show_and_doctor_follow_the_entrypoint(stage, project, tmp_path, base_env):
    launcher, _ = project
    app = tmp_path / "bin" / "myapp"
    entrypoint(stage, app, "--launcher", launcher, "--module", "myapp.cli", env=base_env)
    doctor = pyshim_tool(stage, "doctor", app, env=base_env)
    text = doctor.stdout.decode()
    assert doctor.returncode == 0, text
    assert text.splitlines()[0] == f"✓ entrypoint {app} runs the launcher {launcher} (#! line)"
    assert f"✓ sys.executable is the launcher: {launcher}" in text
    assert "pyvenv.cfg" not in text and "pyshim install" not in text
    show = pyshim_tool(stage, "show", app, env=base_env)
    assert show.returncode == 0, show.stderr.decode()
    lines = show.stdout.decode().splitlines()
    assert lines[0].startswith(f"entrypoint:      {app}  ")
    assert lines[1] == f"launcher:        {launcher}"
    shown = json.loads(pyshim_tool(stage, "show", app, "--json", env=base_env).stdout)
    assert shown["launcher"] == str(launcher)


@pytest.mark.parametrize("interp", interp_params(include_pypy=False))
def test_every_cpython(stage, interp, jemalloc, tmp_path, base_env):
    # runpy._run_module_as_main and the spawn re-import of __main__'s module,
    # 3.8 to 3.13 (PyPy cannot run standalone: README).
    src = tmp_path / "src" / "myapp"
    src.mkdir(parents=True)
    (src / "__init__.py").write_text("")
    (src / "cli.py").write_text(APP)
    launcher = tmp_path / "python"
    res = pyshim_tool(stage, "launcher", launcher, "--python", interp.path, "--preload",
                      "jemalloc", "--env", f"PYTHONPATH={src.parent}", env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    app = tmp_path / "myapp"
    entrypoint(stage, app, "--launcher", launcher, "--module", "myapp.cli", "--arg", "x",
               env=base_env)
    report = run_app(app, base_env, "y")
    assert report["argv"] == [str(app), "x", "y"]
    assert report["worker"] == {"executable": str(launcher), "jemalloc": True}
