"""rewrite: a written instruction (ingest.prompt) -> what a person would say out loud.

Recipe step 1 (docs/recipe.md section 2); the shared machinery is in stages.llm_stage.
"""
from __future__ import annotations

from stages.llm_stage import LLMStage


class RewriteStage(LLMStage):
    version = "1"
    output_columns = ("instruction_spoken", "rewrite_raw", "rewrite_meta")
