"""Windsor resilience harness: fault-injection suites for Xen hosts with a disaggregated dom0."""

__version__ = "0.1.0"
