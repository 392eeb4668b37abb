"""`make bench`: each module's main() prints its figures and ratios measured side by side."""
