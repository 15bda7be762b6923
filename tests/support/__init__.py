"""Test support that does not depend on pytest (real local Redis Cluster and Sentinel
deployments), shared by the tests and the benches."""
