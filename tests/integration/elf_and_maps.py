"""The tests' one reader of ELF section headers and one reader of
/proc/PID/maps text. Standard library only, Python 3.8+: besides the
integration tests, tests/platforms/test_userland.py uses it inside a chroot
(tests/platforms/run.sh copies it there)."""

import struct
from typing import List, Optional, Tuple


def elf_section_header(data: bytes, name: str,
                       what="the image") -> Optional[Tuple[int, int, int]]:
    """(address, file offset, size) of the named section of the ELF64
    little-endian image `data`, or None when it has none. The tests' one ELF
    reader: section headers only, so it works on stripped binaries."""
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1, f"{what}: not ELF64 LE"
    shoff = struct.unpack_from("<Q", data, 0x28)[0]
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x3A)

    def header(i):  # sh_name, sh_type, sh_flags, sh_addr, sh_offset, sh_size
        return struct.unpack_from("<IIQQQQ", data, shoff + i * shentsize)

    names = header(shstrndx)[4]
    for i in range(shnum):
        sh_name, _, _, addr, offset, size = header(i)
        end = data.index(b"\0", names + sh_name)
        if data[names + sh_name:end] == name.encode():
            return addr, offset, size
    return None


def mapped_files(maps_text: str) -> List[str]:
    """The file paths of /proc/PID/maps text, in order (a file mapped in
    several segments is listed each time); anonymous and [special] mappings
    are left out, a path with spaces is kept whole."""
    paths = []
    for line in maps_text.splitlines():
        fields = line.split(None, 5)
        if len(fields) == 6 and fields[5].startswith("/"):
            paths.append(fields[5].strip())
    return paths
