"""A BERT sequence classifier that reads a mean of the token vectors instead of the [CLS] one.

all-MiniLM-L6-v2 was trained as a sentence encoder through mean pooling: its [CLS] vector and
pooler were never trained to carry a sentence's meaning. Classifying from a mean keeps what the
encoder learned about sentences, which a small corpus cannot teach again.

Two means (the model config's ``vigil_pooling``): ``mean``, the plain mean of the tokens, and
``label_attention``, a weighted mean per label whose token weights are learned (one score per token
and label, softmaxed over the tokens). A threat is often one clause in a calm post, and a plain
mean dilutes it in the rest; with its own weights, each label can read the tokens that carry it.
The weights start at zero, so training starts from the plain mean.

The class registers itself with transformers' Auto classes, so a saved Vigil model loads with
``AutoModelForSequenceClassification`` once this module is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig, BertModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.bert.modeling_bert import BertPreTrainedModel

POOLINGS = ("label_attention", "mean")  # what this class reads; "cls" is transformers' own head


class MeanPoolingBertConfig(BertConfig):
    model_type = "vigil-bert-mean-pooling"


class MeanPoolingBertForSequenceClassification(BertPreTrainedModel):
    config_class = MeanPoolingBertConfig

    def __init__(self, config: BertConfig, vigil_pooling: str | None = None) -> None:
        if vigil_pooling:
            config.vigil_pooling = vigil_pooling
        super().__init__(config)
        self.num_labels = int(config.num_labels or 0)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = torch.nn.Dropout(config.classifier_dropout or config.hidden_dropout_prob)
        self.classifier = torch.nn.Linear(config.hidden_size, self.num_labels)
        self.attention: torch.nn.Linear | None = None
        if getattr(config, "vigil_pooling", "mean") == "label_attention":
            self.attention = torch.nn.Linear(config.hidden_size, self.num_labels)
        self.post_init()

    def _init_weights(self, module: torch.nn.Module) -> None:
        if module is getattr(self, "attention", None):
            torch.nn.init.zeros_(module.weight)
            torch.nn.init.zeros_(module.bias)
        else:
            super()._init_weights(module)

    def forward(
        self,
        input_ids: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        token_type_ids: torch.Tensor | None = None,
        **kwargs: Any,
    ) -> SequenceClassifierOutput:
        hidden = self.bert(
            input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids, return_dict=True
        ).last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
        padding = (attention_mask == 0).unsqueeze(-1)  # batch, tokens, 1
        if self.attention is None:
            weights = (~padding).to(hidden.dtype)
            pooled = (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
            return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))
        scores = self.attention(hidden).float().masked_fill(padding, -1e9)  # batch, tokens, labels
        per_label = torch.einsum("btl,bth->blh", scores.softmax(dim=1).to(hidden.dtype), hidden)
        # Label l's logit reads label l's own mean: the diagonal of every label's row on every mean.
        logits = self.classifier(self.dropout(per_label)).diagonal(dim1=-2, dim2=-1)
        return SequenceClassifierOutput(logits=logits)


AutoConfig.register(MeanPoolingBertConfig.model_type, MeanPoolingBertConfig)
AutoModelForSequenceClassification.register(MeanPoolingBertConfig, MeanPoolingBertForSequenceClassification)


def classifier_class(base: str, pooling: str) -> Any:
    """The class to fine-tune ``base`` with: Vigil's pooling for BERT-family encoders when asked,
    otherwise the model's own sequence-classification head (what transformers would choose)."""
    if pooling in POOLINGS:
        local = Path(base).expanduser()
        source = str(local) if local.is_dir() else base
        if AutoConfig.from_pretrained(source, local_files_only=local.is_dir()).model_type == "bert":
            return MeanPoolingBertForSequenceClassification
    return AutoModelForSequenceClassification
