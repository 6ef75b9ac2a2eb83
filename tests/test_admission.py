"""Large-image analyses take turns across sessions: one at a time, re-entrant per thread, small ones never wait."""

from __future__ import annotations

import threading
import time

import pytest

from dashboard import admission

LARGE = admission.LARGE_PIXELS + 1


def test_small_images_never_wait() -> None:
    with admission.large_image_slot(LARGE), admission.large_image_slot(admission.LARGE_PIXELS) as waited:
        assert waited is False


def test_a_second_large_analysis_waits_until_the_first_ends() -> None:
    events: list[str] = []
    first_in = threading.Event()
    release_first = threading.Event()

    def first() -> None:
        with admission.large_image_slot(LARGE):
            events.append("first in")
            first_in.set()
            release_first.wait(10)
            events.append("first out")

    def second() -> None:
        first_in.wait(10)
        waits: list[float] = []
        with admission.large_image_slot(LARGE, waiting=waits.append, poll_s=0.01) as waited:
            events.append("second in")
            assert waited
            assert waits  # the page's note was updated while waiting

    threads = [threading.Thread(target=first), threading.Thread(target=second)]
    for thread in threads:
        thread.start()
    first_in.wait(10)
    time.sleep(0.1)  # the second is waiting now
    assert events == ["first in"]
    release_first.set()
    for thread in threads:
        thread.join(10)
    assert events == ["first in", "first out", "second in"]


def test_the_holder_may_ask_again_without_deadlock() -> None:
    with admission.large_image_slot(LARGE), admission.large_image_slot(LARGE) as waited:
        assert waited is False
    with admission.large_image_slot(LARGE) as waited:  # released: free again
        assert waited is False


def test_a_run_stopped_while_waiting_takes_no_slot() -> None:
    class Stopped(Exception):
        pass

    def stop(_: float) -> None:
        raise Stopped

    holder_in, done = threading.Event(), threading.Event()

    def holder() -> None:
        with admission.large_image_slot(LARGE):
            holder_in.set()
            done.wait(10)

    thread = threading.Thread(target=holder)
    thread.start()
    holder_in.wait(10)
    with pytest.raises(Stopped), admission.large_image_slot(LARGE, waiting=stop, poll_s=0.01):
        pytest.fail("a stopped run must not enter")
    done.set()
    thread.join(10)
    with admission.large_image_slot(LARGE) as waited:  # the slot is free: nothing leaked
        assert waited is False


def test_poll_interval_must_be_positive() -> None:
    with (
        pytest.raises(ValueError, match="poll_s must be positive"),
        admission.large_image_slot(LARGE, poll_s=0),
    ):
        pass
