"""Task heads: which model class a config.json asks for, and what PEFT's task_type adds to the trained modules.

A config.json names its model class in ``architectures`` (``LlamaForCausalLM``, ``BertForSequenceClassification``,
...). The class suffix decides the head that transformers builds, so it decides the count: a sequence classifier
has a ``score`` (or a pooler and a ``classifier``) where the causal LM has ``lm_head``. ``--task`` overrides it.
A class whose head a family does not build is refused by name, never counted as another model.

PEFT's task types (peft/peft_model.py): SEQ_CLS and TOKEN_CLS add ["classifier", "score"] to ``modules_to_save``,
QUESTION_ANS adds ["qa_outputs"]; with "all-linear", SEQ_CLS also leaves the top-level score/classifier out.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from loralens.errors import ConfigError

CAUSAL_LM, MASKED_LM, SEQ_CLS, TOKEN_CLS, QA, IMAGE_CLS, SEQ2SEQ_LM, BASE = (
    "causal_lm", "masked_lm", "seq_cls", "token_cls", "qa", "image_cls", "seq2seq_lm", "base")
TASKS = (CAUSAL_LM, MASKED_LM, SEQ_CLS, TOKEN_CLS, QA, IMAGE_CLS, SEQ2SEQ_LM, BASE)

#: class-name suffix -> task (the bare model is the family's base_class exactly: GPT2Model, not GPT2DoubleHeadsModel)
CLASS_SUFFIXES = (
    ("ForCausalLM", CAUSAL_LM), ("LMHeadModel", CAUSAL_LM), ("ForMaskedLM", MASKED_LM),
    ("ForSequenceClassification", SEQ_CLS), ("ForTokenClassification", TOKEN_CLS), ("ForQuestionAnswering", QA),
    ("ForImageClassification", IMAGE_CLS), ("ForConditionalGeneration", SEQ2SEQ_LM),
)
#: the PEFT task_type that goes with each head (what a user of that model class sets)
PEFT_TASK_TYPE = {CAUSAL_LM: "CAUSAL_LM", SEQ_CLS: "SEQ_CLS", TOKEN_CLS: "TOKEN_CLS", QA: "QUESTION_ANS",
                  MASKED_LM: None, IMAGE_CLS: None, SEQ2SEQ_LM: "SEQ_2_SEQ_LM", BASE: "FEATURE_EXTRACTION"}
#: modules_to_save names PEFT adds for a task_type
TASK_MODULES_TO_SAVE = {"SEQ_CLS": ("classifier", "score"), "TOKEN_CLS": ("classifier", "score"),
                        "QUESTION_ANS": ("qa_outputs",)}
SEQ_CLS_HEAD_NAMES = ("score", "classifier")  # PEFT's, in its order


def task_of_class(class_name: str) -> str | None:
    for suffix, task in CLASS_SUFFIXES:
        if class_name.endswith(suffix):
            return task
    return None


def resolve_task(data: Mapping[str, Any], tasks: tuple[str, ...], model_type: str, source: str,
                 override: str | None = None) -> str:
    """The head to build: ``override`` (--task), else the config's ``architectures[0]``, else the family's first.

    ConfigError names the class (or the task) when the family does not build that head.
    """
    if override is not None:
        if override not in TASKS:
            raise ConfigError(f"unknown task {override!r}; known: {', '.join(TASKS)}", where="--task")
        if override not in tasks:
            raise ConfigError(f"{model_type} models are counted with the heads {', '.join(tasks)}, not {override!r}",
                              where="--task")
        return override
    classes = data.get("architectures")
    if classes is None or classes == []:
        return tasks[0]
    if not isinstance(classes, list) or not all(isinstance(c, str) for c in classes):
        raise ConfigError(f"field 'architectures' must be a list of class names, got {classes!r}", where=source)
    name = classes[0]
    task = task_of_class(name)
    if task is None or task not in tasks:
        raise ConfigError(f"model class {name!r} is not counted by loralens (for {model_type}: "
                          f"{', '.join(tasks)}; --task chooses one)", where=source)
    return task


__all__ = ["BASE", "CAUSAL_LM", "IMAGE_CLS", "MASKED_LM", "PEFT_TASK_TYPE", "QA", "SEQ2SEQ_LM", "SEQ_CLS", "SEQ_CLS_HEAD_NAMES",
           "TASKS", "TASK_MODULES_TO_SAVE", "TOKEN_CLS", "resolve_task", "task_of_class"]
