"""Excuses: a student asks for an absence or a late mark to be excused; the lecturer decides."""
