"""Export a fold's network to ONNX, with what a user of the file alone needs in its metadata.

A Relation U-Net takes `x1`, `x2` of shape `(B, C, *S)` and gives four logit maps `seg_a`, `seg_b`,
`union`, `inter` of shape `(B, K, *S)`; a U-Net or MC-dropout U-Net takes `x` and gives `seg_a`.
Batch and spatial sizes are dynamic; every spatial size must be a multiple of the size multiple.
An MC-dropout network is exported deterministic (eval mode, dropout off).

The exporter is `torch.onnx.export(dynamo=True)` (torch.export, then onnxscript): the default and
maintained one; the TorchScript exporter is deprecated and bakes the size checks in as constants.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from relunet.atomic import atomic_path
from relunet.config import RunConfig
from relunet.data.samples import padded_shape
from relunet.errors import InputError
from relunet.nets import size_multiple
from relunet.types import RelationOutput

#: metadata_props keys of an exported model
META_CONFIG = "relunet.config"
META_KIND = "relunet.kind"
META_SIZE_MULTIPLE = "relunet.size_multiple"
META_CHECKPOINT = "relunet.checkpoint_sha256"
META_USAGE = "relunet.usage"


def input_names(kind: str) -> tuple[str, ...]:
    """The ONNX input names of a model kind."""
    return ("x1", "x2") if kind == "relation" else ("x",)


def output_names(kind: str) -> tuple[str, ...]:
    """The ONNX output names of a model kind (logits)."""
    return RelationOutput._fields if kind == "relation" else ("seg_a",)


def metadata(config: RunConfig, checkpoint_sha256: str) -> dict[str, str]:
    """The metadata_props of an exported model: run config (JSON), size rule, checkpoint, usage."""
    model, data = config.model, config.data
    multiple = size_multiple(model)
    smallest = padded_shape((1,), multiple)[0]
    usage = (
        f"inputs {', '.join(input_names(model.kind))}: float32 (B, {model.in_channels}, *S), S of "
        f"{model.spatial_dims} axes; per case clip to data.window if set, z-score each channel over the "
        "case, resize 2D pictures to data.image_size if set"
        + (", cut volumes into slices along data.slice_axis" if data.dims == 2 else "")
        + f"; zero-pad each spatial size at its far end to a multiple of {multiple}, at least {smallest}. "
        f"outputs {', '.join(output_names(model.kind))}: logits (B, {model.num_classes}, *S); sigmoid, "
        "crop the padding off"
        + ("; confidence C = Dice(union > 0.5, inter > 0.5)" if model.kind == "relation" else "")
    )
    if model.kind == "mcdropout":
        usage += (
            ". MC dropout: this is the deterministic network (eval mode, dropout off); sampling with "
            "dropout on needs relunet's PyTorch engine"
        )
    return {
        META_CONFIG: json.dumps(config.to_dict()),
        META_KIND: model.kind,
        META_SIZE_MULTIPLE: str(multiple),
        META_CHECKPOINT: checkpoint_sha256,
        META_USAGE: usage,
    }


def export_program(model: nn.Module, config: RunConfig, checkpoint_sha256: str) -> torch.onnx.ONNXProgram:
    """Export `model` (eval mode) with dynamic batch and spatial sizes and the run's metadata."""
    cfg = config.model
    names = input_names(cfg.kind)
    multiple = size_multiple(cfg)
    sizes = [(2 + i) * multiple for i in range(cfg.spatial_dims)]  # distinct, so none is specialised
    # one tensor per input: the same tensor twice would be traced as one input used twice
    examples = tuple(torch.zeros(2, cfg.in_channels, *sizes) for _ in names)
    dynamic = {0: torch.export.Dim.DYNAMIC} | {2 + i: torch.export.Dim.DYNAMIC for i in range(len(sizes))}
    exporter_log = logging.getLogger("torch.onnx")
    level = exporter_log.level
    exporter_log.setLevel(logging.ERROR)  # "torchvision is not installed" notes
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model.eval(),
                examples,
                input_names=list(names),
                output_names=list(output_names(cfg.kind)),
                dynamic_shapes={name: dynamic for name in names},
                dynamo=True,
                verbose=False,
            )
    except Exception as err:  # torch.export and onnxscript raise many types
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise InputError(
            f"this run's {cfg.kind} network cannot be exported to ONNX ({type(err).__name__}: {first}); "
            "run it with PyTorch (--engine torch)"
        ) from err
    finally:
        exporter_log.setLevel(level)
    _check_sizes(program, model, examples, cfg.kind)
    shape = program.model.graph.inputs[0].shape
    program.rename_axes({shape[0]: "batch"} | {shape[2 + i]: f"size{i}" for i in range(len(sizes))})
    program.model.metadata_props.update(metadata(config, checkpoint_sha256))
    return program


def _check_sizes(
    program: torch.onnx.ONNXProgram, model: nn.Module, examples: tuple[torch.Tensor, ...], kind: str
) -> None:
    """Refuse an export that holds only for the example's sizes (a shape traced in as a constant).

    The model and the export get inputs of another batch size and other spatial sizes (reversed, the
    first grown by the smallest, so the layout and the voxel count change); their logits must agree.
    """
    import onnxruntime as ort  # here, not at the top: only an export runs it, and it is slow to import

    sizes = list(reversed(examples[0].shape[2:]))
    sizes[0] += min(sizes)
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn(1, x.shape[1], *sizes, generator=generator) for x in examples]
    with torch.inference_mode():
        expected = model(*inputs)
    expected = list(expected) if isinstance(expected, tuple) else [expected]
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the failure is reported below, in one line
    try:
        model_bytes = program.model_proto.SerializeToString()
        session = ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
        feeds = {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs, strict=True)}
        found = session.run(None, feeds)
    except Exception:  # ONNX Runtime raises its own types (Fail, InvalidArgument, ...)
        found = None
    if found is None or not all(
        np.allclose(f, e.numpy(), rtol=1e-3, atol=1e-3) for f, e in zip(found, expected, strict=True)
    ):
        raise InputError(
            f"this run's {kind} network does not export to ONNX with free sizes (its graph holds only "
            "for the traced sizes); run it with PyTorch (--engine torch)"
        )


def write_program(program: torch.onnx.ONNXProgram, out: Path) -> None:
    """Save an exported model as one `.onnx` file (weights inside), atomically."""
    with atomic_path(out) as tmp:
        program.save(tmp, external_data=False)
