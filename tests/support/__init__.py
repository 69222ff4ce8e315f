"""Test helpers shared across test modules (video generators, tiny models, servers)."""
