"""ONNX Runtime as the network of a `Predictor`: the same padding, batching, slicing and confidence.

`OnnxNetwork` is called like the torch model it was exported from, so self-pair, anchors and flip
TTA work unchanged; MC dropout needs dropout on at test time, which the exported network lacks.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from relunet.config import RunConfig
from relunet.errors import InputError
from relunet.inference.onnx_export import META_CHECKPOINT, export_program, input_names, output_names
from relunet.types import RelationOutput

ENGINES = ("torch", "onnxruntime")


class OnnxNetwork:
    """An ONNX Runtime session (CPUExecutionProvider) of an exported relunet network.

    `net(x1, x2)` gives a `RelationOutput` of logits `(B, K, *S)`, `net(x)` the logits `(B, K, *S)`,
    for inputs `(B, C, *S)` whose spatial sizes are multiples of the size multiple. It uses as many
    threads as PyTorch (`torch.get_num_threads()`, which follows OMP_NUM_THREADS).
    """

    def __init__(self, model: str | bytes, kind: str) -> None:
        import onnxruntime as ort  # here, not at the top: only --engine onnxruntime runs it

        options = ort.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()
        options.log_severity_level = 3
        self.session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        self.kind = kind

    @property
    def metadata(self) -> dict[str, str]:
        """The model's metadata_props (see `relunet.inference.onnx_export.metadata`)."""
        return self.session.get_modelmeta().custom_metadata_map

    def __call__(self, *inputs: torch.Tensor) -> RelationOutput | torch.Tensor:
        """Logits for the model's inputs, each `(B, C, *S)`, as the torch model returns them."""
        feeds = {
            name: np.ascontiguousarray(tensor.numpy(force=True), dtype=np.float32)
            for name, tensor in zip(input_names(self.kind), inputs, strict=True)
        }
        outputs = [torch.from_numpy(o) for o in self.session.run(list(output_names(self.kind)), feeds)]
        return RelationOutput(*outputs) if self.kind == "relation" else outputs[0]


def check_engine(engine: str, onnx: Path | None, device: str) -> None:
    """Refuse an unknown engine, `--onnx` without the ONNX engine, or the ONNX engine on CUDA."""
    if engine not in ENGINES:
        raise InputError(f"--engine {engine}: choose one of {', '.join(ENGINES)}")
    if onnx is not None and engine != "onnxruntime":
        raise InputError(f"--onnx {onnx}: needs --engine onnxruntime")
    if engine == "onnxruntime" and device == "cuda":
        raise InputError("--engine onnxruntime runs on the CPU; use --device cpu (or --engine torch on CUDA)")


def open_engine(
    model: nn.Module, config: RunConfig, checkpoint_sha256: str, onnx: Path | None
) -> OnnxNetwork:
    """The fold's network in ONNX Runtime, from the file `onnx` or else exported in memory.

    The file must come from this checkpoint (its SHA-256 is in the file's metadata). An MC-dropout run
    is refused before anything is exported.
    """
    kind = config.model.kind
    if kind == "mcdropout":
        raise InputError(
            "--engine onnxruntime: MC dropout draws with dropout on, and the exported network is the "
            "deterministic one; use --engine torch"
        )
    if onnx is None:
        program = export_program(model, config, checkpoint_sha256)
        return OnnxNetwork(program.model_proto.SerializeToString(), kind)
    if not Path(onnx).is_file():
        raise InputError(f"--onnx {onnx}: no such file; write one with `relunet export RUN --out {onnx}`")
    try:
        network = OnnxNetwork(str(onnx), kind)
    except Exception as err:  # ONNX Runtime raises its own types (InvalidProtobuf, Fail, ...)
        raise InputError(f"--onnx {onnx}: not a readable ONNX model ({type(err).__name__})") from err
    found = network.metadata.get(META_CHECKPOINT)
    if found != checkpoint_sha256:
        what = f"checkpoint {found[:12]}" if found else "no relunet checkpoint"
        raise InputError(
            f"--onnx {onnx}: exported from {what}, not from this fold's checkpoint "
            f"{checkpoint_sha256[:12]}; export it again with `relunet export RUN --out {onnx} --overwrite`"
        )
    return network
