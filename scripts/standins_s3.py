"""A stand-in for CosyVoice 2's speech tokenizer file, in its released format, random weights.

    make_s3_standin(directory, seed) -> {"checkpoint": path, "checkpoint_sha256": hex}

writes `speech_tokenizer_v2.onnx` into `directory` (profile=full reads ${model_cache}/s3tokenizer/,
profile=full_rehearsal ${model_cache}/standins/s3tokenizer/). The file holds every weight of the
S3 tokenizer v2 at its real shape (about 124M parameters: two convolutions, six FSMN-attention
blocks of width 1280, the 8-digit quantizer's projection) as ONNX initializers under the names,
op types and layouts of the released file: the convolutions' `onnx::Conv_2216..2219`, the
quantizer's `onnx::MatMul_2536` and `quantizer.project_in.bias`, and per block the nodes
`/blocks.N/attn/query/MatMul`, `/blocks.N/attn_ln/LayerNormalization`, ... whose names the
s3tokenizer package's converter (`onnx2torch`) turns into the network's parameter names; matrices
are stored transposed, as the exporter wrote them. The nodes are chained one after another, not
wired as the network: the file is read for its weights (as the units stage reads the released
one), not run in ONNX Runtime.

Every value is built from seeded integers (scripts/standins_hubert.py's exact_random), so a seed
gives the same bytes on any CPU: profile=full_rehearsal pins seed 0's hash.
"""
from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))
from standins_hubert import exact_random  # noqa: E402

from pipeline.shards import file_sha256  # noqa: E402

FILE = "speech_tokenizer_v2.onnx"
CONV_INITIALIZERS = {"encoder.conv1.weight": "onnx::Conv_2216", "encoder.conv1.bias": "onnx::Conv_2217",
                     "encoder.conv2.weight": "onnx::Conv_2218", "encoder.conv2.bias": "onnx::Conv_2219"}
PROJECT_DOWN = {"quantizer._codebook.project_down.weight": "onnx::MatMul_2536",
                "quantizer._codebook.project_down.bias": "quantizer.project_in.bias"}


def random_state(seed: int) -> dict:
    """The S3 tokenizer v2's parameters at their real shapes, seeded exact_random values: uniform
    scaled by 1/sqrt(fan-in), layer norms near 1, biases zero."""
    import numpy as np
    import torch

    from stages.engines.s3_tokenizer import MODEL_NAME, import_s3tokenizer

    shapes = {k: tuple(v.shape) for k, v in import_s3tokenizer().S3TokenizerV2(MODEL_NAME).state_dict().items()}
    rng = np.random.default_rng(seed)
    state = {}
    for name, shape in shapes.items():
        if "_ln." in name and name.endswith("weight"):
            values = exact_random(rng, shape, 0.25, 1.0)
        elif name.endswith("bias"):
            values = np.zeros(shape, np.float32)
        else:
            values = exact_random(rng, shape, float(np.sqrt(3.0 / np.prod(shape[1:]))))
        state[name] = torch.from_numpy(values)
    return state


def released_layout(state: dict):
    """(nodes, initializers) of an ONNX graph that stores `state` as the released file does."""
    import numpy as np
    from onnx import helper, numpy_helper

    nodes, initializers, previous = [], [], "feats"
    counter = iter(range(3000, 10**6))

    def node(op: str, name: str, weights: list[tuple[str, np.ndarray]]):
        nonlocal previous
        output = f"{name}_output_0"
        inputs = [previous] + [w for w, _ in weights]
        nodes.append(helper.make_node(op, inputs, [output], name=name))
        initializers.extend(numpy_helper.from_array(np.ascontiguousarray(a), w) for w, a in weights)
        previous = output

    def array(key: str, transpose: bool = False):
        values = state[key].numpy()
        return values.T if transpose else values

    for conv in ("conv1", "conv2"):
        node("Conv", f"/{conv}/Conv", [(CONV_INITIALIZERS[f"encoder.{conv}.{p}"], array(f"encoder.{conv}.{p}"))
                                       for p in ("weight", "bias")])
    blocks = sorted({int(k.split(".")[2]) for k in state if k.startswith("encoder.blocks.")})
    for i in blocks:
        prefix, scope = f"encoder.blocks.{i}", f"/blocks.{i}"
        for ln in ("attn_ln", "mlp_ln"):
            node("LayerNormalization", f"{scope}/{ln}/LayerNormalization",
                 [(f"blocks.{i}.{ln}.{p}", array(f"{prefix}.{ln}.{p}")) for p in ("weight", "bias")])
        linears = [("attn/query", "attn.query"), ("attn/key", "attn.key"), ("attn/value", "attn.value"),
                   ("attn/out", "attn.out"), ("mlp/mlp.0", "mlp.0"), ("mlp/mlp.2", "mlp.2")]
        for path, key in linears:
            node("MatMul", f"{scope}/{path}/MatMul", [(f"onnx::MatMul_{next(counter)}", array(f"{prefix}.{key}.weight", True))])
            if f"{prefix}.{key}.bias" in state:
                node("Add", f"{scope}/{path}/Add", [(f"blocks.{i}.{key}.bias", array(f"{prefix}.{key}.bias"))])
        node("Conv", f"{scope}/attn/fsmn_block/Conv",
             [(f"blocks.{i}.attn.fsmn_block.weight", array(f"{prefix}.attn.fsmn_block.weight"))])
    weight, bias = PROJECT_DOWN.items()
    node("MatMul", "/quantizer/project_in/MatMul", [(weight[1], array(weight[0], True))])
    node("Add", "/quantizer/project_in/Add", [(bias[1], array(bias[0]))])
    return nodes, initializers, previous


def write_onnx(path: Path, state: dict) -> None:
    import onnx
    from onnx import TensorProto, helper

    nodes, initializers, last = released_layout(state)
    graph = helper.make_graph(
        nodes, "speech_tokenizer_v2", [helper.make_tensor_value_info("feats", TensorProto.FLOAT, [1, 128, "T"])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, None)], initializer=initializers)
    model = helper.make_model(graph, producer_name="pytorch", opset_imports=[helper.make_opsetid("", 17)])
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))


def make_s3_standin(directory: Path, seed: int) -> dict:
    """Write the stand-in into `directory`; returns its path and sha256 pin (as str)."""
    path = Path(directory).expanduser().resolve() / FILE
    write_onnx(path, random_state(seed))
    return {"checkpoint": str(path), "checkpoint_sha256": file_sha256(path)}


def build_s3_tokenizer(out: Path, seed: int) -> None:
    """scripts/make_standins.py's builder: the file and its pin in pins.json."""
    import json

    pins = make_s3_standin(out, seed)
    (Path(out) / "pins.json").write_text(json.dumps({"checkpoint_sha256": pins["checkpoint_sha256"]}, indent=2))


if __name__ == "__main__":
    import json

    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("standins")
    print(json.dumps(make_s3_standin(target, int(sys.argv[2]) if len(sys.argv) > 2 else 0), indent=2))
