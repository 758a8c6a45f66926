"""Orders, fills, positions, the simulated broker and the position monitor."""
