"""Configuration use cases of one company, shared by the admin API and the web console."""
