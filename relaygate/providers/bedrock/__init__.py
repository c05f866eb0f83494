"""bedrock provider (translation to and from the OpenAI shape)."""
