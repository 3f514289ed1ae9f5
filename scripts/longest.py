#!/usr/bin/env python3
"""Lists the longest Rust functions under src/ (outside #[cfg(test)] modules
and *tests.rs files), and files over 400 lines: the numbers the architecture
review asks for.

    scripts/longest.py [N]     the N longest functions (default 15)
"""
import pathlib
import re
import sys

FN = re.compile(r"^(\s*)(pub(\([a-z]+\))? )?(const )?(async )?fn (\w+)")


def functions(path):
    lines = path.read_text().splitlines()
    out = []
    in_tests = False
    for i, line in enumerate(lines):
        if line.startswith("#[cfg(test)]"):
            in_tests = True
        m = FN.match(line)
        if not m or in_tests:
            continue
        indent = len(m.group(1))
        end = i
        # The function ends at the first closing brace at its own indentation.
        for j in range(i + 1, len(lines)):
            if lines[j].startswith(" " * indent + "}") and not lines[j].startswith(" " * (indent + 1)):
                end = j
                break
            if lines[j].strip() == "" and False:
                pass
        if line.rstrip().endswith(";"):
            continue
        out.append((end - i + 1, f"{path}:{i + 1}", m.group(6)))
    return out


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    found = []
    big = []
    for path in sorted(pathlib.Path("src").rglob("*.rs")):
        if path.name.endswith("tests.rs") or "tests" in path.parts:
            continue
        found += functions(path)
        text = path.read_text()
        code = text.split("\n#[cfg(test)]")[0]
        count = code.count("\n") + 1
        if count > 400:
            big.append((count, str(path)))
    for length, where, name in sorted(found, reverse=True)[:n]:
        print(f"{length:4} {name:28} {where}")
    for count, path in sorted(big, reverse=True):
        print(f"file over 400 lines (outside tests): {path} {count}")


main()
