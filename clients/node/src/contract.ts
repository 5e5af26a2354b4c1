/**
 * The error contract between seatd and its clients: the same names as the Python library's
 * `seatclient/contract.py`, which the daemon itself encodes with.
 * tests/integration/test_node_error_contract.py checks that this holds every one of them.
 */

/** Trailer holding the serialized seatd.v1.ErrorDetail of a refusal (with the session list). */
export const DETAIL_KEY = "seatd-error-bin";
/** Initial metadata of an Acquire that joined the wait queue: the position it joined at. */
export const QUEUE_POSITION_KEY = "seatd-queue-position";
/** `ErrorInfo.domain` of every refusal. */
export const DOMAIN = "seatd.v1";

/** `ErrorDetail.reason`: stable machine codes, for translation. */
export const Reason = {
  INVALID_ARGUMENT: "INVALID_ARGUMENT",
  SEATS_EXHAUSTED: "SEATS_EXHAUSTED",
  SESSION_NOT_FOUND: "SESSION_NOT_FOUND",
  SESSION_RELEASED: "SESSION_RELEASED",
  SESSION_EXPIRED: "SESSION_EXPIRED",
  SESSION_EVICTED: "SESSION_EVICTED",
  // The session a takeover named is no longer live (it ended while the user chose it).
  TAKEOVER_TARGET_GONE: "TAKEOVER_TARGET_GONE",
  INVALID_LEASE_TOKEN: "INVALID_LEASE_TOKEN",
  STREAM_SUPERSEDED: "STREAM_SUPERSEDED",
  TAKEOVER_DENIED: "TAKEOVER_DENIED",
  UNAVAILABLE: "UNAVAILABLE",
  STORAGE_FAILED: "STORAGE_FAILED",
  STORE_FULL: "STORE_FULL",
  DRAINING: "DRAINING",
  RATE_LIMITED: "RATE_LIMITED",
  QUEUE_FULL: "QUEUE_FULL",
  PING_FLOOD: "PING_FLOOD",
  KEEPALIVE_BACKLOG: "KEEPALIVE_BACKLOG",
  TOO_MANY_CALLS: "TOO_MANY_CALLS",
  LICENCE_EXPIRED: "LICENCE_EXPIRED",
  SEATS_NOT_PURCHASED: "SEATS_NOT_PURCHASED",
  PERMISSION_DENIED: "PERMISSION_DENIED",
  CLOUD_SYNC_FAILED: "CLOUD_SYNC_FAILED",
  UNAUTHENTICATED: "UNAUTHENTICATED",
  RECORD_DAMAGED: "RECORD_DAMAGED",
  // The site's seat policy refused the seat (metadata: policy = the rule, group).
  POLICY_MAX: "POLICY_MAX",
  POLICY_PER_USER: "POLICY_PER_USER",
  POLICY_RESERVED: "POLICY_RESERVED",
  POLICY_EXCLUDED: "POLICY_EXCLUDED",
  // Cluster mode: this instance does not arbitrate; Meta.LEADER says where the leader is.
  NOT_LEADER: "NOT_LEADER",
} as const;
export type Reason = (typeof Reason)[keyof typeof Reason];

/** Every licence refusal's reason starts so (LICENCE_MALFORMED, LICENCE_BAD_SIGNATURE, ...). */
export const LICENCE_PREFIX = "LICENCE_";

/** `ErrorDetail.metadata` keys. */
export const Meta = {
  FIELD: "field",
  SESSION_ID: "session_id",
  BY: "by",
  ENDED_REASON: "ended_reason",
  CAP: "cap",
  IN_USE: "in_use",
  POLICY: "policy",
  NEEDED_ROLE: "needed_role",
  GROUP: "group",
  LEADER: "leader",
  LEADER_NAME: "leader_name",
  LEADER_ADMIN: "leader_admin",
} as const;
