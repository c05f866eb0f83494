"""The caller-facing wire formats (OpenAI, Anthropic Messages): what a stream, an answer and an error look like."""
