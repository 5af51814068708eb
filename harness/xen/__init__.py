"""Driving a real Xen host: remote commands, the topology plan, console records, inventory."""
