#!/usr/bin/env python3
"""Finds throwing Swift functions in an x86-64 release binary that may return a phantom error.

The LLVM in Swift 6.3's toolchain may turn a memcpy, memmove or memset at the very end of a
throwing function into a tail jump to the C library without first restoring the error register
(r12 on x86-64), when the function reused that register for something else: the caller then
sees a non-zero error and treats whatever the register held as a thrown error
(swiftlang/swift#90477; the guard LLVM keeps for other tail calls out of throwing functions was
missing on this path). Debug builds never tail-call, so only a release build shows it.

A function is reported when it does not save r12 as a callee-saved register (no `push %r12`,
so r12 is its error register), spills r12 to its frame (keeping the incoming error value
aside), writes r12 with something else, and ends a path in a jump to memcpy, memmove or memset.

Usage: scripts/check_error_register.py PATH-TO-BINARY
Exit status: 0 none found, 1 found (listed, demangled), 2 could not run objdump.
"""

import re
import subprocess
import sys

MEM_TAIL = re.compile(r"\bjmp\s+\S+ <(memmove|memcpy|memset)@plt>")
FUNCTION = re.compile(r"^[0-9a-f]+ <(.+)>:$")
SPILL = re.compile(r"\bmov\s+%r12,-?0x[0-9a-f]+\(%r[bs]p\)")
RESTORE = re.compile(r"\bmov\s+-?0x[0-9a-f]+\(%r[bs]p\),%r12$")
WRITE = re.compile(r",%r12$")


def suspects(lines):
    name, body = None, []

    def check():
        if name is None or not any(MEM_TAIL.search(line) for line in body):
            return False
        if any("push   %r12" in line for line in body):
            return False
        spilled = any(SPILL.search(line) for line in body)
        written = any(WRITE.search(line) and not RESTORE.search(line) for line in body)
        return spilled and written

    for raw in lines:
        line = raw.rstrip()
        match = FUNCTION.match(line.strip())
        if match:
            if check():
                yield name
            name, body = match.group(1), []
        elif name is not None:
            body.append(line.strip())
    if check():
        yield name


def main():
    if len(sys.argv) != 2:
        print(__doc__.strip().splitlines()[-3], file=sys.stderr)
        return 2
    try:
        objdump = subprocess.Popen(
            ["objdump", "-d", "--no-show-raw-insn", sys.argv[1]],
            stdout=subprocess.PIPE,
            text=True,
            errors="replace",
        )
    except OSError as error:
        print(f"check_error_register: objdump: {error}", file=sys.stderr)
        return 2
    found = list(suspects(objdump.stdout))
    if objdump.wait() != 0:
        print(f"check_error_register: objdump failed on {sys.argv[1]}", file=sys.stderr)
        return 2
    if not found:
        print(f"check_error_register: {sys.argv[1]}: no throwing function tail-calls memcpy, memmove or memset")
        return 0
    try:
        names = subprocess.run(
            ["swift", "demangle", "--simplified"],
            input="\n".join(found),
            capture_output=True,
            text=True,
        ).stdout.splitlines()
    except OSError:
        names = found
    print(
        f"check_error_register: {sys.argv[1]}: {len(found)} throwing function(s) may return a "
        "phantom error (a tail call to memcpy/memmove/memset with r12 reused; swiftlang/swift#90477):"
    )
    for mangled, readable in zip(found, names):
        print(f"  {readable}\n    {mangled}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
