"""The vendor's reference cloud endpoint: subscriptions, pricing, orders, licence sync."""
