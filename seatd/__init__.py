"""seatd: seat arbitration for software sold per concurrent connection."""

import os

# gRPC's C core writes its own log lines to stderr ("E1201 ... add_port.cc:83] Failed to add
# port"), around the clear errors the daemon and seatctl give for the same failure. It reads
# this once, when grpc is first imported, which every seatd module does after this package.
# Set GRPC_VERBOSITY=debug to see them again.
os.environ.setdefault("GRPC_VERBOSITY", "NONE")

__version__ = "0.1.0"
