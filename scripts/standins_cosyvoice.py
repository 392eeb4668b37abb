"""A CosyVoice-300M-SFT model folder with tiny random weights (the stand-in of profile=full_rehearsal).

The real weights cannot be had offline. This writes a folder of the same layout (cosyvoice.yaml,
llm.pt, flow.pt, hift.pt, campplus.onnx, speech_tokenizer_v1.onnx, spk2info.pt) from the upstream
classes at small sizes, with the recipe's two English SFT speakers, so the CosyVoice engine runs
the real upstream code path end to end: it says nothing (noise), but through every call the
real model makes. Runs in the CosyVoice environment (scripts/setup_cosyvoice.sh):

    .venv-cosyvoice/bin/python scripts/standins_cosyvoice.py OUT_DIR [SEED] [--zero-shot | --cosyvoice2]

--zero-shot makes the same folder ready for zero-shot cloning: campplus.onnx and
speech_tokenizer_v1.onnx become graphs that run on what the frontend feeds them (a speaker
embedding of 192 values; integer speech tokens at 50 Hz from the 128-bin log-mel and its length),
and voice_bank/ holds seeded prompt clips (16 kHz WAV) with their transcripts (.txt). Without a
flag the output is the SFT folder, unchanged.

--cosyvoice2 writes CosyVoice2-0.5B's layout instead (cosyvoice2.yaml, llm.pt, flow.pt, hift.pt,
campplus.onnx, speech_tokenizer_v2.onnx at 25 Hz with 6561 tokens, CosyVoice-BlankEN/: a tiny
random Qwen2 with a small byte-level BPE tokenizer trained here) and the same voice_bank/: the
zero-shot voices of the multi-turn recipe. Its flow encoder keeps the real width (512): the
upstream class fixes it.
"""
from __future__ import annotations

import sys
from pathlib import Path

PROMPT_RATE = 16000
# Prompt clips of the zero-shot stand-in: name -> (pitch in Hz, transcript). Synthetic voiced
# sound, not speech: the pitch only makes the clips differ as two speakers would.
PROMPTS = {
    "male_1": (110.0, "I would like to hear about the weather today."),
    "female_1": (210.0, "Could you tell me how this works, please?"),
    "male_2": (135.0, "Let me ask you something about history."),
    "female_2": (240.0, "Thanks, that was really helpful to know."),
}

SPEAKERS = ["英文男", "英文女"]  # the recipe's two English SFT speakers

