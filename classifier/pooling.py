"""A BERT sequence classifier that reads the mean of the token vectors instead of the [CLS] one.

all-MiniLM-L6-v2 was trained as a sentence encoder through mean pooling: its [CLS] vector and
pooler were never trained to carry a sentence's meaning. Classifying from the mean keeps what the
encoder learned about sentences, which a small corpus cannot teach again. The class registers
itself with transformers' Auto classes, so a saved Vigil model loads with
``AutoModelForSequenceClassification`` once this module is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from transformers import AutoConfig, AutoModelForSequenceClassification, BertConfig, BertModel
from transformers.modeling_outputs import SequenceClassifierOutput
from transformers.models.bert.modeling_bert import BertPreTrainedModel


class MeanPoolingBertConfig(BertConfig):
    model_type = "vigil-bert-mean-pooling"


class MeanPoolingBertForSequenceClassification(BertPreTrainedModel):
    config_class = MeanPoolingBertConfig

    def __init__(self, config: BertConfig) -> None:
        super().__init__(config)
        self.num_labels = int(config.num_labels or 0)
        self.bert = BertModel(config, add_pooling_layer=False)
        self.dropout = torch.nn.Dropout(config.classifier_dropout or config.hidden_dropout_prob)
        self.classifier = torch.nn.Linear(config.hidden_size, self.num_labels)
        self.post_init()

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
            pooled = hidden.mean(dim=1)
        else:
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
        return SequenceClassifierOutput(logits=self.classifier(self.dropout(pooled)))


AutoConfig.register(MeanPoolingBertConfig.model_type, MeanPoolingBertConfig)
AutoModelForSequenceClassification.register(MeanPoolingBertConfig, MeanPoolingBertForSequenceClassification)


def classifier_class(base: str, pooling: str) -> Any:
    """The class to fine-tune ``base`` with: mean pooling for BERT-family encoders when asked,
    otherwise the model's own sequence-classification head (what transformers would choose)."""
    if pooling == "mean":
        local = Path(base).expanduser()
        source = str(local) if local.is_dir() else base
        if AutoConfig.from_pretrained(source, local_files_only=local.is_dir()).model_type == "bert":
            return MeanPoolingBertForSequenceClassification
    return AutoModelForSequenceClassification
