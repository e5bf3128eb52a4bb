"""Sealed envelopes, recipient key wrapping, identities and signatures (docs/FORMAT.md)."""
