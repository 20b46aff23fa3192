"""The network zoo: PyTorch modules behind a torch-free registry.

Importing this package does not import torch; :func:`create_model` does, on demand.
"""

from engine.models.registry import ModelSpec, create_model, get_spec, list_models

__all__ = ["ModelSpec", "create_model", "get_spec", "list_models"]
