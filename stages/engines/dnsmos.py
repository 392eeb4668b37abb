"""DNSMOS: Microsoft's non-intrusive speech quality predictor, from the ONNX models the `speechmos`
package ships (no download).

One clip gives four mean opinion scores on a 1-5 scale: ITU-T P.808 overall quality, and the
P.835 triple SIG (the speech signal itself), BAK (background noise) and OVRL (overall). Each is
the mean over 9.01 s windows; a shorter clip is repeated to fill one window. The reference
implementation hops the window by 1 s, so a long clip is heard about 9 times over: `hop_s` sets
the hop (1.0 gives the reference's numbers, 9.01 hears each second once, about 9x cheaper).
"""
from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import onnxruntime
import speechmos.dnsmos

SAMPLE_RATE = 16_000
WINDOW_S = speechmos.dnsmos.INPUT_LENGTH  # 9.01 s
MODELS = Path(speechmos.dnsmos.__file__).parent / "dnsmos_models"
PRIMARY_MODEL = MODELS / "sig_bak_ovr.onnx"  # P.835 SIG/BAK/OVRL
P808_MODEL = MODELS / "model_v8.onnx"  # P.808 MOS
TAIL_S = 2.0  # the reference's last window ends under 1.99 s before the clip's end
COLUMNS = ("dnsmos_p808", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl")


def windows(clip: np.ndarray, hop_s: float) -> list[np.ndarray]:
    """The 9.01 s windows scored: speechmos' at hop_s=1.0, which leave under TAIL_S of a long clip's
    end unheard; a longer hop adds one window ending at the clip's end rather than leave more. (A
    short clip is repeated to fill a window: its tail was heard already.)"""
    length = int(WINDOW_S * SAMPLE_RATE)
    short = len(clip) < length
    while len(clip) < length:
        clip = np.append(clip, clip)
    count = int((np.floor(len(clip) / SAMPLE_RATE) - WINDOW_S) / hop_s) + 1
    starts = [int(i * hop_s * SAMPLE_RATE) for i in range(count)]
    if not short and len(clip) - (starts[-1] + length) > TAIL_S * SAMPLE_RATE:
        starts.append(len(clip) - length)
    return [clip[s:s + length] for s in starts]


class DNSMOS(speechmos.dnsmos.DNSMOS):
    """speechmos' DNSMOS (its features, calibration and, as `__call__`, its 1 s-hop reference
    scoring) with sessions of a set thread count and a settable hop."""

    def __init__(self, threads: int = 1, hop_s: float = 1.0):
        # speechmos opens its sessions on every core; one worker process per core scales better.
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.hop_s = hop_s
        self.primary_model_path = str(PRIMARY_MODEL)
        self.onnx_sess = onnxruntime.InferenceSession(str(PRIMARY_MODEL), sess_options=options,
                                                      providers=["CPUExecutionProvider"])
        self.p808_onnx_sess = onnxruntime.InferenceSession(str(P808_MODEL), sess_options=options,
                                                           providers=["CPUExecutionProvider"])
        self.audio_melspec(np.zeros(SAMPLE_RATE, dtype=np.float32))  # librosa's first call imports scipy.signal: seconds

    def score(self, clip: np.ndarray) -> dict[str, float]:
        """16 kHz mono float32 -> {dnsmos_p808, dnsmos_sig, dnsmos_bak, dnsmos_ovrl}."""
        # The models take samples in [-1, 1]: a louder clip is clipped, as a player would.
        clip = np.clip(clip, -1.0, 1.0).astype(np.float32)
        per_window = []
        for window in windows(clip, self.hop_s):
            mel = self.audio_melspec(audio=window[:-160]).astype(np.float32)[np.newaxis]
            [[p808]] = self.p808_onnx_sess.run(None, {"input_1": mel})[0]
            sig, bak, ovrl = self.onnx_sess.run(None, {"input_1": window[np.newaxis]})[0][0]
            per_window.append([p808, *self.get_polyfit_val(sig, bak, ovrl, False)])
        p808, sig, bak, ovrl = np.mean(per_window, axis=0)
        return {"dnsmos_p808": float(p808), "dnsmos_sig": float(sig), "dnsmos_bak": float(bak),
                "dnsmos_ovrl": float(ovrl)}

    def version(self) -> str:
        return f"speechmos {metadata.version('speechmos')} DNSMOS (P.835 sig_bak_ovr, P.808 model_v8)"
