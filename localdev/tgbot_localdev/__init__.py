"""Local development kit: the test control plane and the demo."""
