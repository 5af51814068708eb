"""Turning JUnit files into comparisons, regressions and sign-off documents."""