# hyperpyyaml; same classes as the released model, much smaller sizes.
CONFIG = """
sample_rate: 22050
llm: !new:cosyvoice.llm.llm.TransformerLM
    text_encoder_input_size: 64
    llm_input_size: 64
    llm_output_size: 64
    text_token_size: 51866
    speech_token_size: 4096
    spk_embed_dim: 192
    text_encoder: !new:cosyvoice.transformer.encoder.ConformerEncoder
        input_size: 64
        output_size: 64
        attention_heads: 2
        linear_units: 128
        num_blocks: 1
        input_layer: linear
        pos_enc_layer_type: rel_pos_espnet
        selfattention_layer_type: rel_selfattn
        use_cnn_module: False
        macaron_style: False
        static_chunk_size: 1
    llm: !new:cosyvoice.transformer.encoder.TransformerEncoder
        input_size: 64
        output_size: 64
        attention_heads: 2
        linear_units: 128
        num_blocks: 1
        input_layer: linear_legacy
        pos_enc_layer_type: rel_pos_espnet
        selfattention_layer_type: rel_selfattn
        static_chunk_size: 1
    sampling: !name:cosyvoice.utils.common.ras_sampling
        top_p: 0.8
        top_k: 25
        win_size: 10
        tau_r: 0.1
flow: !new:cosyvoice.flow.flow.MaskedDiffWithXvec
    input_size: 64
    output_size: 80
    spk_embed_dim: 192
    output_type: mel
    vocab_size: 4096
    input_frame_rate: 50
    encoder: !new:cosyvoice.transformer.encoder.ConformerEncoder
        input_size: 64
        output_size: 64
        attention_heads: 2
        linear_units: 128
        num_blocks: 1
        input_layer: linear
        pos_enc_layer_type: rel_pos_espnet
        selfattention_layer_type: rel_selfattn
        use_cnn_module: False
        macaron_style: False
    length_regulator: !new:cosyvoice.flow.length_regulator.InterpolateRegulator
        channels: 80
        sampling_ratios: [1, 1]
    decoder: !new:cosyvoice.flow.flow_matching.ConditionalCFM
        in_channels: 240
        n_spks: 1
        spk_emb_dim: 80
        cfm_params: !new:omegaconf.DictConfig
            content:
                sigma_min: 0.000001
                solver: euler
                t_scheduler: cosine
                training_cfg_rate: 0.2
                inference_cfg_rate: 0.7
                reg_loss_type: l1
        estimator: !new:cosyvoice.flow.decoder.ConditionalDecoder
            in_channels: 320
            out_channels: 80
            channels: [64]
            dropout: 0.0
            attention_head_dim: 32
            n_blocks: 1
            num_mid_blocks: 1
            num_heads: 2
            act_fn: gelu
hift: !new:cosyvoice.hifigan.generator.HiFTGenerator
    in_channels: 80
    base_channels: 64
    nb_harmonics: 8
    sampling_rate: 22050
    upsample_rates: [8, 8]
    upsample_kernel_sizes: [16, 16]
    istft_params:
        n_fft: 16
        hop_len: 4
    resblock_kernel_sizes: [3]
    resblock_dilation_sizes: [[1, 3]]
    source_resblock_kernel_sizes: [7, 11]
    source_resblock_dilation_sizes: [[1, 3], [1, 3]]
    f0_predictor: !new:cosyvoice.hifigan.f0_predictor.ConvRNNF0Predictor
        num_class: 1
        in_channels: 80
        cond_channels: 64
get_tokenizer: !name:whisper.tokenizer.get_tokenizer
    multilingual: True
    num_languages: 100
    language: en
    task: transcribe
allowed_special: all
feat_extractor: !name:matcha.utils.audio.mel_spectrogram
    n_fft: 1024
    num_mels: 80
    sampling_rate: 22050
    hop_size: 256
    win_size: 1024
    fmin: 0
    fmax: 8000
    center: False
"""


# CosyVoice 2 (cosyvoice2.yaml): same classes as the released CosyVoice2-0.5B, small sizes except
# where the upstream code fixes them (the flow encoder's 512 channels). qwen_pretrain_path is set
# by the upstream loader to the folder's CosyVoice-BlankEN/.
CONFIG2 = """
sample_rate: 24000
qwen_pretrain_path: ''
llm: !new:cosyvoice.llm.llm.Qwen2LM
    llm_input_size: 64
    llm_output_size: 64
    speech_token_size: 6561
    llm: !new:cosyvoice.llm.llm.Qwen2Encoder
        pretrain_path: !ref <qwen_pretrain_path>
    sampling: !name:cosyvoice.utils.common.ras_sampling
        top_p: 0.8
        top_k: 25
        win_size: 10
        tau_r: 0.1
flow: !new:cosyvoice.flow.flow.CausalMaskedDiffWithXvec
    input_size: 512
    output_size: 80
    spk_embed_dim: 192
    output_type: mel
    vocab_size: 6561
    input_frame_rate: 25
    token_mel_ratio: 2
    pre_lookahead_len: 3
    encoder: !new:cosyvoice.transformer.upsample_encoder.UpsampleConformerEncoder
        input_size: 512
        output_size: 512
        attention_heads: 2
        linear_units: 128
        num_blocks: 1
        input_layer: linear
        pos_enc_layer_type: rel_pos_espnet
        selfattention_layer_type: rel_selfattn
        use_cnn_module: False
        macaron_style: False
        static_chunk_size: 25
    decoder: !new:cosyvoice.flow.flow_matching.CausalConditionalCFM
        in_channels: 240
        n_spks: 1
        spk_emb_dim: 80
        cfm_params: !new:omegaconf.DictConfig
            content:
                sigma_min: 0.000001
                solver: euler
                t_scheduler: cosine
                training_cfg_rate: 0.2
                inference_cfg_rate: 0.7
                reg_loss_type: l1
        estimator: !new:cosyvoice.flow.decoder.CausalConditionalDecoder
            in_channels: 320
            out_channels: 80
            channels: [64]
            dropout: 0.0
            attention_head_dim: 32
            n_blocks: 1
            num_mid_blocks: 1
            num_heads: 2
            act_fn: gelu
            static_chunk_size: 50
            num_decoding_left_chunks: -1
hift: !new:cosyvoice.hifigan.generator.HiFTGenerator
    in_channels: 80
    base_channels: 64
    nb_harmonics: 8
    sampling_rate: 24000
    upsample_rates: [8, 5, 3]
    upsample_kernel_sizes: [16, 11, 7]
    istft_params:
        n_fft: 16
        hop_len: 4
    resblock_kernel_sizes: [3]
    resblock_dilation_sizes: [[1, 3]]
    source_resblock_kernel_sizes: [7, 7, 11]
    source_resblock_dilation_sizes: [[1, 3], [1, 3], [1, 3]]
    f0_predictor: !new:cosyvoice.hifigan.f0_predictor.ConvRNNF0Predictor
        num_class: 1
        in_channels: 80
        cond_channels: 64
get_tokenizer: !name:cosyvoice.tokenizer.tokenizer.get_qwen_tokenizer
    token_path: !ref <qwen_pretrain_path>
    skip_special_tokens: True
allowed_special: all
feat_extractor: !name:matcha.utils.audio.mel_spectrogram
    n_fft: 1920
    num_mels: 80
    sampling_rate: 24000
    hop_size: 480
    win_size: 1920
    fmin: 0
    fmax: 8000
    center: False
"""
# Text the tiny BPE tokenizer of the CosyVoice 2 stand-in is trained on (byte-level: any text encodes).
BPE_CORPUS = [transcript for _, transcript in PROMPTS.values()] + [
    "the quick brown fox jumps over the lazy dog", "one two three four five six seven eight nine ten"]


