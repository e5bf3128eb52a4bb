"""Storage tests; ``tests`` is on the path, so helpers import as ``storage.jsipfs``."""
