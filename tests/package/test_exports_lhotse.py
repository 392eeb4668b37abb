"""The lhotse export, read back with lhotse: manifests load, a cut's audio and its response
recording decode to the stored clips, custom fields carry the response and its units."""
import io

import numpy as np
import pyarrow.parquet as pq
import pytest
import soundfile as sf
from package_upstream import TRAINED, instruction_text, response_text

from stages.exports import discover_splits, run_exports
from stages.exports.settings import ExportSettings


@pytest.fixture(scope="module")
def export(package_run, tmp_path_factory):
    root, _ = package_run
    splits = discover_splits(root)
    [(fmt, out, line)] = run_exports(splits, tmp_path_factory.mktemp("export"), ExportSettings(formats=["lhotse"]))
    assert fmt == "lhotse" and "Lhotse manifests" in line
    rows = {r["id"]: r for files in splits.values() for f in files for r in pq.read_table(f).to_pylist()}
    return out, splits, rows


def clip(flac: bytes) -> np.ndarray:
    return sf.read(io.BytesIO(flac), dtype="float32")[0]


def test_cuts_load_their_audio_and_custom_fields(export, tmp_path, monkeypatch):
    from lhotse import CutSet, RecordingSet, SupervisionSet

    out, splits, rows = export
    monkeypatch.chdir(tmp_path)  # recordings point at absolute paths
    seen = []
    for split in splits:
        cuts = CutSet.from_file(out / f"instructs2s_cuts_{split}.jsonl.gz")
        recordings = RecordingSet.from_file(out / f"instructs2s_recordings_{split}.jsonl.gz")
        supervisions = SupervisionSet.from_file(out / f"instructs2s_supervisions_{split}.jsonl.gz")
        texts = {s.id: s.text for s in supervisions}
        assert len(recordings) == len(texts) == 2 * len(cuts)
        for cut in cuts:
            row = rows[cut.id]
            assert cut.sampling_rate == 16000
            np.testing.assert_array_equal(cut.load_audio()[0], clip(row["instruction_audio"]["bytes"]))
            np.testing.assert_array_equal(cut.load_response_recording()[0], clip(row["response_audio"]["bytes"]))
            assert cut.supervisions[0].text == instruction_text(cut.id)
            assert cut.response == response_text(cut.id) == texts[f"{cut.id}_response"]
            assert cut.response_units == row["response_units"] and cut.source == "sample"
            seen.append(cut.id)
    assert sorted(seen) == sorted(TRAINED)
