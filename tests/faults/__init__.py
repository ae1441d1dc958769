"""Fault injection: the soak (``python -m tests.faults.soak``) and the tests that assert its invariants."""
