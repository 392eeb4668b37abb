"""Training: both losses fall when overfitting, a resumed run continues exactly, the run's
config is written atomically and user errors end in one line with exit code 2."""

import os

import pytest

from omni import checkpoint as ckpt
from omni.config import run_dir
from omni.metrics import read
from omni.train import main, train


def _losses(run_dir, stage, split="train"):
    return {int(r["step"]): float(r["loss"]) for r in read(run_dir)
            if int(r["stage"]) == stage and r["split"] == split}


def test_overfit_cross_entropy_and_ctc_fall_by_half(trained_run):
    for stage in (1, 2):
        losses = _losses(trained_run, stage)
        first, last = losses[min(losses)], losses[max(losses)]
        assert last <= 0.5 * first, f"stage {stage}: loss {first:.3f} -> {last:.3f}"


def test_run_writes_final_checkpoints_and_metrics(trained_run):
    names = [c.path.name for c in ckpt.checkpoints(trained_run)]
    assert names[-1] == "stage2-step0000008" and "stage1-step0000008" in names
    assert all(c.meta["done"] for c in ckpt.checkpoints(trained_run))
    row = read(trained_run)[0]
    assert float(row["tokens_per_s"]) > 0 and float(row["lr"]) > 0
    assert (trained_run / "config.yaml").exists() and (trained_run / "train.log").exists()


def test_rerun_of_a_finished_run_does_nothing(trained_run, tiny_data, omni_cfg):
    before = len(read(trained_run))
    train(omni_cfg(tiny_data, "train.epochs=8", "train.stage1.lr=2e-2", "train.stage2.lr=1e-2"))
    assert len(read(trained_run)) == before


@pytest.mark.parametrize("stage", [1, 2])
def test_resumed_run_gives_the_same_next_loss(mixed_data, stage, omni_cfg):
    # 6 usable items, batch 2: 3 steps; the break falls inside the epoch (data position matters)
    common = [f"stage={stage}", "train.epochs=1", "data.shuffle_buffer=3"]
    whole = train(omni_cfg(mixed_data, f"run_name=whole{stage}", *common))
    parts = omni_cfg(mixed_data, f"run_name=parts{stage}", *common, "interrupt_after_steps=2")
    cut = train(parts)
    assert ckpt.latest(cut).step == 2 and not ckpt.latest(cut).meta["done"]
    train(parts)  # resumes at step 3
    a, b = _losses(whole, stage), _losses(cut, stage)
    assert sorted(a) == sorted(b) == [1, 2, 3]
    for step in (1, 2, 3):
        assert b[step] == pytest.approx(a[step], rel=1e-6, abs=1e-7), step


def test_checkpoints_off_and_evaluation_on_the_validation_split(tmp_path, omni_cfg, published_layout):
    from omni.synthetic import make_rows

    rows = make_rows(5, seed=4)
    published_layout(tmp_path, rows[:2], rows[2:])  # data/train-*.parquet (2 items), data/validation-* (3)
    run = train(omni_cfg(tmp_path, "run_name=no-checkpoints", "stage=1", "max_steps=2", "checkpoint.enabled=false"))
    assert ckpt.checkpoints(run) == []
    assert sorted(_losses(run, 1)) == [1, 2]
    evals = [r for r in read(run) if r["split"] == "eval"]
    assert [int(r["items"]) for r in evals] == [3]  # the validation items; train's 2 were all trained on
    assert "evaluation items: the validation split (1 files)" in (run / "train.log").read_text()


def test_real_size_profile_has_the_recipe_shapes(tmp_path):
    from omni.config import load_config

    t = load_config([f"data_root={tmp_path}", "train=real_size"]).train
    assert t.encoder.name is None and t.encoder.config.d_model == 1280 and t.encoder.config.encoder_layers == 32
    assert t.llm.name is None and t.llm.config.hidden_size == 4096 and t.llm.config.num_hidden_layers == 32
    assert t.llm.config.num_key_value_heads == 8 and t.llm.config.intermediate_size == 14336
    assert (t.precision, t.batch_size, t.stage1.lr, t.decoder.ffn) == ("bf16", 32, 2.0e-5, 11008)  # from full


def test_config_yaml_is_replaced_atomically(tiny_data, omni_cfg, monkeypatch):
    cfg = omni_cfg(tiny_data, "run_name=atomic-config", "stage=1", "max_steps=1")
    run = run_dir(cfg)
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("old: 1\n")

    def killed(*args, **kwargs):
        raise OSError("simulated crash")

    monkeypatch.setattr(os, "replace", killed)  # dies just before the new file takes the name
    with pytest.raises(OSError, match="simulated"):
        train(cfg)
    assert (run / "config.yaml").read_text() == "old: 1\n"
    assert os.listdir(run) == ["config.yaml"]  # no half-written file, no temp file left


@pytest.mark.parametrize("args, message", [
    (["data_root={missing}"], "is not a folder"),
    (["data_root={empty}"], "no training shards"),
    (["data_root={data}", "train.epoch=3"], "train.epoch"),
    (["data_root={data}", "stage=3"], "stage=3"),
    (["data_root={data}", "train.epochs=many"], "train.epochs='many': expected an integer"),
    (["data_root={data}", "train.stage1.epochs=1.5"], "expected an integer"),
    (["data_root={data}", "train.stage1.lr=fast"], "expected a number"),
    (["data_root={data}", "log.tensorboard=maybe"], "expected true or false"),
    ([], "data_root"),
])
def test_user_errors_give_one_line_and_exit_code_2(args, message, tiny_data, tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = [a.format(missing=tmp_path / "nope", empty=tmp_path / "empty", data=tiny_data) for a in args]
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert len(err.strip().splitlines()) == 1 and message in err, err
    assert "Traceback" not in err


def test_resuming_with_another_model_shape_is_a_user_error(tiny_data, omni_cfg):
    from omni.config import UserError

    first = ["run_name=reshaped", "stage=1", "max_steps=2", "interrupt_after_steps=1"]
    train(omni_cfg(tiny_data, *first))
    with pytest.raises(UserError, match="trained with other model settings"):
        train(omni_cfg(tiny_data, *first, "train.adaptor.hidden=16"))


def test_an_older_metrics_file_gets_todays_columns(tmp_path):
    from omni.metrics import FIELDS, MetricsLog

    (tmp_path / "metrics.csv").write_text("time,stage,step,loss\n1.0,1,1,2.5\n")
    log = MetricsLog(tmp_path, tensorboard=False)
    log.write(stage=1, step=2, loss="2.0", tflops_per_s="0.1")
    rows = read(tmp_path)
    assert tuple(rows[0]) == FIELDS
    assert [(r["step"], r["loss"], r["tflops_per_s"]) for r in rows] == [("1", "2.5", ""), ("2", "2.0", "0.1")]
