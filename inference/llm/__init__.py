"""The engine: one GGUF loaded through llama-cpp-python, its header and memory checks, chat template, grammar, decoding and settings."""
