"""`instructs2s`: the engine's commands (build, plan, status, errors, schemas) plus the product's:
`export FORMAT` and `push` on a finished build, and `train` / `infer` of the bundled LLaMA-Omni."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pipeline.cli import ENGINE_COMMANDS, Command
from pipeline.cli import main as engine_main
from pipeline.config import RunConfig
from pipeline.data_root import require_build
from pipeline.errors import ConfigError

PACKAGE_KIND = "package"


def package_settings(run: RunConfig):
    """The settings of the config's package stage (found by kind: its name is the config's choice)."""
    nodes = [n for n in run.stages if n.kind == PACKAGE_KIND]
    if not nodes:
        raise ConfigError("this config has no stage of kind 'package'")
    return nodes[0].settings


def cmd_export(run: RunConfig, args) -> int:
    from stages.exports import export_data_root

    root = require_build(run.context["data_root"])
    out = export_data_root(root, args.format, package_settings(run).export,
                           Path(args.out).resolve() if args.out else None)
    print(out)
    return 0


def export_options(parser: argparse.ArgumentParser) -> None:
    from stages.exports import EXPORTERS

    parser.add_argument("format", choices=sorted(EXPORTERS), help="the layout to write")
    parser.add_argument("--out", help="output folder (default: ${data_root}/export/FORMAT)")


def cmd_push(run: RunConfig, args) -> int:
    from stages.package_hub import push_to_hub

    root = require_build(run.context["data_root"])
    hub = package_settings(run).push_to_hub
    if not hub.repo_id:
        raise ConfigError("no hub repository: give stages.package.push_to_hub.repo_id=USER/NAME")
    push_to_hub(root, hub.repo_id, hub.private, hub.token_env)
    print(f"https://huggingface.co/datasets/{hub.repo_id}")
    return 0


def passthrough(module: str):
    def run(argv: list[str]) -> int:
        import importlib

        try:
            importlib.import_module(module).main(argv)
        except SystemExit as exc:  # the trainer ends a user error with exit code 2
            return exc.code if isinstance(exc.code, int) else 1
        return 0
    return run


COMMANDS: dict[str, Command] = {
    **ENGINE_COMMANDS,
    "export": Command(cmd_export, "write a finished build in another layout: llama_omni, instructs2s_release, "
                      "lhotse, webdataset", export_options),
    "push": Command(cmd_push, "upload the card, plots and shards to a Hugging Face dataset repo "
                    "(stages.package.push_to_hub.repo_id; token from $HF_TOKEN)"),
    "train": Command(passthrough("omni.train"), "train LLaMA-Omni on a build's shards: instructs2s train "
                     "data_root=DIR [train=full] (--help for more)", passthrough=True),
    "infer": Command(passthrough("omni.infer"), "answer a spoken question with a trained run: instructs2s infer "
                     "data_root=DIR audio=FILE.wav", passthrough=True),
    "eval": Command(passthrough("omni.evaluate"), "score trained checkpoints on a build's held-out split (judge, "
                    "ASR-WER, DNSMOS, latency): instructs2s eval data_root=DIR", passthrough=True),
}


def main(argv: list[str] | None = None) -> int:
    return engine_main(argv, COMMANDS, prog="instructs2s")


if __name__ == "__main__":
    sys.exit(main())
