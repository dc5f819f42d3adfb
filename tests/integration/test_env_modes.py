"""[env] values that add to the caller's value instead of replacing it:
`NAME = { prepend = "v" }` / `{ append = "v" }` in pyshim.toml and
`--env-prepend` / `--env-append` on install and init (README, "`[env]` that
adds to the caller's value").

What the interpreter and its spawn workers actually see (os.environ,
sys.path, an import from each folder), through real launchers: a caller's
PYTHONPATH survives, ten nested launches give the value one gives, a child
that changed the variable gets the part added, and the stamped hot path and
a parsed, hand-edited config give the same value.
"""

import json
import re
import subprocess

import pytest

from conftest import install_venv, main_launcher_name, plain_venv, pyshim_tool, read_stamp, run

# Imports a module from each folder, in the interpreter and in a spawn
# worker, and reports what each saw.
SEEN = r"""
import json, multiprocessing, os, sys

def seen():
    out = {"PYTHONPATH": os.environ.get("PYTHONPATH"), "CLASSPATH": os.environ.get("CLASSPATH"),
           "path": sys.path, "executable": sys.executable}
    for name in ("from_config", "from_caller"):
        try:
            out[name] = __import__(name).WHO
        except ImportError as e:
            out[name] = "ImportError: %s" % e
    return out

if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        worker = pool.apply(seen)
    print(json.dumps({"parent": seen(), "worker": worker}))
"""

# One link of a chain through sys.executable: records PYTHONPATH/CLASSPATH,
# then starts the next link (optionally after setting PYTHONPATH itself).
CHAIN = r"""
import json, os, subprocess, sys
depth, total, out, change_at = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with open(os.path.join(out, "%02d.json" % depth), "w") as f:
    json.dump({"PYTHONPATH": os.environ.get("PYTHONPATH"),
               "CLASSPATH": os.environ.get("CLASSPATH")}, f)
if depth < total:
    env = dict(os.environ)
    if depth == change_at:
        env["PYTHONPATH"] = "/child/own"
    subprocess.run([sys.executable, __file__, str(depth + 1), str(total), out, str(change_at)],
                   env=env, check=True)
"""


@pytest.fixture
def folders(tmp_path):
    """A folder the config adds and one the caller brings, each with a
    module saying where it came from."""
    config_dir, caller_dir = tmp_path / "build-python", tmp_path / "caller-python"
    for folder, who in ((config_dir, "config"), (caller_dir, "caller")):
        folder.mkdir()
        (folder / f"from_{who}.py").write_text(f"WHO = {who!r}\n")
    return config_dir, caller_dir


def seen(launcher, env, tmp_path):
    script = tmp_path / "seen.py"
    script.write_text(SEEN)
    res = run([launcher, script], env)
    assert res.returncode == 0, res.stderr.decode()
    return json.loads(res.stdout)


def test_callers_pythonpath_survives_prepend_in_the_interpreter_and_spawn_workers(
        stage, py, tmp_path, base_env, folders):
    config_dir, caller_dir = folders
    venv = install_venv(stage, py, tmp_path / "venv", base_env,
                        "--env-prepend", f"PYTHONPATH={config_dir}",
                        "--env-append", "CLASSPATH=/opt/x.jar")
    config = (venv.root / "pyshim.toml").read_text()
    assert f"PYTHONPATH = {{ prepend = '{config_dir}' }}" in config, config
    assert "CLASSPATH = { append = '/opt/x.jar' }" in config, config

    caller = dict(base_env, PYTHONPATH=str(caller_dir), CLASSPATH="/caller.jar")
    got = seen(venv.python, caller, tmp_path)
    for who in ("parent", "worker"):
        report = got[who]
        assert report["PYTHONPATH"] == f"{config_dir}:{caller_dir}", (who, report)
        assert report["CLASSPATH"] == "/caller.jar:/opt/x.jar", (who, report)
        assert report["from_config"] == "config" and report["from_caller"] == "caller", (who, report)
        # The config's folder first: prepend gives it precedence on sys.path.
        path = report["path"]
        assert path.index(str(config_dir)) < path.index(str(caller_dir)), (who, path)
        assert report["executable"] == str(venv.python), (who, report)

    # A caller without the variables gets the part alone, no empty piece
    # (which would put the current directory on sys.path).
    got = seen(venv.python, base_env, tmp_path)
    for who in ("parent", "worker"):
        assert got[who]["PYTHONPATH"] == str(config_dir), got[who]
        assert got[who]["CLASSPATH"] == "/opt/x.jar", got[who]
        assert got[who]["from_caller"].startswith("ImportError"), got[who]
        assert "" not in got[who]["path"][1:], got[who]["path"]


