"""Allow ``python -m scanseal``."""

from scanseal.cli import main

main()
