"""Class settings (SPEC §4.2): labels, exclusions, and the paper's Table 1-2 counts end to end."""

from __future__ import annotations


import pytest
from fixtures_data import make_counts

from fdp.config import ConfigError
from fdp.data.readers import EMOTIONS, read_dataset
from fdp.data.samples import Sample
from fdp.data.settings import SETTINGS, ClassSetting, count_by_class, get_setting

# Per-class counts of each setting as the paper tabulates them (Table 1 bold / Table 2 / Table 8),
# and the emotions each setting leaves out, with their counts (SPEC §4.1).
PUBLISHED = {
    "casme2/5": ({"happiness": 32, "disgust": 63, "repression": 27, "surprise": 28, "others": 99},
                 {"fear": 2, "sadness": 4}),
    "casme2/3": ({"positive": 32, "negative": 96, "surprise": 28}, {"others": 99}),
    "samm/5": ({"happiness": 26, "anger": 57, "contempt": 12, "surprise": 15, "other": 26},
               {"disgust": 9, "fear": 8, "sadness": 6}),
    "samm/3": ({"positive": 26, "negative": 92, "surprise": 15}, {"other": 26}),
    "casme_sq/4": ({"positive": 8, "negative": 21, "surprise": 9, "others": 19}, {}),
    "casme3/7": ({"happy": 64, "disgust": 281, "surprise": 201, "anger": 70, "fear": 93, "sad": 64, "others": 170}, {}),
    "cross/casme2": ({"happiness": 32, "surprise": 28, "others": 99},
                     {"disgust": 63, "fear": 2, "repression": 27, "sadness": 4}),
    "cross/samm": ({"happiness": 26, "surprise": 15, "others": 26},
                   {"anger": 57, "contempt": 12, "disgust": 9, "fear": 8, "sadness": 6}),
}
# Clips and subjects per dataset (paper Table 3; CAS(ME)^3 as in Table 1, see fixtures_data).
# CAS(ME)^2: the 57 ME clips come from 14 subjects (the paper's 22 counts every subject, SPEC §4.1).
TOTALS = {"casme2": (255, 26), "samm": (159, 29), "casme_sq": (57, 14), "casme3": (943, 100)}


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[Sample]]:
    """Each dataset written with the published per-emotion counts and read by the real reader."""
    root = tmp_path_factory.mktemp("published")
    return {name: read_dataset(name, make_counts(name, root / name).root).samples for name in TOTALS}


# settings of datasets and protocols the paper does not use (issue #16): tested in test_readers_more / test_composite
NOT_IN_PAPER = ["smic/3", "smic_vis/3", "smic_nir/3", "mmew/7", "mmew/3", "fourd/5", "fourd/3", "composite/3",
                "lodo/3", "lodo/cross"]


def test_registry_names() -> None:
    assert list(SETTINGS) == list(PUBLISHED) + NOT_IN_PAPER


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_setting_maps_only_known_emotions(name: str) -> None:
    setting = SETTINGS[name]
    assert setting.name == name and get_setting(name) is setting
    assert set(setting.mapping) <= set(EMOTIONS[setting.dataset])
    assert set(setting.mapping.values()) == set(setting.classes)
    assert setting.num_classes == len(setting.classes) == len(PUBLISHED[name][0])
    for emotion in EMOTIONS[setting.dataset]:
        label = setting.label_of(emotion)
        expected = setting.classes.index(setting.mapping[emotion]) if emotion in setting.mapping else None
        assert label == expected


@pytest.mark.parametrize("name", list(PUBLISHED))
def test_published_counts_per_class(published: dict[str, list[Sample]], name: str) -> None:
    setting = SETTINGS[name]
    counts, excluded = count_by_class(published[setting.dataset], setting)
    want_counts, want_excluded = PUBLISHED[name]
    assert counts == want_counts
    assert list(counts) == setting.classes  # class order, zeros included
    assert excluded == want_excluded


@pytest.mark.parametrize("dataset", list(TOTALS))
def test_published_totals(published: dict[str, list[Sample]], dataset: str) -> None:
    samples = published[dataset]
    assert (len(samples), len({s.subject for s in samples})) == TOTALS[dataset]
    assert {s.dataset for s in samples} == {dataset}


