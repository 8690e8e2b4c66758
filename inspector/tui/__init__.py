"""The interactive inspector: renders a Report and its ModelGraph, computes nothing itself."""
