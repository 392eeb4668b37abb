"""The stage engine: shards, fingerprints, resume, ledger, executors. Knows nothing of speech."""
