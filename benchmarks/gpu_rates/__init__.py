"""Per-device rates of the full profile's engines at real size with random weights (nothing is
downloaded): `python -m benchmarks.gpu_rates [--tiny] [--out FILE]`, docs/benchmarks.md."""
