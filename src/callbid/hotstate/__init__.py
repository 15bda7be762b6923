"""Hot state: the shared, fast-changing facts a ping decides on (slots, live reservations,
shield index, rate and cap counters), behind one protocol with one store per deployment mode."""
