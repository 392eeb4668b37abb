"""`errors`: the ledger's dropped items as a terminal table, TSV, CSV or JSON lines.

Ids and details come from the data: in the terminal table every control character (a newline,
an ANSI escape) is shown escaped so it cannot break the output or reach the terminal. TSV
escapes tabs and newlines the way Postgres' COPY does; CSV and JSON quote by their own rules.
"""
from __future__ import annotations

import csv
import json
import sys
import unicodedata

from pipeline.ledger import errors_table
from pipeline.shards import Layout

FIELDS = ["stage", "shard", "id", "reason", "detail"]
_TSV_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def escape_controls(text: str) -> str:
    """Every control or format character (C0, C1, DEL, bidi overrides) as a visible escape."""
    return "".join(
        c if unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co") else
        (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
        for c in text
    )


def print_errors(layout: Layout, stage: str | None, fmt: str = "text", out=None) -> int:
    out = out or sys.stdout
    rows = errors_table(layout, stage).to_pylist()
    if fmt == "json":
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=True) + "\n")
    elif fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=FIELDS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    elif fmt == "tsv":
        out.write("\t".join(FIELDS) + "\n")
        for row in rows:
            out.write("\t".join(str(row[f]).translate(_TSV_ESCAPES) for f in FIELDS) + "\n")
    elif not rows:
        out.write("no errors recorded\n")
    else:
        for row in rows:
            detail = row["detail"] if len(row["detail"]) <= 160 else row["detail"][:159] + "…"
            out.write("\t".join(escape_controls(str(v)) for v in
                                (row["stage"], row["id"], row["reason"], detail)) + "\n")
    return len(rows)
