"""The resilience suites users run: ``pytest suites`` from a checkout, or ``pytest --pyargs suites``
where the harness is installed."""