def test_ten_nested_launches_give_the_value_one_gives(stage, py, tmp_path, base_env, folders):
    config_dir, caller_dir = folders
    venv = install_venv(stage, py, tmp_path / "venv", base_env,
                        "--env-prepend", f"PYTHONPATH={config_dir}",
                        "--env-append", "CLASSPATH=/opt/x.jar")
    script = tmp_path / "chain.py"
    script.write_text(CHAIN)
    caller = dict(base_env, PYTHONPATH=str(caller_dir), CLASSPATH="/caller.jar")

    def chain(total, change_at=-1):
        out = tmp_path / f"chain-{total}-{change_at}"
        out.mkdir()
        res = run([venv.python, script, "1", str(total), out, str(change_at)], caller)
        assert res.returncode == 0, res.stderr.decode()
        links = sorted(out.glob("*.json"))
        assert len(links) == total
        return [json.loads(p.read_text()) for p in links]

    one = chain(1)[0]
    assert one == {"PYTHONPATH": f"{config_dir}:{caller_dir}",
                   "CLASSPATH": "/caller.jar:/opt/x.jar"}, one
    ten = chain(10)
    assert ten == [one] * 10, ten

    # A child that sets the variable itself: the next launch adds the part
    # to the child's value, once, and the links after keep it.
    changed = chain(10, change_at=4)
    assert changed[:4] == [one] * 4, changed
    assert changed[4:] == [{"PYTHONPATH": f"{config_dir}:/child/own",
                            "CLASSPATH": one["CLASSPATH"]}] * 6, changed


def _opens_config(launcher, env, tmp_path) -> bool:
    """Whether the launcher opened its pyshim.toml before starting the
    interpreter (strace): the stamped hot path never does."""
    trace = tmp_path / "trace"
    res = subprocess.run(["strace", "-qq", "-f", "-e", "trace=openat,execve", "-o", str(trace),
                          str(launcher), "-c", "pass"], env=env, capture_output=True, cwd="/")
    assert res.returncode == 0, res.stderr.decode()
    before_exec = []
    for line in trace.read_text().splitlines():
        if "execve(" in line and before_exec:
            break
        before_exec.append(line)
    return any("pyshim.toml" in line for line in before_exec)


def test_stamped_hot_path_and_a_parsed_hand_edited_config_agree(
        stage, py, tmp_path, base_env, folders, strace):
    config_dir, caller_dir = folders
    root = tmp_path / "venv"
    venv = install_venv(stage, py, root, base_env,
                        "--env-prepend", f"PYTHONPATH={config_dir}",
                        "--env-append", "CLASSPATH=/opt/x.jar")
    stamp = read_stamp(root / "bin" / main_launcher_name(py))
    assert stamp["env"]["PYTHONPATH"] == {"prepend": str(config_dir)}, stamp["env"]
    assert stamp["env"]["CLASSPATH"] == {"append": "/opt/x.jar"}, stamp["env"]

    callers = [
        dict(base_env),
        dict(base_env, PYTHONPATH=str(caller_dir), CLASSPATH="/caller.jar"),
        dict(base_env, PYTHONPATH=f"{config_dir}:{caller_dir}", CLASSPATH="/c.jar:/opt/x.jar"),
        dict(base_env, PYTHONPATH="", CLASSPATH=""),
    ]
    assert not _opens_config(venv.python, callers[1], tmp_path)
    stamped = [seen(venv.python, caller, tmp_path) for caller in callers]

    # The same config written by hand (other spacing, a comment): parsed at launch.
    config = root / "pyshim.toml"
    config.write_text(
        f'interpreter = {json.dumps(str(py.path))}\n'
        "[env]\n"
        "# added by hand\n"
        f'PYTHONPATH = {{prepend={json.dumps(str(config_dir))}}}\n'
        'CLASSPATH={ append = "/opt/x.jar" }\n')
    assert _opens_config(venv.python, callers[1], tmp_path)
    parsed = [seen(venv.python, caller, tmp_path) for caller in callers]
    assert parsed == stamped

    expected = [
        (str(config_dir), "/opt/x.jar"),
        (f"{config_dir}:{caller_dir}", "/caller.jar:/opt/x.jar"),
        (f"{config_dir}:{caller_dir}", "/c.jar:/opt/x.jar"),
        (str(config_dir), "/opt/x.jar"),
    ]
    for got, (pythonpath, classpath) in zip(stamped, expected):
        for who in ("parent", "worker"):
            assert (got[who]["PYTHONPATH"], got[who]["CLASSPATH"]) == (pythonpath, classpath), got


