"""respond: the spoken instruction (rewrite.instruction_spoken) -> a new, concise spoken answer.

Recipe step 2 (docs/recipe.md section 3); the shared machinery is in stages.llm_stage. Each
response is checked for answering the instruction (stages.llm.fidelity).
"""
from __future__ import annotations

from stages.llm_stage import LLMStage


class RespondStage(LLMStage):
    version = "2"  # 2: answer check (answer_similarity, answer_judge)
    output_columns = ("response", "respond_raw", "respond_meta")
    fidelity_columns = ("answer_similarity", "answer_judge")
    fidelity_reason = "off_topic"
