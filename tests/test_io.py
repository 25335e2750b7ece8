"""The cache pattern written once (``build_once``): build under the lock, once, and verify."""

import threading
import time

import pytest

from eu.errors import EUError
from eu.io import build_once


def test_build_once_builds_a_missing_entry_once_and_then_reuses_it(tmp_path):
    target, builds = tmp_path / "entry.txt", []

    def build():
        builds.append(1)
        target.write_text("done")

    assert build_once(target, target.is_file, build) == target
    assert build_once(target, target.is_file, build) == target
    assert builds == [1] and target.read_text() == "done"


def test_two_threads_wanting_one_entry_build_it_once(tmp_path):
    target, builds = tmp_path / "entry.txt", []

    def build():
        builds.append(1)
        time.sleep(0.3)  # hold the lock while the other thread finds the entry missing and waits
        target.write_text("done")

    threads = [threading.Thread(target=build_once, args=(target, target.is_file, build)) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert builds == [1]


def test_a_build_that_leaves_nothing_behind_is_an_error(tmp_path):
    target = tmp_path / "entry.txt"
    with pytest.raises(EUError, match="did not complete"):
        build_once(target, target.is_file, lambda: None)
