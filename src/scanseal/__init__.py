"""ScanSeal: sealed, audited transfer of medical images between institutions."""

__version__ = "0.1.0"
