"""gRPC servicers: translate proto <-> domain and domain errors -> statuses. No rules here."""
