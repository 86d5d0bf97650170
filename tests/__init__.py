"""Tests for the WhatsApp Presence integration."""
