"""The GPU estimate of the recipe from a rates table: per-stage device-hours, wall time on N GPUs,
the dominant stage, scaling only by a stated factor, and the one closing line."""
from types import SimpleNamespace

import pytest

from pipeline.errors import ConfigError
from pipeline.plan import Plan, format_plan
from pipeline.rates import EstimateSettings, estimate_line, format_estimate, gpu_estimate, load_table

TABLE = {
    "recipe_work": {"items": 200000, "stages": {
        "respond": {"work": 200000, "unit": "generations"},
        "speak_instruction": {"work": 418, "unit": "audio_h"},
        "verify_response": {"work": 200000, "unit": "clips"}}},
    "cpu_cores_per_gpu": 14,
    "device_scaling": [{"from": "H200", "to": "H100", "factor": 0.5}],
    "gpu_rates": [
        {"stage": "respond", "device": "H100", "rate": 4000.0, "unit": "output_tokens_per_s", "devices": 4,
         "tokens_per_generation": 100, "source": "published: https://example.org"},
        {"stage": "speak_instruction", "device": "H200", "rate": 1.0, "unit": "audio_h_per_device_min", "source": "measured"},
        {"stage": "verify_response", "device": "H100", "rate": 50.0, "unit": "clips_per_device_s", "baseline": True},
        {"stage": "verify_response", "device": "H100", "rate": 100.0, "unit": "clips_per_device_s"},
    ],
}


def test_device_hours_wall_time_and_dominant_stage():
    result = gpu_estimate(EstimateSettings(gpus=8, gpu_kind="H100"), TABLE)
    hours = {s.stage: s.device_h for s in result.stages}
    assert hours["respond"] == pytest.approx(200000 * 100 / 1000 / 3600)  # 4000 tok/s over 4 GPUs
    assert hours["speak_instruction"] == pytest.approx(418 / 60 / 0.5)  # H200 rate x0.5 for an H100
    assert hours["verify_response"] == pytest.approx(2000 / 3600)  # the faster, non-baseline row
    assert result.dominant.stage == "speak_instruction"
    assert result.total_wall_h == pytest.approx(sum(hours.values()) / 8)
    line = estimate_line(result)
    assert line == f"estimated: {sum(hours.values()) / 8:.1f} h on 8 x H100 for 200,000 items (dominant: speak_instruction)"
    before = gpu_estimate(EstimateSettings(), TABLE, baseline=True)
    assert {s.stage: s.device_h for s in before.stages}["verify_response"] == pytest.approx(4000 / 3600)
    lines = format_estimate(result, before)
    assert lines[-1] == line and any("scaled from H200 x0.5" in x for x in lines)


def test_unscaled_device_is_unknown_and_items_scale_the_work():
    result = gpu_estimate(EstimateSettings(gpus=2, gpu_kind="A100", items=50000), TABLE)
    assert [s.stage for s in result.stages if s.device_h is None] == ["respond", "speak_instruction", "verify_response"]
    assert result.stages[0].work == 50000
    assert estimate_line(result).startswith("estimated: at least 0.0 h on 2 x A100 for 50,000 items")


def test_settings_from_the_run_config():
    run = SimpleNamespace(resolved={"estimate": {"gpus": 16, "gpu_kind": "H200", "items": None}})
    assert EstimateSettings.from_run(run) == EstimateSettings(16, "H200", None)
    assert EstimateSettings.from_run(SimpleNamespace(resolved={})) == EstimateSettings()
    for bad in ({"gpus": 0}, {"gpu": 8}):
        with pytest.raises(ConfigError):
            EstimateSettings.from_run(SimpleNamespace(resolved={"estimate": bad}))


def test_plan_ends_with_the_estimate_line_and_the_checked_in_table_applies():
    result = gpu_estimate(EstimateSettings(), load_table())
    assert {s.stage for s in result.stages} >= {"rewrite", "respond", "speak_instruction", "units"}
    assert all(s.device_h > 0 for s in result.stages if s.device_h is not None)
    text = format_plan(Plan(data_root="x", stages=[], changes=[], notes=[], gpu_estimate=format_estimate(result)))
    assert text.splitlines()[-1].startswith("estimated: ") and text.count("estimated: ") == 1


def test_instructs2s_plan_for_the_full_profile_lists_missing_models_and_ends_with_the_estimate(tmp_path, capsys):
    """Before anything is downloaded: the plan runs, names what the user must supply, and estimates."""
    from pipeline.cli import main

    assert main(["plan", "profile=full", f"data_root={tmp_path / 'build'}", f"model_cache={tmp_path / 'models'}",
                 "estimate.gpus=16"]) == 0
    out = capsys.readouterr().out
    assert "not ready to build: speak_response" in out
    assert out.strip().splitlines()[-1].startswith("estimated: ") and " on 16 x H100 for 200,000 items" in out
