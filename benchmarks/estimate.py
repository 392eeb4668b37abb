"""GPU-hours per stage of the 200K recipe and its wall time on N GPUs of a kind, from the rates
table (manifests/rates.yaml: recipe_work, gpu_rates, device_scaling). Runs nothing.

    python -m benchmarks.estimate                      # 8 x H100, the recipe's 200,000 items
    python -m benchmarks.estimate --gpus 16 --gpu-kind H200 --items 50000
    python -m benchmarks.estimate --rates FILE         # another table (e.g. one gpu_rates wrote)

`instructs2s plan profile=full` ends with the same estimate (settings: `estimate.*`).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.rates import EstimateSettings, format_estimate, gpu_estimate, load_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.estimate", description=__doc__.split("\n")[0])
    defaults = EstimateSettings()
    parser.add_argument("--gpus", type=int, default=defaults.gpus, help="GPUs the build runs on")
    parser.add_argument("--gpu-kind", default=defaults.gpu_kind, help="their kind (H100, H200, ...)")
    parser.add_argument("--items", type=int, default=None, help="items to build (default: the recipe's)")
    parser.add_argument("--rates", type=Path, default=None, help="rates table (default: manifests/rates.yaml)")
    args = parser.parse_args(argv)
    if args.rates is not None and not args.rates.is_file():
        parser.error(f"--rates: no file {args.rates}")
    try:
        settings = EstimateSettings(gpus=args.gpus, gpu_kind=args.gpu_kind, items=args.items)
    except ValueError as error:
        parser.error(str(error))
    table = load_table(args.rates)
    after = gpu_estimate(settings, table)
    before = gpu_estimate(settings, table, baseline=True)
    print("\n".join(format_estimate(after, before)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
