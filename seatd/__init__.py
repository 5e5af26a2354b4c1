"""seatd: seat arbitration for software sold per concurrent connection."""

__version__ = "0.1.0"
