"""Shared test machinery: real servers on loopback ports, in a thread or in a child process."""
