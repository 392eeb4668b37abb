"""Shared machinery of the LLM stages: requests, the on-disk request cache, JSON extraction."""
