"""Stand-ins for the outside world (upstream resolvers) used by the integration tests."""
