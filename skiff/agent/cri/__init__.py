"""CRI v1 (Kubernetes Container Runtime Interface) for the node agent: `api.proto`, its generated bindings
(`api_pb2`, built at install time by `build.py`) and the asyncio client in `client.py`.

Import from the submodules (`from skiff.agent.cri.client import CRIClient, CRIError, api`); this module
imports nothing, so `python -m skiff.agent.cri.build` works before the bindings exist.
"""
