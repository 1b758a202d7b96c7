"""The Models page takes a pasted config.json through the CLI's parser; a bad one is one line beside the box."""

from __future__ import annotations

import json

from nicegui.testing import User

from loralens.app.models import view as cm
from loralens.core.architectures import architecture_from_config
from loralens.core.peft_config import LoraConfigSpec
from loralens.core.peft_count import count_lora

BERT_CLS = {"model_type": "bert", "architectures": ["BertForSequenceClassification"], "hidden_size": 768,
            "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072, "vocab_size": 30522,
            "max_position_embeddings": 512, "id2label": {"0": "a", "1": "b", "2": "c"}}


def test_parse_is_the_cli_parser() -> None:
    arch, problem = cm.parse_config_text(json.dumps(BERT_CLS))
    assert problem is None and arch is not None
    assert arch.total_params == architecture_from_config(BERT_CLS).total_params


def test_bad_configs_are_one_line() -> None:
    for text, expected in [("{not json", "not valid JSON"), ("[1, 2]", "must hold a JSON object"),
                           ('{"model_type": "mamba"}', "unsupported model_type 'mamba'"),
                           (json.dumps({**BERT_CLS, "architectures": ["BertLMHeadModel"]}), "BertLMHeadModel"),
                           (b"\xff\xfe", "not UTF-8")]:
        arch, problem = cm.parse_config_text(text)
        assert arch is None and expected in problem and "\n" not in problem


def _set(user: User, marker: str, value: object) -> None:
    next(iter(user.find(marker=marker).elements)).value = value


async def test_pasted_config_is_counted(user: User) -> None:
    await user.open("/models")
    _set(user, "config-text", json.dumps(BERT_CLS))
    user.find(marker="config-use").click()
    # PEFT (issue 10): BertForSequenceClassification, 3 labels, r = 8 with task_type SEQ_CLS (the head's, as in
    # the CLI): LoRA on query/value + the classifier saved whole
    await user.should_see("297,219")
    assert count_lora(architecture_from_config(BERT_CLS), LoraConfigSpec(r=8, task_type="SEQ_CLS")).trainable == 297_219
    await user.should_see("--config config.json")


async def test_bad_config_says_why(user: User) -> None:
    await user.open("/models")
    _set(user, "config-text", '{"model_type": "mamba"}')
    user.find(marker="config-use").click()
    await user.should_see("unsupported model_type 'mamba'")
    await user.should_see("4,194,304")  # the preset's numbers stay
