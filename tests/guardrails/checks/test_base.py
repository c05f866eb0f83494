"""Masking, shared by every check: spans in any order, overlapping or out of range, become one
redaction each, and nothing outside them changes."""

from __future__ import annotations

from relaygate.guardrails.checks.base import PASSED, Evaluation, Span, apply_masks


def _render(label: str) -> str:
    return f"[{label}]"


def test_each_span_is_replaced_by_its_label_and_the_rest_is_kept() -> None:
    text = "call 555-1234 or mail a@b.io"
    spans = (Span(22, 28, "EMAIL"), Span(5, 13, "PHONE"))  # out of order on purpose
    assert apply_masks(text, spans, _render) == "call [PHONE] or mail [EMAIL]"


def test_overlapping_spans_merge_into_one_region_named_by_the_first() -> None:
    text = "0123456789abcdef"
    spans = (Span(4, 10, "B"), Span(2, 6, "A"), Span(9, 12, "C"), Span(14, 15, "D"))
    assert apply_masks(text, spans, _render) == "01[A]cd[D]f"


def test_adjacent_spans_stay_separate() -> None:
    assert apply_masks("abcdef", (Span(0, 3, "X"), Span(3, 6, "Y")), _render) == "[X][Y]"


def test_spans_are_clipped_to_the_text_and_empty_ones_ignored() -> None:
    assert apply_masks("abc", (Span(-5, 1, "X"), Span(2, 99, "Y"), Span(1, 1, "Z")), _render) == "[X]b[Y]"


def test_no_spans_returns_the_text_itself() -> None:
    text = "unchanged"
    assert apply_masks(text, (), _render) is text


def test_maskable_needs_a_violation_with_spans() -> None:
    assert not PASSED.maskable
    assert not Evaluation(True, "not span-shaped").maskable
    assert Evaluation(True, "found", (Span(0, 1, "X"),)).maskable
