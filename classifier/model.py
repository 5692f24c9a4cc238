"""Loading a model and scoring texts with it, fast on a CPU.

One model is loaded per process (``get_classifier``). Texts are cut into token windows (a long
review becomes overlapping windows, each label scored by its maximum, so that a threat in the
last line is not truncated away), the windows are sorted by length and batched with padding only
to the longest in each batch, and the forward passes run under ``torch.inference_mode`` on an
explicit number of threads, by default with the Linear layers quantised to int8.

The Vigil model is a folder written by ``vigil model train``: Hugging Face weights and tokenizer,
a model card, and ``vigil.json`` (labels, per-label thresholds for each precision, whether int8
kept its accuracy, version). Any other Hugging Face sequence-classification model works too,
with a mapping from its labels to Vigil's.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicLinear
from torch.ao.quantization import PerChannelMinMaxObserver, QConfig, per_channel_dynamic_qconfig
from transformers import AutoModelForSequenceClassification, AutoTokenizer
from transformers.utils import logging as hf_logging

from classifier import pooling  # noqa: F401  (registers Vigil's pooling architecture)
from classifier.cpu import has_vnni, int8_engine
from classifier.meta import VIGIL_MODEL, ModelError, read_meta
from vigil.labels import LABELS
from vigil.settings import Settings

hf_logging.disable_progress_bar()  # Vigil shows its own progress bars (rich), not tqdm ones

# Profiled on tweet-length int8 batches, the fused SDPA kernel took a quarter of the time on CPU;
# plain (eager) attention is faster for such short, padded sequences.
ATTENTION = "eager"


@dataclass(frozen=True)
class Prediction:
    scores: dict[str, float]
    labels: tuple[str, ...]


@dataclass
class Classifier:
    """A loaded model with everything needed to turn texts into Vigil labels."""

    model: Any  # a transformers PreTrainedModel (or its int8 copy)
    tokenizer: Any
    model_id: str
    version: str
    precision: str
    mapping: dict[str, list[int]]  # Vigil label -> model output columns (scored by their max)
    thresholds: dict[str, float]
    multi_label: bool = True
    batch_size: int = 32
    window_tokens: int = 256
    window_overlap: int = 64
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(label for label in LABELS if label in self.mapping)

    def windows(self, texts: Sequence[str]) -> list[tuple[int, list[int]]]:
        """Every text as (text index, token ids); a long text becomes several overlapping windows."""
        encoded = self.tokenizer(
            list(texts),
            truncation=True,
            max_length=self.window_tokens,
            stride=self.window_overlap,
            return_overflowing_tokens=True,
        )
        return list(zip(encoded["overflow_to_sample_mapping"], encoded["input_ids"], strict=True))

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """Per-text probabilities of every model output (the maximum over a text's windows)."""
        windows = sorted(self.windows(texts), key=lambda window: len(window[1]))
        result = np.zeros((len(texts), self.model.config.num_labels), dtype=np.float32)
        with self.lock, torch.inference_mode():
            for start in range(0, len(windows), self.batch_size):
                batch = windows[start : start + self.batch_size]
                inputs = self.tokenizer.pad({"input_ids": [ids for _, ids in batch]}, return_tensors="pt")
                logits = self.model(**inputs).logits.float()
                probs = torch.sigmoid(logits) if self.multi_label else torch.softmax(logits, dim=-1)
                for (index, _), row in zip(batch, probs.numpy(), strict=True):
                    np.maximum(result[index], row, out=result[index])
        return result

    def scores(self, texts: Sequence[str]) -> np.ndarray:
        """Vigil label scores, one column per label of ``self.labels``."""
        probs = self.probabilities(texts)
        columns = [probs[:, self.mapping[label]].max(axis=1) for label in self.labels]
        return np.stack(columns, axis=1) if columns else np.zeros((len(texts), 0), dtype=np.float32)

    def predict(self, texts: Sequence[str]) -> list[Prediction]:
        if not texts:
            return []
        scores = self.scores(texts)
        return [
            Prediction(
                scores={label: round(float(value), 6) for label, value in zip(self.labels, row, strict=True)},
                labels=tuple(
                    label
                    for label, value in zip(self.labels, row, strict=True)
                    if value >= self.thresholds[label]
                ),
            )
            for row in scores
        ]


class FullRangeLinear(DynamicLinear):
    """A dynamically quantised Linear whose activations use all 8 bits.

    PyTorch's default keeps 7 (``reduce_range``) so that x86 CPUs without VNNI cannot overflow
    their 16-bit sums of two products; ``int8_qconfig`` takes that bit from the weights instead.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        packed = self._packed_params._packed_params
        return torch.ops.quantized.linear_dynamic(x, packed, reduce_range=False).to(x.dtype)


def int8_qconfig(vnni: bool) -> QConfig:
    """Weights per output channel, activations per batch: 8 bits each with VNNI, 7-bit weights without.

    Without VNNI, x86 int8 kernels add each pair of uint8 x int8 products in 16 bits, so one side
    must give up a bit (255 x 64 x 2 fits, 255 x 128 x 2 does not). The activations are scaled once
    per batch and have outliers, the weights once per output channel, so the bit is cheaper to take
    from the weights: on an AVX2-only CPU this halved the int8 model's score error against fp32 on
    dev (0.016 to 0.0085 on average) and cut its dev macro-F1 loss from 1.15 points to 0.26.
    """
    if vnni:
        return per_channel_dynamic_qconfig
    weight = PerChannelMinMaxObserver.with_args(
        dtype=torch.qint8, qscheme=torch.per_channel_symmetric, quant_min=-64, quant_max=63
    )  # weights then lie in [-64, 64]
    return QConfig(activation=per_channel_dynamic_qconfig.activation, weight=weight)


def quantize(model: torch.nn.Module) -> torch.nn.Module:
    """A copy with every Linear layer int8 (see ``int8_qconfig``).

    The weights are packed for the engine chosen here, which the process then keeps.
    """
    engine = int8_engine()
    if engine:
        torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch 2.10+ points to torchao; the eager API still works
        return torch.ao.quantization.quantize_dynamic(
            model,
            {torch.nn.Linear: int8_qconfig(has_vnni())},
            dtype=torch.qint8,
            mapping={torch.nn.Linear: FullRangeLinear},
        )


def load_hf_model(
    name: str, model_class: Any = AutoModelForSequenceClassification, **kwargs: Any
) -> tuple[Any, Any]:
    """A sequence-classification model and its tokenizer from a folder or the hub, quietly."""
    local = Path(name).expanduser().is_dir()
    source = str(Path(name).expanduser()) if local else name
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local)
        model = model_class.from_pretrained(
            source, local_files_only=local, attn_implementation=ATTENTION, **kwargs
        )
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot load the model {name!r}: {str(exc).splitlines()[0]}") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
    return model.eval(), tokenizer


def label_columns(
    id2label: Mapping[int, str], label_map: Mapping[str, Sequence[str]]
) -> dict[str, list[int]]:
    """Map Vigil labels to model output columns; every name in the mapping must exist."""
    by_name = {str(name): int(index) for index, name in id2label.items()}
    mapping: dict[str, list[int]] = {}
    for name, targets in label_map.items():
        if name not in by_name:
            raise ModelError(
                f"classifier.label_map names {name!r}, which the model does not output "
                f"(its labels: {', '.join(sorted(by_name))})"
            )
        for target in targets:
            if target not in LABELS:
                raise ModelError(
                    f"classifier.label_map maps {name!r} to {target!r}, not a Vigil label "
                    f"({', '.join(LABELS)})"
                )
            mapping.setdefault(target, []).append(by_name[name])
    if not mapping:
        raise ModelError(
            "classifier.label_map is empty: map the model's labels to Vigil labels, "
            f'e.g. {{"offensive" = ["abusive"]}} (its labels: {", ".join(sorted(by_name))})'
        )
    return mapping


def weights_digest(model: torch.nn.Module, extra: str) -> str:
    """A short version for a model Vigil did not train: its weights and how they are read."""
    digest = hashlib.sha256(extra.encode())
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()[:12]


def load_classifier(settings: Settings) -> Classifier:
    """Load the configured model as the settings say (precision, threads, windows)."""
    config = settings.classifier
    torch.set_num_threads(config.threads)
    if config.window_overlap >= config.window_tokens // 2:
        raise ModelError("classifier.window_overlap must be less than half of classifier.window_tokens")
    if config.model == VIGIL_MODEL:
        model_dir = Path(config.model_dir).expanduser()
        meta = read_meta(model_dir)
        model, tokenizer = load_hf_model(str(model_dir))
        precision = config.precision
        if precision == "auto":
            precision = "int8" if meta["int8_ok"] else "fp32"
        model_id = meta["model_id"]
        version = f"{meta['version']}-{precision}"
        mapping = {label: [index] for index, label in enumerate(meta["labels"])}
        thresholds = dict(meta["thresholds"][precision])
        multi_label = True
    else:
        model, tokenizer = load_hf_model(config.model)
        precision = "int8" if config.precision == "int8" else "fp32"
        mapping = label_columns(model.config.id2label, config.label_map)
        thresholds = dict.fromkeys(mapping, config.threshold)
        multi_label = model.config.problem_type == "multi_label_classification"
        model_id = config.model
        setup = json.dumps([sorted(config.label_map.items()), config.threshold, multi_label])
        version = f"{weights_digest(model, setup)}-{precision}"
    if precision == "int8":
        model = quantize(model)
    return Classifier(
        model=model,
        tokenizer=tokenizer,
        model_id=model_id,
        version=version,
        precision=precision,
        mapping=mapping,
        thresholds=thresholds,
        multi_label=multi_label,
        batch_size=config.batch_size,
        window_tokens=config.window_tokens,
        window_overlap=config.window_overlap,
    )


_loaded: dict[tuple[Any, ...], Classifier] = {}
_loading = threading.Lock()


def get_classifier(settings: Settings) -> Classifier:
    """The process's one classifier for these settings, loaded on first use."""
    key = tuple(sorted((k, repr(v)) for k, v in settings.items() if k.startswith("classifier.")))
    with _loading:
        if key not in _loaded:
            _loaded.clear()
            _loaded[key] = load_classifier(settings)
        return _loaded[key]
