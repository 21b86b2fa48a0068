"""Key frames of a cached clip: the onset and the apex, as positions in the clip's stored frames.

A cached clip holds the frames onset..offset (`fdp.data.cache`), possibly subsampled uniformly to
`max_frames` (then the clip records `subsampled_from`, the length before). The onset is always the
first stored frame. The apex is the annotated one; where the annotation has none (SMIC, CASME II's
"/", an apex outside onset..offset that the reader set to unknown) ONE rule applies, which looks at
no label and no pixel: the middle frame of onset..offset (`APEX_RULE_MIDDLE`), the rule the
single-frame baseline already uses (`fdp.methods.single_frame.apex_offset`). Which rule gave a clip's apex is
returned with it and stored beside every feature computed from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from fdp.data.cache import subsample

APEX_RULE_ANNOTATED = "annotated"
APEX_RULE_MIDDLE = "middle of onset..offset (apex unknown)"


@dataclass(frozen=True)
class KeyFrames:
    onset: int  # position of the onset frame in the clip's stored frames (always 0)
    apex: int  # position of the apex frame in the clip's stored frames
    apex_rule: str  # APEX_RULE_ANNOTATED or APEX_RULE_MIDDLE


def key_frames(clip: dict[str, Any]) -> KeyFrames:
    """Onset and apex positions of one clip record of a `ClipCache` (its `clips[i]`)."""
    length = int(clip["length"])
    full = int(clip.get("subsampled_from") or length)  # frames onset..offset before any subsampling
    kept = subsample(full, length) if full != length else list(range(length))
    apex = clip.get("apex")
    onset = int(clip["onset"])
    if isinstance(apex, (int, np.integer)) and not isinstance(apex, bool) and 0 <= apex - onset < full:
        # the stored frame nearest to the annotated one (the same frame unless subsampled)
        pos = min(range(length), key=lambda k: (abs(kept[k] - (apex - onset)), k))
        return KeyFrames(0, pos, APEX_RULE_ANNOTATED)
    return KeyFrames(0, length // 2, APEX_RULE_MIDDLE)
