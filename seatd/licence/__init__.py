"""Vendor-signed licences: the document, its signed file format, the rules, the vendor tool."""
