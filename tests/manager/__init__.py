"""Tests of the Home Assistant-free subscription manager."""
