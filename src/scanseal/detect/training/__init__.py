"""Training of the tamper detector (needs the ``train`` extra: torch). Never imported at runtime.

Run ``make train`` or ``python -m scanseal.detect.training``; see docs/MODEL.md.
"""
