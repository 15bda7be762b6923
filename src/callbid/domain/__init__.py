"""The pure core: business nouns and the decisions made on them; no I/O."""
