"""ONNX export for training outputs; the graph export itself lives with the models."""

from engine.models.export import DEFAULT_OPSET, export_onnx, onnx_parity

__all__ = ["DEFAULT_OPSET", "export_onnx", "onnx_parity"]
