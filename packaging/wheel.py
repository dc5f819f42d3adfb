"""Writes pyshim's wheel for one architecture from an installed prefix.

  python3 packaging/wheel.py --prefix STAGE --arch x86_64|aarch64 --version V --out DIR

The wheel carries no Python code: the static CLI goes to the installing
environment's bin/ (the wheel's .data/scripts) and the launcher and restore
library to its lib/pyshim/ (.data/data/lib/pyshim), the same layout as an
installed prefix, so `pyshim init` finds its launcher beside it. Tagged
py3-none-manylinux_2_17_ARCH.manylinux2014_ARCH: the files need no glibc
symbol version newer than 2.17 (tests/integration/test_glibc_floor.py reads
them from the wheel). Written with zipfile alone (no PyPI tools): METADATA,
WHEEL and RECORD (sha256 and size of every file) as the wheel format asks.
"""

import argparse
import base64
import hashlib
import stat
import sys
import zipfile
from pathlib import Path

FILES = (  # (path in the prefix, path under NAME-VERSION.data/, mode)
    ("bin/pyshim", "scripts/pyshim", 0o755),
    ("lib/pyshim/pyshim-launcher", "data/lib/pyshim/pyshim-launcher", 0o755),
    ("lib/pyshim/libpyshim-restore.so", "data/lib/pyshim/libpyshim-restore.so", 0o644),
    # The CMake package and pkg-config file find the binaries relative to
    # themselves: CMAKE_PREFIX_PATH / PKG_CONFIG_PATH on the environment work.
    ("lib/cmake/pyshim/pyshimConfig.cmake", "data/lib/cmake/pyshim/pyshimConfig.cmake", 0o644),
    ("lib/cmake/pyshim/pyshimConfigVersion.cmake",
     "data/lib/cmake/pyshim/pyshimConfigVersion.cmake", 0o644),
    ("lib/pkgconfig/pyshim.pc", "data/lib/pkgconfig/pyshim.pc", 0o644),
)

SUMMARY = "static launcher that stands in for the Python interpreter"


def record_line(name: str, data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"{name},sha256={digest},{len(data)}"


def write_wheel(prefix: Path, arch: str, version: str, out: Path, readme: Path) -> Path:
    tags = [f"py3-none-manylinux_2_17_{arch}", f"py3-none-manylinux2014_{arch}"]
    name = f"pyshim-{version}-py3-none-manylinux_2_17_{arch}.manylinux2014_{arch}.whl"
    data_dir = f"pyshim-{version}.data"
    info_dir = f"pyshim-{version}.dist-info"
    metadata = "\n".join([
        "Metadata-Version: 2.1",
        "Name: pyshim",
        f"Version: {version}",
        f"Summary: {SUMMARY}",
        "License: MIT",
        "License-File: LICENSE",
        "Platform: Linux",
        "Classifier: Operating System :: POSIX :: Linux",
        "Classifier: Programming Language :: C++",
        "Description-Content-Type: text/markdown",
        "",
        readme.read_text() if readme.is_file() else SUMMARY,
    ])
    wheel = "\n".join(["Wheel-Version: 1.0", "Generator: pyshim packaging/wheel.py",
                       "Root-Is-Purelib: false", *(f"Tag: {t}" for t in tags), ""])
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    records = []
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        def add(arcname: str, data: bytes, mode: int):
            info = zipfile.ZipInfo(arcname, date_time=(2020, 1, 1, 0, 0, 0))
            info.external_attr = (stat.S_IFREG | mode) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, data)
            records.append(record_line(arcname, data))

        for source, target, mode in FILES:
            file = prefix / source
            if not file.is_file():
                sys.exit(f"wheel.py: {file} is missing (build and install the prefix first)")
            add(f"{data_dir}/{target}", file.read_bytes(), mode)
        license_file = Path(__file__).parent.parent / "LICENSE"
        add(f"{info_dir}/LICENSE", license_file.read_bytes(), 0o644)
        add(f"{info_dir}/METADATA", metadata.encode(), 0o644)
        add(f"{info_dir}/WHEEL", wheel.encode(), 0o644)
        records.append(f"{info_dir}/RECORD,,")
        info = zipfile.ZipInfo(f"{info_dir}/RECORD", date_time=(2020, 1, 1, 0, 0, 0))
        info.external_attr = (stat.S_IFREG | 0o644) << 16
        z.writestr(info, "\n".join(records) + "\n", zipfile.ZIP_DEFLATED)
    return path


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", type=Path, required=True)
    parser.add_argument("--arch", choices=("x86_64", "aarch64"), required=True)
    parser.add_argument("--version", required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--readme", type=Path, default=Path(__file__).parent.parent / "README.md")
    args = parser.parse_args()
    print(write_wheel(args.prefix, args.arch, args.version, args.out, args.readme))


if __name__ == "__main__":
    main()
