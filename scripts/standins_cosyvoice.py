"""A CosyVoice-300M-SFT model folder with tiny random weights (the stand-in of profile=full_rehearsal).

The real weights cannot be had offline. This writes a folder of the same layout (cosyvoice.yaml,
llm.pt, flow.pt, hift.pt, campplus.onnx, speech_tokenizer_v1.onnx, spk2info.pt) from the upstream
classes at small sizes, with the recipe's two English SFT speakers, so the CosyVoice engine runs
the real upstream code path end to end: it says nothing (noise), but through every call the
real model makes. Runs in the CosyVoice environment (scripts/setup_cosyvoice.sh):

    .venv-cosyvoice/bin/python scripts/standins_cosyvoice.py OUT_DIR [SEED]
"""
from __future__ import annotations

import sys
from pathlib import Path

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


def build(folder: Path, seed: int = 0) -> None:
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


if __name__ == "__main__":
    build(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0)
