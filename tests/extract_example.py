#!/usr/bin/env python3
"""Writes the first ```cpp block of a Markdown file that defines main() to a
.cpp file, so the examples in the docs are compiled and run as tests."""
import re
import sys

src, dst = sys.argv[1], sys.argv[2]
text = open(src, encoding="utf-8").read()
blocks = re.findall(r"```cpp\n(.*?)```", text, flags=re.S)
runnable = [b for b in blocks if re.search(r"\bint main\(", b)]
if not runnable:
    sys.exit(f"{src}: no ```cpp block with int main()")
with open(dst, "w", encoding="utf-8") as out:
    out.write(f"// Generated from {src}; edit the document, not this file.\n")
    out.write(runnable[0])
