"""rewrite: a written instruction (ingest.prompt) -> what a person would say out loud.

Recipe step 1 (docs/recipe.md section 2); the shared machinery is in stages.llm_stage. Each
rewrite is checked for keeping the original's meaning (stages.llm.fidelity).
"""
from __future__ import annotations

from stages.llm_stage import LLMStage


class RewriteStage(LLMStage):
    version = "2"  # 2: meaning check (meaning_similarity, meaning_judge)
    output_columns = ("instruction_spoken", "rewrite_raw", "rewrite_meta")
    fidelity_columns = ("meaning_similarity", "meaning_judge")
    fidelity_reason = "meaning_changed"
