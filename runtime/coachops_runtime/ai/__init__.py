"""The AI coach: a durable reply job per inbound message, prompt assembly with memory,
goals and retrieved knowledge, providers (Ollama, OpenAI-compatible, an offline
fallback), token streaming over Redis Streams and SSE, and token usage."""
