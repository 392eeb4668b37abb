"""Which exports the package stage writes, and each format's knobs (values: conf/stages/package.yaml)."""
from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field

# Format name -> the package its exporter needs beyond the base install (the `export` extra).
FORMATS: dict[str, str | None] = {
    "llama_omni": None,
    "instructs2s_release": None,
    "lhotse": "lhotse",
    "webdataset": "webdataset",
}


@dataclass
class ExportSettings:
    formats: list[str] = field(default_factory=lambda: ["llama_omni"])  # see FORMATS; []: no export
    user_prompt: str = "Please directly answer the questions in the user's speech."  # llama_omni: after <speech>
    webdataset_shard_items: int = 1000  # webdataset: items per tar shard

    def __post_init__(self):
        for name in self.formats:
            if name not in FORMATS:
                raise ValueError(f"export.formats: unknown format {name!r}; known: {', '.join(FORMATS)}")
            package = FORMATS[name]
            # Checked here, before a build of hours, not when finalize reaches the export.
            if package and importlib.util.find_spec(package) is None:
                raise ValueError(f"export format {name!r} needs the {package} package: "
                                 "pip install 'instructs2s[export]'")
        if len(set(self.formats)) != len(self.formats):
            raise ValueError(f"export.formats lists a format twice: {self.formats}")
        if self.webdataset_shard_items < 1:
            raise ValueError(f"export.webdataset_shard_items must be >= 1, got {self.webdataset_shard_items}")
