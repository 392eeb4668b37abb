"""The InstructS2S-200K release layout, parsed back as its readers do: the `conversation`
turns' fields, `speech` relative to the split folder, and the "<12><34>" unit string read
with Lyra's re.findall(r"<(\\d+)>")."""
import json
import re

import pyarrow.parquet as pq
import soundfile as sf
from package_upstream import TRAINED, instruction_text, response_text

from stages.exports import discover_splits, run_exports
from stages.exports.settings import ExportSettings


def test_conversations_parse_back_to_the_units(package_run, tmp_path):
    root, _ = package_run
    splits = discover_splits(root)
    [(_, out, _)] = run_exports(splits, tmp_path, ExportSettings(formats=["instructs2s_release"]))
    units = {r["id"]: r["response_units"] for files in splits.values() for f in files
             for r in pq.read_table(f, columns=["id", "response_units"]).to_pylist()}
    seen = []
    for split in splits:
        for item in json.loads((out / split / "conversations.json").read_text()):
            human, gpt = item["conversation"]
            assert set(human) == set(gpt) == {"from", "speech", "text", "unit"}
            assert (human["from"], gpt["from"], human["unit"]) == ("human", "gpt", None)
            assert (human["text"], gpt["text"]) == (instruction_text(item["id"]), response_text(item["id"]))
            assert [int(n) for n in re.findall(r"<(\d+)>", gpt["unit"])] == units[item["id"]]
            for turn, suffix in ((human, "user"), (gpt, "assistant")):
                assert turn["speech"] == f"wav/{item['id']}/{item['id']}-1-{suffix}.wav"
                info = sf.info(out / split / turn["speech"])
                assert (info.samplerate, info.channels) == (16000, 1) and info.frames > 0
            seen.append(item["id"])
    assert sorted(seen) == sorted(TRAINED)
