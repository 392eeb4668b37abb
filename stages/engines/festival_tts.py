"""Debian's Festival speech synthesizer as an offline voice family: the HTS voice
cmu_us_slt_arctic_hts (female; `festvox-us-slt-hts`) reads the local model's instructions as
intelligibly as Piper joe and better than flite (benchmarks/voices.py).

Install with `apt-get install -y festival festvox-us-slt-hts`. `text2wave` runs once per clip (no
shell); text goes through a file, so nothing in it is read as Scheme.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

INSTALL = "apt-get install -y festival festvox-us-slt-hts"


class FestivalEngine:
    kind = "festival"

    def __init__(self, binary: str = "text2wave", timeout_s: float = 120.0, threads: int = 1):
        found, festival = shutil.which(binary), shutil.which("festival")
        if found is None or festival is None:
            raise RuntimeError(f"the Festival TTS binaries ({binary!r}, 'festival') were not found; install them "
                               f"with `{INSTALL}` (Debian/Ubuntu) or pick other voices")
        self.binary, self.festival, self.timeout_s = found, festival, timeout_s
        listed = subprocess.run([festival, "-b", "(print (voice.list))"], capture_output=True, text=True,
                                timeout=30, check=True)
        self.voices = set(re.findall(r"[\w-]+", listed.stdout))
        self.workdir = tempfile.TemporaryDirectory(prefix="festival-")

    def check_speaker(self, speaker: str | None) -> None:
        if speaker not in self.voices:
            raise ValueError(f"festival has no voice {speaker!r}; it has {sorted(self.voices)} ({INSTALL})")

    def synthesize(self, text: str, speaker: str | None, seed: int) -> tuple[np.ndarray, int]:
        folder = Path(self.workdir.name)
        text_file, wav_file = folder / "text.txt", folder / "out.wav"
        text_file.write_text(text, encoding="utf-8")
        done = subprocess.run([self.binary, "-eval", f"(voice_{speaker})", "-o", str(wav_file), str(text_file)],
                              capture_output=True, text=True, timeout=self.timeout_s)
        if done.returncode != 0 or "SIOD ERROR" in done.stderr:  # an unknown voice still exits 0
            raise RuntimeError(f"text2wave exited with {done.returncode}: {done.stderr.strip()[:300]}")
        audio, rate = sf.read(wav_file, dtype="float32")
        return audio, int(rate)

    def version(self) -> str:
        out = subprocess.run([self.festival, "--version"], capture_output=True, text=True, timeout=30)
        return out.stdout.split(":", 1)[-1].strip()  # it starts with the binary's path
