"""Adapters: storage, hot state back-ends, lookups; everything that touches the outside."""
