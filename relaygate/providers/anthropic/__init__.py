"""anthropic provider (translation to and from the OpenAI shape)."""
