"""Tests for the HA-free bridge: protocol, server, client, simulator, command line."""
