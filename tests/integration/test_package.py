"""The Debian package, used the way a user would: extracted with dpkg-deb,
its pyshim makes a venv whose spawn workers get the preload; its man pages
render without warnings and cover every subcommand and option; its bash
completion offers every subcommand and option; its control fields,
copyright and changelog are what Debian expects; lintian finds no errors.

The subcommands and options are read from the packaged pyshim's own --help,
so a new option that the man pages or the completion miss fails here.

Which .deb: PYSHIM_DEB (set by `scripts/dev.sh test`, which packages before
testing); else one made here with cpack from the build in PYSHIM_BUILD;
else the tests are skipped, saying so."""

import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from conftest import run
from elf_and_maps import mapped_files

PYTHON = Path("/usr/bin/python3.11")

SPAWN_WORKER_MAPS = r"""
import multiprocessing, pathlib, sys
if __name__ == "__main__":
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        sys.stdout.write(pool.apply(pathlib.Path("/proc/self/maps").read_text))
"""


# --------------------------------------------------------------------------
# The package and its extracted tree


@pytest.fixture(scope="module")
def deb(tmp_path_factory) -> Path:
    given = os.environ.get("PYSHIM_DEB")
    if given:
        path = Path(given)
        assert path.is_file(), f"PYSHIM_DEB={given} does not exist"
        return path
    build = os.environ.get("PYSHIM_BUILD")
    config = Path(build) / "CPackConfig.cmake" if build else None
    if config is None or not config.is_file():
        pytest.skip("no package: set PYSHIM_DEB to a .deb (`bash scripts/dev.sh package` makes "
                    "one), or PYSHIM_BUILD to a configured build to make one here")
    out = tmp_path_factory.mktemp("deb")
    res = subprocess.run(["cpack", "--config", config, "-B", out], capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout + res.stderr
    (path,) = out.glob("pyshim_*.deb")
    return path


@pytest.fixture(scope="module")
def tree(deb, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("extracted")
    subprocess.run(["dpkg-deb", "-x", deb, root], check=True)
    return root


@pytest.fixture
def env(tmp_path):
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(tmp_path),
            "LC_ALL": "C.UTF-8", "LANG": "C.UTF-8"}


def text_of(argv, env, **kw) -> str:
    res = run(argv, env, **kw)
    assert res.returncode == 0, (argv, res.stdout.decode(), res.stderr.decode())
    return res.stdout.decode()


def help_section(text: str, title: str):
    """The lines of one "Title:" block of CLI11's --help output."""
    lines = text.splitlines()
    if f"{title}:" not in lines:
        return []
    block = []
    for line in lines[lines.index(f"{title}:") + 1:]:
        if not line.strip():
            break
        block.append(line)
    return block


def subcommands(pyshim: Path, env):
    names = [line.split()[0] for line in help_section(text_of([pyshim, "--help"], env),
                                                       "Subcommands")
             if re.match(r"  \S", line)]
    assert "install" in names and "doctor" in names, names
    return names


def long_options(pyshim: Path, command: str, env):
    """Every --name of a subcommand, from its --help ("  -h,--help  ...",
    "  --preload TEXT ...")."""
    options = set()
    for line in help_section(text_of([pyshim, command, "--help"], env), "Options"):
        if re.match(r"  -", line):
            options.update(n for n in line.split()[0].split(",") if n.startswith("--"))
    assert "--help" in options, options
    return options


def control_field(deb: Path, name: str) -> str:
    return subprocess.run(["dpkg-deb", "-f", deb, name], capture_output=True, text=True,
                          check=True).stdout.strip()


# --------------------------------------------------------------------------
# What is in it


def test_file_name_version_and_depends(deb, tree, env):
    version = text_of([tree / "usr/bin/pyshim", "--version"], env).split()[-1]
    assert deb.name == f"pyshim_{version}_amd64.deb"
    assert control_field(deb, "Package") == "pyshim"
    assert control_field(deb, "Version") == version
    assert control_field(deb, "Architecture") == "amd64"
    # The executables are static: the restore library's libc is all it needs.
    assert re.fullmatch(r"libc6 \(>= 2\.\d+\)", control_field(deb, "Depends"))


def test_arm64_package(deb, tmp_path):
    """The cross-built arm64 .deb (`scripts/dev.sh package --arch arm64`),
    beside the amd64 one: its control fields, and aarch64 binaries in the
    same layout. tests/platforms/ installs and uses it in an arm64 userland."""
    (arm64,) = list(deb.parent.glob("pyshim_*_arm64.deb")) or [None]
    if arm64 is None:
        pytest.skip(f"no arm64 package beside {deb}: `bash scripts/dev.sh package --arch arm64`")
    version = control_field(deb, "Version")
    assert arm64.name == f"pyshim_{version}_arm64.deb"
    assert control_field(arm64, "Architecture") == "arm64"
    assert control_field(arm64, "Depends") == "libc6 (>= 2.17)"
    subprocess.run(["dpkg-deb", "-x", arm64, tmp_path], check=True)
    for rel in ("usr/bin/pyshim", "usr/lib/pyshim/pyshim-launcher",
                "usr/lib/pyshim/libpyshim-restore.so"):
        head = (tmp_path / rel).read_bytes()[:20]
        assert head[:4] == b"\x7fELF" and int.from_bytes(head[18:20], "little") == 183, rel
    assert (tmp_path / "usr/share/man/man1/pyshim.1.gz").is_file()


def test_layout(deb, tree, env):
    for rel in ("usr/bin/pyshim", "usr/lib/pyshim/pyshim-launcher",
                "usr/lib/pyshim/libpyshim-restore.so",
                "usr/share/bash-completion/completions/pyshim",
                "usr/share/doc/pyshim/copyright", "usr/share/doc/pyshim/changelog.gz",
                "usr/share/man/man1/pyshim.1.gz"):
        assert (tree / rel).is_file(), rel
    for command in subcommands(tree / "usr/bin/pyshim", env):
        assert (tree / f"usr/share/man/man1/pyshim-{command}.1.gz").is_file(), command
    listing = subprocess.run(["dpkg-deb", "-c", deb], capture_output=True, text=True,
                             check=True).stdout
    owners = {line.split()[1] for line in listing.splitlines()}
    assert owners == {"root/root"}, owners


def test_extracted_pyshim_makes_a_venv_whose_spawn_workers_get_the_preload(tree, tmp_path, env):
    if not PYTHON.exists():
        pytest.skip(f"{PYTHON} not installed (Debian package python3.11)")
    jemalloc = Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")
    if not jemalloc.exists():
        pytest.skip(f"{jemalloc} not installed (Debian package libjemalloc2)")
    venv = tmp_path / "V"
    out = text_of([tree / "usr/bin/pyshim", "init", venv, "--python", PYTHON,
                   "--preload", "jemalloc"], env)
    # The packaged launcher, found from the packaged CLI, is what the venv got.
    assert f"a stamped copy of {tree}/usr/lib/pyshim/pyshim-launcher" in out, out
    maps = text_of([venv / "bin/python", "-c", SPAWN_WORKER_MAPS], env, cwd=tmp_path)
    mapped = set(mapped_files(maps))
    assert str(jemalloc) in mapped, sorted(mapped)
    assert str(venv / "lib/pyshim/libpyshim-restore.so") in mapped, sorted(mapped)


# --------------------------------------------------------------------------
# Man pages


def render_man(page: Path, env) -> str:
    """The page as man shows it, wide enough that nothing is hyphenated;
    groff's warnings (lintian's check too) fail the test."""
    res = run(["man", "--warnings", "-E", "UTF-8", "-l", page], {**env, "MANWIDTH": "250"})
    assert res.returncode == 0 and res.stderr == b"", (page, res.stderr.decode())
    return res.stdout.decode()


def test_man_page_renders_and_names_every_subcommand(tree, env):
    if not shutil.which("man"):
        pytest.skip("man not installed (Debian package man-db)")
    pyshim = tree / "usr/bin/pyshim"
    text = render_man(tree / "usr/share/man/man1/pyshim.1.gz", env)
    assert re.search(r"^NAME\n\s+pyshim - \S", text, re.M), text
    for command in subcommands(pyshim, env):
        assert re.search(rf"^\s+{command}\b", text, re.M), f"{command} missing:\n{text}"
        assert f"pyshim-{command}(1)" in text, f"SEE ALSO lacks pyshim-{command}(1):\n{text}"


def test_each_subcommand_page_lists_its_options_and_examples(tree, env):
    if not shutil.which("man"):
        pytest.skip("man not installed (Debian package man-db)")
    pyshim = tree / "usr/bin/pyshim"
    for command in subcommands(pyshim, env):
        text = render_man(tree / f"usr/share/man/man1/pyshim-{command}.1.gz", env)
        assert re.search(rf"^NAME\n\s+pyshim-{command} - \S", text, re.M), text
        for option in long_options(pyshim, command, env):
            assert re.search(rf"(^|[\s,]){re.escape(option)}\b", text, re.M), (
                f"{option} missing from pyshim-{command}(1):\n{text}")
        # The examples stay one command per line, as --help prints them.
        examples = text[text.index("EXAMPLES"):]
        assert re.search(rf"^\s+pyshim {command} \S.*$", examples, re.M), examples


# --------------------------------------------------------------------------
# Bash completion


def complete(script: Path, words, env) -> list:
    """COMPREPLY for the command line `words`, the last word being completed."""
    quoted = " ".join("'" + w.replace("'", "'\\''") + "'" for w in words)
    code = (f"source '{script}'; COMP_WORDS=({quoted}); COMP_CWORD={len(words) - 1}; "
            "_pyshim; printf '%s\\n' \"${COMPREPLY[@]}\"")
    res = run(["bash", "--norc", "--noprofile", "-c", code], env)
    assert res.returncode == 0 and res.stderr == b"", res.stderr.decode()
    return [w for w in res.stdout.decode().splitlines() if w]


def test_completion_offers_every_subcommand_and_option(tree, env):
    script = tree / "usr/share/bash-completion/completions/pyshim"
    res = run(["bash", "--norc", "--noprofile", "-c", f"source '{script}'; complete -p pyshim"],
              env)
    assert res.returncode == 0, res.stderr.decode()
    assert res.stdout.decode().strip() == "complete -o default -F _pyshim pyshim"

    pyshim = tree / "usr/bin/pyshim"
    commands = subcommands(pyshim, env)
    assert complete(script, ["pyshim", ""], env) == commands
    assert complete(script, ["pyshim", "ins"], env) == ["install"]
    assert set(complete(script, ["pyshim", "--"], env)) == {"--help", "--version", "--verbose"}
    for command in commands:
        offered = set(complete(script, ["pyshim", command, "--"], env))
        assert offered == long_options(pyshim, command, env), command
    assert complete(script, ["pyshim", "install", ".venv", "--pre"], env) == ["--preload"]
    # Paths (positionals, option values) are left to bash's file completion.
    assert complete(script, ["pyshim", "install", "--python", ""], env) == []


# --------------------------------------------------------------------------
# Debian's files


def test_copyright_is_machine_readable_and_carries_the_license(tree):
    text = (tree / "usr/share/doc/pyshim/copyright").read_text()
    assert text.startswith(
        "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n")
    assert "\nFiles: *\n" in text and "\nLicense: Expat\n" in text
    license = (Path(__file__).resolve().parents[2] / "LICENSE").read_text()
    holder = re.search(r"Copyright \(c\) (.+)", license).group(1)
    assert f"\nCopyright: {holder}\n" in text
    body = text.split("\nLicense: Expat\n", 1)[1]
    unfolded = "\n".join("" if line == " ." else line[1:] for line in body.splitlines())
    assert unfolded.strip() in license


def test_changelog_names_this_version(tree, env):
    version = text_of([tree / "usr/bin/pyshim", "--version"], env).split()[-1]
    with gzip.open(tree / "usr/share/doc/pyshim/changelog.gz", "rt") as f:
        first = f.readline()
    assert first.startswith(f"pyshim ({version}) "), first


def test_lintian_finds_no_errors(deb, env):
    if not shutil.which("lintian"):
        pytest.skip("lintian not installed (Debian package lintian)")
    res = run(["lintian", "--fail-on", "error", deb], env, timeout=600)
    out = res.stdout.decode()
    assert res.returncode == 0, out + res.stderr.decode()
    assert not [line for line in out.splitlines() if line.startswith("E:")], out
