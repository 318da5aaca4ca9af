"""qwenkit serve: OpenAI- and Ollama-compatible HTTP API over the batching engine."""
