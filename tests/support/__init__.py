"""Test support that does not depend on pytest, shared by the tests and the benches."""