def onnx_stub(path: Path, input_name: str, input_shape: list, output_dim: int) -> None:
    """A tiny valid ONNX graph with the input the frontend feeds (only loaded in SFT mode)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(0).standard_normal(
        (input_shape[-1], output_dim)).astype(np.float32), "weight")
    graph = helper.make_graph(
        [helper.make_node("MatMul", [input_name, "weight"], ["output"])], "stub",
        [helper.make_tensor_value_info(input_name, TensorProto.FLOAT, input_shape)],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [*input_shape[:-1], output_dim])],
        initializer=[weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def speaker_embedding_stub(path: Path) -> None:
    """campplus.onnx that runs: fbank frames [1, T, 80] -> their mean -> a random linear map -> [1, 192]."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(1).standard_normal((80, 192)).astype(np.float32), "weight")
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1], keepdims=0),
         helper.make_node("MatMul", ["mean", "weight"], ["output"])], "campplus_stub",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, "frames", 80])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 192])],
        initializer=[weight],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def speech_tokenizer_stub(path: Path, vocab: int = 4096, step: int = 2) -> None:
    """A speech tokenizer .onnx that runs: log-mel [1, 128, T] (100 Hz) and its length [1] (int32)
    -> one token in [0, vocab) per `step` valid frames (2: v1's 50 Hz, 4: v2's 25 Hz), the argmax
    of a random projection (int64)."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(np.random.default_rng(2).standard_normal((128, vocab)).astype(np.float32), "weight")
    constants = [numpy_helper.from_array(np.array(v, dtype=np.int64), n)
                 for n, v in (("zero", [0]), ("axis", [1]), ("step", [step]))]
    graph = helper.make_graph(
        [helper.make_node("Transpose", ["feats"], ["frames"], perm=[0, 2, 1]),
         helper.make_node("MatMul", ["frames", "weight"], ["scores"]),
         helper.make_node("ArgMax", ["scores"], ["ids"], axis=2, keepdims=0),
         helper.make_node("Cast", ["feats_length"], ["end"], to=TensorProto.INT64),
         helper.make_node("Slice", ["ids", "zero", "end", "axis", "step"], ["indices"])],
        "speech_tokenizer_stub",
        [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, 128, "frames"]),
         helper.make_tensor_value_info("feats_length", TensorProto.INT32, [1])],
        [helper.make_tensor_value_info("indices", TensorProto.INT64, [1, "tokens"])],
        initializer=[weight, *constants],
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))


def write_prompts(folder: Path, seed: int, seconds: float = 3.0) -> None:
    """voice_bank/NAME.wav (16 kHz, a voiced buzz at the voice's pitch, syllable-like bursts) and NAME.txt."""
    import numpy as np
    import soundfile

    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * PROMPT_RATE)) / PROMPT_RATE
    for i, (name, (pitch, transcript)) in enumerate(PROMPTS.items()):
        rng = np.random.default_rng([seed, i])
        f0 = pitch * (1 + 0.05 * np.sin(2 * np.pi * 0.7 * t))
        phase = 2 * np.pi * np.cumsum(f0) / PROMPT_RATE
        voiced = sum(np.sin(k * phase) / k for k in range(1, 12))
        bursts = np.clip(np.sin(2 * np.pi * 4.0 * t + rng.uniform(0, np.pi)), 0, None)
        clip = 0.3 * bursts * voiced / 3 + 0.01 * rng.standard_normal(t.size)
        soundfile.write(folder / f"{name}.wav", clip.astype(np.float32), PROMPT_RATE, subtype="PCM_16")
        (folder / f"{name}.txt").write_text(transcript + "\n", encoding="utf-8")


