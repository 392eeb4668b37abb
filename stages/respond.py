"""respond: the spoken instruction (rewrite.instruction_spoken) -> a new, concise spoken answer.

Recipe step 2 (docs/recipe.md section 3); the shared machinery is in stages.llm_stage.
"""
from __future__ import annotations

from stages.llm_stage import LLMStage


class RespondStage(LLMStage):
    version = "1"
    output_columns = ("response", "respond_raw", "respond_meta")
