#!/usr/bin/env python3
"""Writes a ```cpp block of a Markdown file that defines main() to a .cpp
file, so the examples in the docs are compiled and run as tests.

    extract_example.py DOC.md OUT.cpp [N]

N (default 0) picks the N-th such block, counting from 0, for a document
that holds several runnable programs."""
import re
import sys

src, dst = sys.argv[1], sys.argv[2]
index = int(sys.argv[3]) if len(sys.argv) > 3 else 0
text = open(src, encoding="utf-8").read()
blocks = re.findall(r"```cpp\n(.*?)```", text, flags=re.S)
runnable = [b for b in blocks if re.search(r"\bint main\(", b)]
if index >= len(runnable):
    sys.exit(f"{src}: no ```cpp block number {index} with int main() "
             f"(it has {len(runnable)})")
with open(dst, "w", encoding="utf-8") as out:
    out.write(f"// Generated from {src} (runnable block {index}); edit the document, not this file.\n")
    out.write(runnable[index])
