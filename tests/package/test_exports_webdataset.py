"""The WebDataset export, streamed with webdataset: every sample decodes (FLAC with soundfile,
`json` with webdataset's own handler) and shards hold the configured number of items."""
import io

import pytest
import soundfile as sf
from package_upstream import TRAINED, instruction_text, response_text

from stages.exports import discover_splits, run_exports
from stages.exports.files import count_rows
from stages.exports.settings import ExportSettings

SHARD_ITEMS = 3


@pytest.fixture(scope="module")
def export(package_run, tmp_path_factory):
    root, _ = package_run
    splits = discover_splits(root)
    settings = ExportSettings(formats=["webdataset"], webdataset_shard_items=SHARD_ITEMS)
    [(_, out, _)] = run_exports(splits, tmp_path_factory.mktemp("export"), settings)
    return out, splits


def test_shards_stream_and_decode(export):
    import webdataset as wds

    out, splits = export
    seen = []
    for split, files in splits.items():
        shards = -(-count_rows(files) // SHARD_ITEMS)
        assert sorted(p.name for p in (out / split).iterdir()) == [f"{split}-{i:06d}.tar" for i in range(shards)]
        url = f"{out}/{split}/{split}-{{000000..{shards - 1:06d}}}.tar"  # the brace form docs/exports.md gives
        flac = wds.handle_extension("flac", lambda data: sf.read(io.BytesIO(data), dtype="float32"))
        for sample in wds.WebDataset(url, shardshuffle=False).decode(flac):
            meta = sample["json"]
            assert sample["__key__"] == meta["id"]  # the test ids are already file-safe
            assert meta["instruction_spoken"] == instruction_text(meta["id"])
            assert meta["response"] == response_text(meta["id"])
            assert meta["response_units"] and all(0 <= u < 6 for u in meta["response_units"])
            for side in ("instruction", "response"):
                audio, rate = sample[f"{side}.flac"]
                assert rate == 16000 and len(audio) / rate == pytest.approx(meta[f"{side}_duration"], abs=1e-3)
            seen.append(meta["id"])
    assert sorted(seen) == sorted(TRAINED)
