"""Container runtimes behind the agent's `Runtime` seam (`interface.py`): `cri.py` drives containerd over CRI v1."""