def test_show_names_the_callers_part(stage, py, tmp_path, base_env, folders):
    config_dir, caller_dir = folders
    venv = install_venv(stage, py, tmp_path / "venv", base_env,
                        "--env-prepend", f"PYTHONPATH={config_dir}")
    caller = dict(base_env, PYTHONPATH=str(caller_dir))
    res = pyshim_tool(stage, "show", venv.python, "--json", env=caller)
    assert res.returncode == 0, res.stderr.decode()
    entry = next(e for e in json.loads(res.stdout)["env"] if e["name"] == "PYTHONPATH")
    assert entry["value"] == f"{config_dir}:{caller_dir}"
    assert entry["mode"] == "prepend" and entry["caller_part"] == str(caller_dir), entry
    assert entry["before"] == str(caller_dir)
    assert entry["origin"][1] == "caller's environment", entry
    assert re.fullmatch(re.escape(str(venv.config)) + r":\d+:\d+", entry["origin"][0]), entry
    text = pyshim_tool(stage, "show", venv.python, env=caller).stdout.decode()
    assert f"prepend: the caller's part is \"{caller_dir}\"" in text, text


@pytest.mark.parametrize("option", ["--env", "--env-prepend", "--env-append"])
@pytest.mark.parametrize("name", ["LD_PRELOAD", "LD_LIBRARY_PATH", "PYSHIM_CONFIG"])
def test_every_form_refuses_what_pyshim_manages(stage, py, tmp_path, base_env, option, name):
    root = tmp_path / "venv"
    plain_venv(py, root, base_env)
    res = pyshim_tool(stage, "install", root, option, f"{name}=/x", env=base_env)
    assert res.returncode == 2, res.stderr.decode()
    assert f"{option} {name}=/x: pyshim manages {name}" in res.stderr.decode()
    assert not (root / "pyshim.toml").exists()


def test_a_hand_edited_form_pyshim_manages_is_refused_at_launch(stage, py, tmp_path, base_env):
    venv = install_venv(stage, py, tmp_path / "venv", base_env)
    venv.config.write_text(f'interpreter = {json.dumps(str(py.path))}\n'
                           '[env]\nLD_LIBRARY_PATH = { append = "/x" }\n')
    res = run([venv.python, "-c", "pass"], base_env)
    assert res.returncode == 125, res.stderr.decode()
    err = res.stderr.decode()
    assert "[env] may not set LD_LIBRARY_PATH: pyshim manages it" in err, err
    assert f"{venv.config}:3:1" in err, err


def test_one_name_in_two_forms_is_refused(stage, py, tmp_path, base_env):
    root = tmp_path / "venv"
    plain_venv(py, root, base_env)
    res = pyshim_tool(stage, "install", root, "--env", "PYTHONPATH=/a",
                      "--env-prepend", "PYTHONPATH=/b", env=base_env)
    assert res.returncode == 2
    assert "PYTHONPATH is given to both --env and --env-prepend" in res.stderr.decode()


def test_init_takes_the_forms_and_a_reinstall_keeps_them(stage, py, tmp_path, base_env):
    root = tmp_path / "venv"
    res = pyshim_tool(stage, "init", root, "--python", py.path, "--env-append", "A=/tail",
                      env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    assert "A = { append = '/tail' }" in (root / "pyshim.toml").read_text()
    # Options that do not name A keep its form; naming A again replaces it.
    res = pyshim_tool(stage, "install", root, "--env", "B=1", env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    text = (root / "pyshim.toml").read_text()
    assert "A = { append = '/tail' }" in text and "B = '1'" in text, text
    got = run([root / "bin/python", "-c", "import os; print(os.environ['A'])"],
              dict(base_env, A="/head")).stdout.decode().strip()
    assert got == "/head:/tail"
    res = pyshim_tool(stage, "install", root, "--env-prepend", "A=/front", env=base_env)
    assert res.returncode == 0, res.stderr.decode()
    got = run([root / "bin/python", "-c", "import os; print(os.environ['A'])"],
              dict(base_env, A="/head")).stdout.decode().strip()
    assert got == "/front:/head"