def build(folder: Path, seed: int = 0, zero_shot: bool = False) -> None:
    import torch
    from hyperpyyaml import load_hyperpyyaml

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cosyvoice.yaml").write_text(CONFIG, encoding="utf-8")
    torch.manual_seed(seed)
    modules = load_hyperpyyaml(CONFIG)
    for name in ("llm", "flow", "hift"):
        torch.save(modules[name].state_dict(), folder / f"{name}.pt")
    torch.save({s: {"embedding": torch.randn(1, 192)} for s in SPEAKERS}, folder / "spk2info.pt")
    onnx_stub(folder / "campplus.onnx", "input", [1, "frames", 80], 192)
    onnx_stub(folder / "speech_tokenizer_v1.onnx", "feats", [1, "frames", 128], 1)
    if zero_shot:
        speaker_embedding_stub(folder / "campplus.onnx")
        speech_tokenizer_stub(folder / "speech_tokenizer_v1.onnx")
        write_prompts(folder / "voice_bank", seed)


def blank_qwen(folder: Path, seed: int) -> None:
    """CosyVoice-BlankEN/: a tiny random Qwen2 causal LM and a byte-level BPE tokenizer."""
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(BPE_CORPUS, vocab_size=400, min_frequency=1, special_tokens=["<|endoftext|>"])
    folder.mkdir(parents=True, exist_ok=True)
    PreTrainedTokenizerFast(tokenizer_object=bpe._tokenizer, eos_token="<|endoftext|>").save_pretrained(folder)
    torch.manual_seed(seed)
    config = Qwen2Config(vocab_size=512, hidden_size=64, intermediate_size=128, num_hidden_layers=1,  # 512 > BPE + special tokens
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=4096,
                         tie_word_embeddings=True)
    Qwen2ForCausalLM(config).save_pretrained(folder)


def build_cosyvoice2(folder: Path, seed: int = 0) -> None:
    import torch
    from hyperpyyaml import load_hyperpyyaml

    folder.mkdir(parents=True, exist_ok=True)
    blank_qwen(folder / "CosyVoice-BlankEN", seed)
    (folder / "cosyvoice2.yaml").write_text(CONFIG2, encoding="utf-8")
    torch.manual_seed(seed)
    modules = load_hyperpyyaml(CONFIG2, overrides={"qwen_pretrain_path": str(folder / "CosyVoice-BlankEN")})
    for name in ("llm", "flow", "hift"):
        torch.save(modules[name].state_dict(), folder / f"{name}.pt")
    speaker_embedding_stub(folder / "campplus.onnx")
    speech_tokenizer_stub(folder / "speech_tokenizer_v2.onnx", vocab=6561, step=4)
    write_prompts(folder / "voice_bank", seed)


if __name__ == "__main__":
    flags = [a for a in sys.argv[1:] if a.startswith("--")]
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    if set(flags) - {"--zero-shot", "--cosyvoice2"} or len(flags) > 1 or not args:
        raise SystemExit(f"usage: standins_cosyvoice.py OUT_DIR [SEED] [--zero-shot | --cosyvoice2] (got {sys.argv[1:]})")
    out, seed = Path(args[0]), int(args[1]) if len(args) > 1 else 0
    if "--cosyvoice2" in flags:
        build_cosyvoice2(out, seed)
    else:
        build(out, seed, zero_shot="--zero-shot" in flags)
