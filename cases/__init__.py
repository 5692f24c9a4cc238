"""Emerging cases for the defence organisation: detection, the case workflow and its emails."""
