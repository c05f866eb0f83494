"""The dashboard at `/ui`: static files shipped inside the package (no Node at install or run time)."""
