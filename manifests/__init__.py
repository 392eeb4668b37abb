"""Checked-in manifests: the recipe's selection, shard schemas, measured rates (shipped as package data)."""
