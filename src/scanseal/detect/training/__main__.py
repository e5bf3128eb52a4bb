"""``python -m scanseal.detect.training``: retrain, re-export and measure (see run.py)."""

from scanseal.detect.training.run import main

main()
