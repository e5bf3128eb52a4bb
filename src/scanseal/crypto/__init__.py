"""Sealed envelopes, recipient key wrapping, identities and signatures (EIP-191 and EIP-712).

docs/FORMAT.md specifies the envelope, docs/KEYS.md the identities and signatures.
"""
