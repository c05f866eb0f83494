"""Rewriting one event's share of a channel's text when a region of the channel is replaced.

A value can be split over any number of deltas, so a replacement is described on the channel's text
(`Mask(start, end, replacement)`, original offsets) and each event's piece is rewritten on its own: the
event whose piece holds the region's first character carries the whole replacement, the other events
lose their share of the region (their piece may become ""), and every event stays, so the stream keeps
its shape (ids, indexes, finish events) and a client assembling the deltas reads exactly the masked text.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Mask:
    """Channel text `[start, end)` is to read `replacement` (start == end: an insertion)."""

    start: int
    end: int
    replacement: str


def apply_masks(text: str, start: int, masks: Iterable[Mask]) -> str | None:
    """The piece `text`, found at channel offset `start`, with `masks` applied; None when none touches it.

    `masks` must be sorted by start and must not overlap. A zero-length mask is applied by the piece
    whose range holds its offset; an empty piece holds no offset, so it is never rewritten.
    """
    end = start + len(text)
    out: list[str] = []
    position = start
    changed = False
    for mask in masks:
        if mask.start >= end:
            break
        if mask.start < start and mask.end <= start:
            continue
        if mask.start > position:
            out.append(text[position - start : mask.start - start])
        if mask.start >= start:
            out.append(mask.replacement)
        position = max(position, min(mask.end, end))
        changed = True
    if not changed:
        return None
    out.append(text[position - start :])
    return "".join(out)


def merge_masks(masks: Iterable[Mask]) -> list[Mask]:
    """Masks sorted by start, overlapping ones united (the earliest keeps its replacement): over-masking is safe."""
    merged: list[Mask] = []
    for mask in sorted(masks, key=lambda item: (item.start, item.end)):
        if merged and mask.start < merged[-1].end:
            last = merged[-1]
            if mask.end > last.end:
                merged[-1] = Mask(last.start, mask.end, last.replacement)
            continue
        merged.append(mask)
    return merged
