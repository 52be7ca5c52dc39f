"""Task families: each module exposes `FAMILIES`, a map from family name to its seeded candidate generator."""
