"""The webhook sidecar."""
