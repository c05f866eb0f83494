"""The admin API under `/api/admin/v1` (docs/admin.md): JSON in the OpenAI error shape, described by
an OpenAPI 3.1 document built from the same operation table that dispatches requests."""
