"""Llama-3-70B-Instruct on vLLM: not measurable here (vLLM's CUDA build is not installed on the
benchmark machines); prints the published H100 rows the rates table carries, with their sources.

    python -m benchmarks.gpu_rates.llm
"""
from __future__ import annotations

import sys

from pipeline.rates import load_table


def run() -> list[dict]:
    rows = []
    for row in load_table().get("gpu_rates") or []:
        if row.get("unit") == "output_tokens_per_s" and str(row.get("source", "")).startswith("published"):
            tokens_s = row["rate"] / row.get("devices", 1)
            print(f"  {row['stage']}: {row['engine']}: {tokens_s:.0f} output tokens/s per {row['device']} "
                  f"({row['source']})")
            rows.append(row)
    return rows


if __name__ == "__main__":
    sys.exit(0 if run() else 1)
