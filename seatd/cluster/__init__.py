"""Cluster mode: seatd instances over etcd, one leader arbitrating, the others standing by.

`lease` is the leader's own proof of leadership (pure), `election` campaigns and keeps the
etcd lease alive, `standby` answers workstations and administrators while this instance does
not lead, `config` is the `[cluster]` section.
"""
