"""Warm starts for EM and MCMC (SPEC sections 2 and 3)."""
