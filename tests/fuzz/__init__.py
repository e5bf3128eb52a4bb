"""Seeded, structure-aware fuzzing of every parser of outside input (docs/RESULTS.md, Fuzzing).

``_harness`` holds the mutators, the runner and its limits; ``targets`` the targets and their
real seed inputs; ``test_fuzz`` runs a few thousand inputs per target under pytest; ``python -m
fuzz`` (``make fuzz``) is the long mode.
"""
