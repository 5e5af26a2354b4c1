"""Generated from proto/seatd/cloud/v1 by `make proto`."""
