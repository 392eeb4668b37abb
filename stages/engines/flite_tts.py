"""Debian's `flite` (CMU Flite) as a second family of offline voices: slt (female), kal (male).

Install with `apt-get install -y flite`. The binary runs once per clip (no shell); text goes
through a file, so nothing in it can be read as an option.
"""
from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf


class FliteEngine:
    kind = "flite"

    def __init__(self, binary: str = "flite", timeout_s: float = 120.0, threads: int = 1):
        found = shutil.which(binary)
        if found is None:
            raise RuntimeError(
                f"the flite TTS binary {binary!r} was not found; install it with "
                "`apt-get install -y flite` (Debian/Ubuntu) or pick other voices"
            )
        self.binary = found
        self.timeout_s = timeout_s
        listed = subprocess.run([found, "-lv"], capture_output=True, text=True, timeout=30, check=True)
        self.voices = set(listed.stdout.split(":", 1)[-1].split())
        self.workdir = tempfile.TemporaryDirectory(prefix="flite-")

    def check_speaker(self, speaker: str | None) -> None:
        if (speaker or "slt") not in self.voices:
            raise ValueError(f"flite has no voice {speaker!r}; it has {sorted(self.voices)}")

    def synthesize(self, text: str, speaker: str | None, seed: int) -> tuple[np.ndarray, int]:
        voice = speaker or "slt"
        folder = Path(self.workdir.name)
        text_file, wav_file = folder / "text.txt", folder / "out.wav"
        text_file.write_text(text, encoding="utf-8")
        done = subprocess.run(
            [self.binary, "-voice", voice, "-f", str(text_file), "-o", str(wav_file)],
            capture_output=True, text=True, timeout=self.timeout_s,
        )
        if done.returncode != 0:
            raise RuntimeError(f"flite exited with {done.returncode}: {done.stderr.strip()[:300]}")
        audio, rate = sf.read(wav_file, dtype="float32")
        return audio, int(rate)

    def version(self) -> str:
        out = subprocess.run([self.binary, "--version"], capture_output=True, text=True, timeout=30)
        found = re.search(r"version:\s*(\S+)", out.stdout)
        return found.group(1) if found else "flite"
