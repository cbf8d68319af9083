"""Read back the rows a loader said it dropped (`errors.list_dropped`'s lines)."""
import re


def listed(printed: str) -> dict[int, str]:
    """{row: its line} for every row named in a "- 3, 5–7 行目 [field] why → fix" line."""
    rows = {}
    for line in printed.splitlines():
        found = re.match(r"\s*- ([\d, –]+) 行目(.*)", line)
        for part in found.group(1).split(", ") if found else []:
            first, _, last = part.partition("–")
            rows |= {row: found.group(2).strip() for row in range(int(first), int(last or first) + 1)}
    return rows
