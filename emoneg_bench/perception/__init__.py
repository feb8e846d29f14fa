"""Perception: reading offers and emotions from text."""
