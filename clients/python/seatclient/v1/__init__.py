"""Generated from proto/seatd/v1 by `make proto`."""
