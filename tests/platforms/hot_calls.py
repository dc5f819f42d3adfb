"""Fails when the launcher's hot code (.pyshim_hot) calls or branches to an
address outside that section: before _start nothing else is ready (see
src/launcher/entry.cpp). Usage: hot_calls.py OBJDUMP LAUNCHER"""

import re
import subprocess
import sys


def main(objdump, launcher):
    headers = subprocess.run([objdump, "-h", launcher], capture_output=True, text=True,
                             check=True).stdout
    m = re.search(r"\.pyshim_hot\s+([0-9a-f]+)\s+([0-9a-f]+)", headers)
    if not m:
        print(f"{launcher}: no .pyshim_hot section (the hot path is not linked in)")
        return 1
    size, start = int(m.group(1), 16), int(m.group(2), 16)
    code = subprocess.run([objdump, "-d", "-j", ".pyshim_hot", launcher], capture_output=True,
                          text=True, check=True).stdout
    outside = []
    for line in code.splitlines():
        b = re.search(r"\t(bl?|b\.\w+|cbn?z|tbn?z)\s+(?:\w+, )*(?:#\d+, )?0x([0-9a-f]+)", line)
        if b and not start <= int(b.group(2), 16) < start + size:
            outside.append(line.strip())
    # The entry point's one way out is the branch to glibc's _start.
    if len(outside) != 1 or not re.search(r"\sb\s", outside[0]):
        print(f"{launcher}: hot code leaves .pyshim_hot:\n  " + "\n  ".join(outside))
        return 1
    print(f"hot code stays in .pyshim_hot ({size} bytes) but for the branch to _start")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
