"""HTTP entry points: the publisher API, the owner look-up and the admin REST API."""
