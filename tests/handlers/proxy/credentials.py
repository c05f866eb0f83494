"""Upstream credentials the proxy tests configure: they must reach upstreams and nothing else."""

ACCOUNT = "account-secret-a1b2c3d4"
INTEGRATION = "integration-secret-e5f6a7b8"
RECORDING = "recording-secret-c9d0e1f2"
LAYERS = "layers-secret-0f1e2d3c"

ALL = (ACCOUNT, INTEGRATION, RECORDING, LAYERS)
