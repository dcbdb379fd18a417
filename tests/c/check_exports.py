#!/usr/bin/python3
"""Checks that each shared library exports exactly the functions the C header declares.

    /usr/bin/python3 tests/c/check_exports.py HEADER LIB.so [LIB.so ...]

The header's list is every function declared with EMB_API; a library's list is every defined
dynamic symbol starting with "emb_" (``nm -D --defined-only``). The two are written by hand on
either side of the ABI ([UnmanagedCallersOnly(EntryPoint = "...")] in C#, prototypes in C), so
this is what stops them drifting apart: a header function the library lacks fails at link or
load time in a consumer, and an export the header lacks is an undocumented ABI.

Prints one PASS line per library; on a mismatch prints what is missing on each side and exits 1.
"""

import re
import subprocess
import sys

# NativeAOT links with a version script, so exports read "emb_embedding@@V1.0" (default version)
# or "name@V1.0" (non-default); the name is what precedes the first "@".
_VERSION_SUFFIX = re.compile(r"@.*$")

# A prototype: EMB_API, a return type, the function name, "(". Return types here are plain
# (int32_t, const char*), so anything but ";" and "(" may sit between EMB_API and the name.
_PROTOTYPE = re.compile(r"\bEMB_API\b[^;(]*?\b([A-Za-z_]\w*)\s*\(")


def header_functions(header_path):
    """The names of the functions declared with EMB_API in the header."""
    with open(header_path, encoding="utf-8") as header:
        text = header.read()
    # Comments may mention EMB_API or show example calls; preprocessor lines define EMB_API itself.
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.DOTALL)
    text = re.sub(r"//[^\n]*", " ", text)
    text = re.sub(r"^[ \t]*#(?:[^\n]*\\\n)*[^\n]*", " ", text, flags=re.MULTILINE)
    names = _PROTOTYPE.findall(text)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        sys.exit(f"FAIL {header_path}: declared more than once: {', '.join(duplicates)}")
    return set(names)


def library_exports(library_path):
    """The defined dynamic symbols named emb_* in the library, mapped to their nm type letter."""
    result = subprocess.run(
        ["nm", "-D", "--defined-only", library_path],
        capture_output=True, text=True, check=False,
    )
    if result.returncode != 0:
        sys.exit(f"FAIL {library_path}: nm failed: {result.stderr.strip()}")
    exports = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) < 2:
            continue
        kind, symbol = fields[-2], _VERSION_SUFFIX.sub("", fields[-1])
        if symbol.startswith("emb_"):
            exports[symbol] = kind
    return exports


def check_library(declared, library_path):
    """Compares one library with the header's list; returns True if they match."""
    exports = library_exports(library_path)
    missing = sorted(declared - exports.keys())
    undeclared = sorted(exports.keys() - declared)
    # A header function must be code ("T"), not a data symbol that happens to share the name.
    not_code = sorted(name for name in declared & exports.keys() if exports[name] not in ("T", "t"))
    if not (missing or undeclared or not_code):
        print(f"PASS {library_path}: exports exactly the {len(declared)} header functions")
        return True
    print(f"FAIL {library_path}: exports differ from the header")
    for name in missing:
        print(f"  - {name}: declared in the header, not exported")
    for name in undeclared:
        print(f"  + {name}: exported, not declared in the header")
    for name in not_code:
        print(f"  ! {name}: exported as symbol type {exports[name]!r}, not a function")
    return False


def main(argv):
    if len(argv) < 3:
        sys.exit(f"usage: {argv[0]} HEADER LIB.so [LIB.so ...]")
    declared = header_functions(argv[1])
    if not declared:
        sys.exit(f"FAIL {argv[1]}: no EMB_API functions found")
    print(f"{argv[1]}: {len(declared)} functions: {', '.join(sorted(declared))}")
    results = [check_library(declared, path) for path in argv[2:]]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
