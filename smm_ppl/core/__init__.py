"""Layer 1, the basics: input checks, parameters, the prior, configuration and the compiled programs.

Nothing here knows how observations are arranged; every other layer builds on these modules
(``docs/architecture.md``).
"""
