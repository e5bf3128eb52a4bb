"""Command groups of the ``scanseal`` command, one module per concern (registered in cli.py)."""
