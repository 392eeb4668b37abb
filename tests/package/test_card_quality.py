"""The card's quality view: the funnel from the drop account, every float column of the rows as a
score (table and small multiples), and the instruction voices with their shares."""
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stages.package_card import DropAccount, funnel, quality_section
from stages.package_plots import write_plots
from stages.package_stats import training_stats

PIPELINE = ["ingest", "rewrite", "respond", "speak_instruction", "speak_response", "verify_instruction",
            "verify_response", "units", "package"]


def test_the_funnel_ends_at_the_published_count_with_each_stages_main_reasons():
    account = DropAccount(read=47, kept=15, dropped=[("ingest", "bad_record", 4), ("ingest", "code", 2),
                                                     ("rewrite", "empty_output", 3), ("verify_instruction", "wer_too_high", 7),
                                                     ("verify_instruction", "duration_out_of_bounds", 1),
                                                     ("package", "too_long", 15)],
                          also=[], unaccounted=[])
    steps = funnel(account, PIPELINE)
    assert steps[0] == ("read", 47, "")
    assert dict((s, n) for s, n, _ in steps)["verify_instruction"] == 47 - 6 - 3 - 8
    assert steps[-1][1] == account.kept
    assert dict((s, why) for s, _, why in steps)["ingest"] == "bad_record: 4, code: 2"


def rows_file(path, speakers, extra_scores):
    n = len(speakers)
    columns = {
        "source": ["alpaca"] * n, "instruction_spoken": ["say a thing"] * n, "response": ["a thing"] * n,
        "instruction_duration": np.linspace(1, 3, n), "response_duration": np.linspace(2, 5, n),
        "instruction_wer": np.zeros(n), "response_wer": np.linspace(0, 0.2, n),
        "response_units": [[1, 2, 3]] * n, "response_units_per_second": np.full(n, 29.0),
        "instruction_speaker": speakers, **extra_scores,
    }
    pq.write_table(pa.table(columns), path)
    return path


def test_every_float_column_is_a_score_and_voices_have_shares(tmp_path):
    speakers = ["piper:joe"] * 3 + ["flite:slt"]
    path = rows_file(tmp_path / "train.parquet", speakers,
                     {"instruction_dnsmos_ovrl": np.array([3.1, 3.3, np.nan, 2.9]),
                      "meaning_similarity": np.array([0.9, 0.8, 0.7, 0.95], dtype=np.float32)})
    stats = training_stats([path])
    assert {"instruction_dnsmos_ovrl", "meaning_similarity", "instruction_wer", "response_duration"} <= set(stats.scores)
    assert stats.voices == {"piper:joe": 3, "flite:slt": 1}
    text = "\n".join(quality_section(stats))
    assert "Instruction voices: 2 distinct." in text and "| piper:joe | 3 | 75.0% |" in text
    assert "| `instruction_dnsmos_ovrl` | 3 | 3.1 |" in text  # the missing score is left out

    plots = write_plots(stats, funnel(DropAccount(read=6, kept=4, dropped=[("rewrite", "x", 2)], also=[],
                                                  unaccounted=[]), PIPELINE), tmp_path / "plots")
    names = [name for _, name in plots]
    assert names[0] == "funnel.png" and "scores.png" in names
    assert all((tmp_path / "plots" / name).read_bytes().startswith(b"\x89PNG") for name in names)
