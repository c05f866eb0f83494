"""Test harness pieces shared by the end-to-end tests (gateway process, manifests)."""
