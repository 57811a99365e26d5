"""The memo's validity checks: each kept once, combined into one."""

from __future__ import annotations

from kdns.plugins import memo


def test_a_check_passed_on_again_is_kept_once() -> None:
    calls = 0

    def check() -> bool:
        nonlocal calls
        calls += 1
        return True

    note = memo.Memo()
    note.allow(check)  # the kubernetes plugin's
    note.allow(check)  # the cache passing on the same check for the entry it stored
    combined = memo.every(note.checks)
    assert combined is not None and combined()
    assert calls == 1


def test_every_holds_while_all_hold() -> None:
    state = {"a": True, "b": True}
    combined = memo.every([lambda: state["a"], lambda: state["b"]])
    assert combined is not None and combined()
    state["b"] = False
    assert not combined()
    assert memo.every([]) is None
