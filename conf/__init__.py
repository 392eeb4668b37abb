"""Hydra configuration of the pipeline and the trainer (YAML files; a package so installs ship it)."""
