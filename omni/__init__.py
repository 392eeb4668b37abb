"""The bundled LLaMA-Omni trainer: model, data, training recipe, inference.

Modules, one concept each:
  model.py       the whole model (encoder, adaptor, LLM, CTC speech decoder) in one file
  build.py       turns a config into a model and tokenizer (hub names, folders or random weights)
  prompt.py      the chat-template prompt with speech slots, labels and response positions
  audio.py       FLAC/WAV decoding with soundfile and the Whisper log-mel
  data.py        streaming Parquet training shards into micro-batches
  ctc.py         greedy CTC decoding and streaming unit chunks
  checkpoint.py  saving, finding and loading checkpoints (weights_only safe)
  metrics.py     CSV (and TensorBoard) logging
  distributed.py torchrun process group, DDP / FSDP2 wrapping
  config.py      composing conf/train.yaml; the command line (user errors: one line, exit 2)
  train.py       the training recipe: setup / train / save_checkpoint / resume
  infer.py       answer one audio file with text and streamed units
  bench.py       CPU training throughput of the local profile
  synthetic.py   tiny synthetic training shards (tests, bench)

See omni/README.md for commands, outputs and the decisions taken (decoder alignment etc.).
"""
