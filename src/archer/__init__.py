"""Archer: precision marketing for online shops."""
