"""``python -m scanseal.detect.training``: retrain, re-export and measure (see train.py)."""

from scanseal.detect.training.train import main

main()
