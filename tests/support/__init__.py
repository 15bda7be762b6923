"""Test helpers that start real servers (Redis Sentinel deployments) for the suites."""
