"""profile=full_rehearsal is the full profile with only model locations, devices, dtypes,
parallelism, pins, environments, the source, offline, the WER gates and the card's notice changed
(compose only: no model is loaded)."""
from __future__ import annotations

from config_diff import differing, flatten, outside
from omegaconf import OmegaConf

from pipeline.cli import compose_config
from pipeline.config import validate

# Keys of the resolved config that may differ between profile=full and profile=full_rehearsal.
ALLOWED = [
    "profile",  # the profile's name
    "offline",  # stand-ins and the bundled sample: nothing to download
    "source.*",  # the bundled sample instead of the hub recipe source
    "stages.ingest.source.*",  # ingest's copy of ${source}
    # model locations -> the stand-ins of scripts/make_standins.py
    "stages.rewrite.model", "stages.respond.model",
    "stages.speak_response.voices.*.model",
    "stages.speak_instruction.voices.*.model",
    "stages.units.checkpoint", "stages.units.checkpoint_sha256", "stages.units.device",
    "stages.units.kmeans.centroids", "stages.units.kmeans.centroids_sha256",
    "stages.units.cosyvoice2.checkpoint", "stages.units.cosyvoice2.checkpoint_sha256",
    "stages.verify_instruction.asr_model", "stages.verify_response.asr_model",
    # dtypes
    "stages.rewrite.dtype", "stages.respond.dtype",
    "stages.verify_instruction.asr_compute_type", "stages.verify_response.asr_compute_type",
    # devices
    "stages.verify_instruction.asr_device", "stages.verify_response.asr_device",
    # parallelism and the CPU build of vLLM (speed only: see conf/stages/rewrite.yaml)
    "stages.rewrite.engine.tensor_parallel_size", "stages.respond.engine.tensor_parallel_size",
    "stages.rewrite.engine.enforce_eager", "stages.respond.engine.enforce_eager",
    "stages.rewrite.engine.cpu_kvcache_gib", "stages.respond.engine.cpu_kvcache_gib",
    "stages.rewrite.engine.enable_chunked_prefill", "stages.respond.engine.enable_chunked_prefill",
    # environments: CosyVoice's own interpreter (scripts/setup_cosyvoice.sh)
    "stages.speak_instruction.python",
    # gates a random model cannot pass, opened so items reach the stages after them (scores still kept)
    "stages.verify_instruction.max_wer", "stages.verify_response.max_wer",
    "stages.rewrite.fidelity.min_similarity", "stages.respond.fidelity.min_similarity",
    "stages.rewrite.fidelity.min_judge", "stages.respond.fidelity.min_judge",
    # the card says it is a rehearsal
    "stages.package.card.notice",
]


def resolved(profile: str) -> dict[str, object]:
    return flatten(OmegaConf.to_container(compose_config([f"profile={profile}"]), resolve=True))


def test_rehearsal_differs_from_full_only_in_allowed_keys():
    full, rehearsal = resolved("full"), resolved("full_rehearsal")
    keys = differing(full, rehearsal)
    assert keys, "the rehearsal changes nothing"
    stray = outside(keys, ALLOWED)
    assert not stray, {k: (full.get(k, "<absent>"), rehearsal.get(k, "<absent>")) for k in stray}


def test_rehearsal_points_at_the_standins_offline():
    run = validate(compose_config(["profile=full_rehearsal"]))
    assert run.root.profile == "full_rehearsal" and run.root.offline
    stages = {node.name: node.settings for node in run.stages}
    assert stages["rewrite"].model.endswith("/standins/llama")
    assert stages["rewrite"].engine.tensor_parallel_size == 1
    assert stages["verify_response"].asr_model.endswith("/standins/whisper")
    assert stages["speak_response"].voices[0]["model"].endswith("/standins/voices/en_US-ljspeech-high.onnx")
    # what the rehearsal is for: the full profile's recipe settings are all still there
    full = {node.name: node.settings for node in validate(compose_config(["profile=full"])).stages}
    assert stages["rewrite"].max_model_len == full["rewrite"].max_model_len
    assert stages["verify_response"].beam_size == full["verify_response"].beam_size == 5
    assert stages["speak_response"].workers == full["speak_response"].workers
