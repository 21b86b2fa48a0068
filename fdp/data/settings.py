"""Class settings: which annotated emotions form which classes (SPEC §4.2, paper Tables 1-2, 8).

A `ClassSetting` maps the lower-cased emotion words of one dataset (`fdp.data.readers.EMOTIONS`)
to an ordered list of class names; an emotion it does not map is excluded from that setting
(`label_of` returns None). `count_by_class` gives the per-class sample counts the paper tabulates,
and what was excluded, so a run can log exactly which clips it used.

Where the paper and SPEC §4.2 differ we follow the paper's counts: CASME II 3-class "negative"
holds disgust, repression, sadness and fear (63 + 27 + 4 + 2 = 96, paper Table 2), not only disgust
and repression (which would give 90).

The cross-dataset settings (paper Table 8) use the categories both datasets share: happiness,
surprise and others (SAMM writes "other"); the other emotions are excluded. Both list the classes
in the same order, so label k means the same class when a model trained on one is tested on the
other.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from fdp.config import ConfigError
from fdp.data.samples import Sample

MERGED_KINDS = ("composite", "lodo")  # datasets made by joining prepared caches (fdp.data.merged), not read


@dataclass(frozen=True)
class ClassSetting:
    """One evaluation setting: a dataset, its ordered classes, and emotion -> class name."""

    name: str  # registry key, "<dataset>/<number of classes>" or "cross/<dataset>"
    dataset: str  # reader name whose emotion words `mapping` uses
    classes: list[str]  # class names in label order; the label of a class is its index here
    mapping: dict[str, str]  # lower-case emotion -> class name; unmapped emotions are excluded

    def __post_init__(self) -> None:
        # A mapping to a class the setting does not list, or a class nothing maps to, is a typo.
        unknown = sorted(set(self.mapping.values()) - set(self.classes))
        empty = [c for c in self.classes if c not in self.mapping.values()]
        if unknown or empty:
            raise ValueError(
                f"class setting {self.name}: unknown classes {unknown}, classes with no emotion {empty}"
            )

    @property
    def num_classes(self) -> int:
        """m, the number of classes (the width of the classifier)."""
        return len(self.classes)

    def label_of(self, emotion: str) -> int | None:
        """Class index of an annotated emotion, or None when the setting excludes it."""
        cls = self.mapping.get(emotion.strip().lower())
        return None if cls is None else self.classes.index(cls)


class UnknownSettingError(ConfigError, KeyError):
    """An unknown class-setting name. A KeyError too, so `SETTINGS[name]` behaves like a dict."""

    def __str__(self) -> str:  # KeyError would print the message in quotes
        return str(self.args[0])


class _Registry(dict[str, ClassSetting]):
    """`SETTINGS`: a dict whose missing key raises a one-line message listing the known names."""

    def __missing__(self, name: str) -> ClassSetting:
        raise UnknownSettingError(f"unknown class setting {name!r}; known: {', '.join(self)}")


def _setting(
    name: str, dataset: str, classes: Iterable[str], groups: Mapping[str, Iterable[str]]
) -> ClassSetting:
    """Build a setting from {class: emotions} groups, which read like SPEC §4.2."""
    mapping = {emotion: cls for cls, emotions in groups.items() for emotion in emotions}
    return ClassSetting(name=name, dataset=dataset, classes=list(classes), mapping=mapping)


_ALL = [
    # CASME II 5-class, paper Table 1 (bold): 32 / 63 / 27 / 28 / 99.
    _setting(
        "casme2/5",
        "casme2",
        ["happiness", "disgust", "repression", "surprise", "others"],
        {c: [c] for c in ["happiness", "disgust", "repression", "surprise", "others"]},
    ),
    # CASME II 3-class, paper Table 2: positive 32, negative 96, surprise 28.
    _setting(
        "casme2/3",
        "casme2",
        ["positive", "negative", "surprise"],
        {
            "positive": ["happiness"],
            "negative": ["disgust", "repression", "sadness", "fear"],
            "surprise": ["surprise"],
        },
    ),
    # SAMM 5-class, paper Table 1 (bold): 26 / 57 / 12 / 15 / 26.
    _setting(
        "samm/5",
        "samm",
        ["happiness", "anger", "contempt", "surprise", "other"],
        {c: [c] for c in ["happiness", "anger", "contempt", "surprise", "other"]},
    ),
    # SAMM 3-class, paper Table 2: positive 26, negative 92, surprise 15.
    _setting(
        "samm/3",
        "samm",
        ["positive", "negative", "surprise"],
        {
            "positive": ["happiness"],
            "negative": ["anger", "contempt", "disgust", "fear", "sadness"],
            "surprise": ["surprise"],
        },
    ),
    # CAS(ME)^2 4-class, paper Table 2: the file's own emotion words, 8 / 21 / 9 / 19.
    _setting(
        "casme_sq/4",
        "casme_sq",
        ["positive", "negative", "surprise", "others"],
        {c: [c] for c in ["positive", "negative", "surprise", "others"]},
    ),
    # CAS(ME)^3 7-class, paper Table 1 (bold) with the label file's words (happy, sad).
    _setting(
        "casme3/7",
        "casme3",
        ["happy", "disgust", "surprise", "anger", "fear", "sad", "others"],
        {c: [c] for c in ["happy", "disgust", "surprise", "anger", "fear", "sad", "others"]},
    ),
    # Cross-dataset, paper Table 8: the shared categories, same class order on both sides.
    _setting(
        "cross/casme2",
        "casme2",
        ["happiness", "surprise", "others"],
        {"happiness": ["happiness"], "surprise": ["surprise"], "others": ["others"]},
    ),
    _setting(
        "cross/samm",
        "samm",
        ["happiness", "surprise", "others"],
        {"happiness": ["happiness"], "surprise": ["surprise"], "others": ["other"]},
    ),
    # SMIC (HS, VIS, NIR): the three classes the release is labelled with (folder names).
    *(_setting(f"{m}/3", m, ["positive", "negative", "surprise"],
               {c: [c] for c in ["positive", "negative", "surprise"]}) for m in ("smic", "smic_vis", "smic_nir")),
    # MMEW: its seven categories; "repression" (the word some releases use for the seventh) counts as others.
    _setting("mmew/7", "mmew", ["happiness", "surprise", "anger", "disgust", "fear", "sadness", "others"],
             {**{c: [c] for c in ["happiness", "surprise", "anger", "disgust", "fear", "sadness"]},
              "others": ["others", "repression"]}),
    _setting("mmew/3", "mmew", ["positive", "negative", "surprise"],
             {"positive": ["happiness"], "negative": ["anger", "disgust", "fear", "sadness"], "surprise": ["surprise"]}),
    # 4DME: a combined label ("positive+surprise") belongs to no single class and is excluded from both.
    _setting("fourd/5", "fourd", ["positive", "negative", "surprise", "repression", "others"],
             {c: [c] for c in ["positive", "negative", "surprise", "repression", "others"]}),
    _setting("fourd/3", "fourd", ["positive", "negative", "surprise"],
             {c: [c] for c in ["positive", "negative", "surprise"]}),
    # MEGC2019 composite (fdp.data.merged): clips already carry the list's class; label codes 0, 1, 2.
    _setting("composite/3", "composite", ["negative", "positive", "surprise"],
             {c: [c] for c in ["negative", "positive", "surprise"]}),
    # leave-one-dataset-out (fdp.data.merged.build_lodo): the parts' common classes, as labelled there.
    _setting("lodo/3", "lodo", ["positive", "negative", "surprise"],
             {c: [c] for c in ["positive", "negative", "surprise"]}),
    _setting("lodo/cross", "lodo", ["happiness", "surprise", "others"],
             {c: [c] for c in ["happiness", "surprise", "others"]}),
]

# Registry of class settings by name; an unknown name raises UnknownSettingError (a ConfigError).
SETTINGS: dict[str, ClassSetting] = _Registry((s.name, s) for s in _ALL)


def get_setting(name: str) -> ClassSetting:
    """`SETTINGS[name]`, spelled as a function for call sites that read better that way."""
    return SETTINGS[name]


def _emotion_and_dataset(item: Sample | Mapping[str, Any]) -> tuple[str, str | None]:
    """Emotion and dataset of a `Sample` or of a cache clip dict (which has no dataset)."""
    if isinstance(item, Sample):
        return item.emotion, item.dataset
    return str(item["emotion"]), item.get("dataset")


def count_by_class(
    samples: Iterable[Sample | Mapping[str, Any]], setting: ClassSetting
) -> tuple[dict[str, int], dict[str, int]]:
    """Per-class counts in class order (zeros included) and {excluded emotion: count}.

    The counts are what paper Tables 1-2 list per setting. Samples of another dataset are an
    error, not an exclusion: e.g. SAMM's "happiness" would otherwise count under a CASME II setting.
    """
    counts = {c: 0 for c in setting.classes}
    excluded: Counter[str] = Counter()
    for item in samples:
        emotion, dataset = _emotion_and_dataset(item)
        if dataset is not None and dataset != setting.dataset:
            raise ConfigError(
                f"class setting {setting.name} is for {setting.dataset}, got a {dataset} sample"
            )
        label = setting.label_of(emotion)
        if label is None:
            excluded[emotion] += 1
        else:
            counts[setting.classes[label]] += 1
    return counts, dict(sorted(excluded.items()))
