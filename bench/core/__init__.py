"""Shared plugin contracts: the types tasks and strategies implement, and the one user-error type."""