def test_labels_of_the_three_class_settings() -> None:
    casme2 = SETTINGS["casme2/3"]
    assert casme2.classes == ["positive", "negative", "surprise"]
    emotions = ["happiness", "disgust", "repression", "sadness", "fear", "surprise", "others"]
    assert [casme2.label_of(e) for e in emotions] == [0, 1, 1, 1, 1, 2, None]
    samm = SETTINGS["samm/3"]
    assert [samm.label_of(e) for e in ["happiness", "anger", "contempt", "disgust", "fear", "sadness", "surprise",
                                       "other"]] == [0, 1, 1, 1, 1, 1, 2, None]
    assert SETTINGS["casme2/5"].label_of(" Happiness ") == 0  # as annotated, before normalising


def test_cross_settings_share_the_class_order() -> None:
    a, b = SETTINGS["cross/casme2"], SETTINGS["cross/samm"]
    assert (a.dataset, b.dataset) == ("casme2", "samm")
    assert a.classes == b.classes == ["happiness", "surprise", "others"]
    assert (a.label_of("others"), b.label_of("other")) == (2, 2)
    assert (a.label_of("happiness"), b.label_of("happiness")) == (0, 0)
    assert a.label_of("disgust") is None and b.label_of("anger") is None


def test_unknown_setting_is_one_line_listing_the_known_ones() -> None:
    with pytest.raises(ConfigError) as err:
        SETTINGS["casme2/4"]
    assert str(err.value) == (
        "unknown class setting 'casme2/4'; known: casme2/5, casme2/3, samm/5, samm/3, casme_sq/4, casme3/7, "
        "cross/casme2, cross/samm, " + ", ".join(NOT_IN_PAPER)
    )
    assert isinstance(err.value, KeyError)  # still a dict lookup failure
    with pytest.raises(ConfigError):
        get_setting("nope")
    assert "nope" not in SETTINGS and SETTINGS.get("nope") is None


def test_a_setting_with_a_typo_is_refused() -> None:
    with pytest.raises(ValueError, match=r"unknown classes \['happy'\], classes with no emotion \['happiness'\]"):
        ClassSetting("x/1", "casme2", ["happiness"], {"happiness": "happy"})


def test_count_by_class_takes_cache_clip_dicts_and_refuses_another_dataset() -> None:
    clips = [{"emotion": "happiness"}, {"emotion": "others"}, {"emotion": "fear"}, {"emotion": "fear"}]
    assert count_by_class(clips, SETTINGS["casme2/5"]) == (
        {"happiness": 1, "disgust": 0, "repression": 0, "surprise": 0, "others": 1}, {"fear": 2})
    samm = Sample("samm", "006", "006_1_2", 1, 2, 3, "happiness", "12", 200.0, ("a.jpg",), "f.xlsx:row 2")
    with pytest.raises(ConfigError, match=r"^class setting casme2/5 is for casme2, got a samm sample$"):
        count_by_class([samm], SETTINGS["casme2/5"])


def test_reference_counts_are_the_papers() -> None:
    """`orchestrator/reference/datasets.yaml` (what `fdp-sweep datasets` prints as the paper's
    counts) agrees with this file's independent transcription of Tables 1-2, class by class."""
    from orchestrator.report.datasets import dataset_reference

    ref = dataset_reference()["settings"]
    assert set(ref) == set(PUBLISHED) | {"smic/3"}
    assert ref["smic/3"]["counts"] == {}  # not in the paper: only the MEGC2019 list's counts
    assert ref["smic/3"]["megc2019"] == {"positive": 51, "negative": 70, "surprise": 43}
    for name, (counts, _) in PUBLISHED.items():
        assert ref[name]["counts"] == counts, name
        assert list(ref[name]["counts"]) == SETTINGS[name].classes  # printed in class order
    # MEGC2019's composite list (SPEC §4.2a): CASME II 88/32/25 = 145, SAMM 92/26/15 = 133
    assert ref["casme2/3"]["megc2019"] == {"positive": 32, "negative": 88, "surprise": 25}
    assert ref["samm/3"]["megc2019"] == {"positive": 26, "negative": 92, "surprise": 15}
