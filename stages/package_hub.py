"""Optional upload of the card, plots and training shards to a Hugging Face dataset repo.

`upload_folder` of huggingface_hub 2.x is the large-folder upload (it replaced
`upload_large_folder`): files stream in several commits, and rerunning resumes, skipping what
the hub already has, so an interrupted upload of many shards continues shard by shard.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

from pipeline.errors import ConfigError

log = logging.getLogger(__name__)

UPLOADED = ["README.md", "plots/*.png", "data/*.parquet"]


def push_to_hub(data_root: Path, repo_id: str, private: bool, token_env: str) -> None:
    from huggingface_hub import HfApi

    token = os.environ.get(token_env)
    if not token:
        raise ConfigError(f"push_to_hub: set the hub token in ${token_env}")
    api = HfApi(token=token)
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    log.info("uploading %s to the hub dataset %s", data_root, repo_id)
    api.upload_folder(repo_id=repo_id, repo_type="dataset", folder_path=str(data_root), allow_patterns=UPLOADED,
                      delete_patterns=["data/*.parquet", "train/*.parquet"],  # shards of an older build or layout
                      commit_message="Update InstructS2S training shards and card")
