"""Use cases: each one loads, asks the decision core, acts and answers."""
