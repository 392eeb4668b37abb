"""The configuration (conf/) and the checked-in manifests (manifests/) as package resources, so a
clone, an editable install and an installed wheel find them the same way from any directory."""
from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def resource_dir(package: str) -> Path:
    # Both are plain folders inside the installed package set (never zipped), so a Path is safe.
    return Path(str(files(package)))


def conf_dir() -> Path:
    return resource_dir("conf")


def manifests_dir() -> Path:
    return resource_dir("manifests")
