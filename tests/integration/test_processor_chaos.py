"""test_processor_chaos.py - the short processor chaos run in make test: 150 charges through workers
killed at every phase and proxy faults, then the invariants (tests/chaos/processor_chaos.py)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "chaos"))

import processor_chaos  # noqa: E402


class ProcessorChaosShortTest(unittest.TestCase):

    def test_short_processor_chaos_keeps_every_invariant(self):
        """150 charges, workers dying before, during and after the call, proxy faults: one processor charge per decided charge, never two; events match; reconcile finds 0 differences"""
        self.assertEqual(processor_chaos.main(["--charges", "150", "--crash-percent", "15"]), 0)
