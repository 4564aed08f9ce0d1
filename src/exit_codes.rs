//! Exit codes of the `spoke` binary. They are API: scripts and CI depend on them.

/// Every applicable MUST rule passed (or, for other commands, the command succeeded).
pub const CONFORMANT: i32 = 0;
/// At least one MUST rule failed or was inconclusive.
pub const NOT_CONFORMANT: i32 = 1;
/// The invocation, the profile or another input file is invalid.
pub const INVALID_INPUT: i32 = 2;
/// The run could not be carried out (partner unreachable, deadline passed, port taken).
pub const RUN_FAILED: i32 = 3;
/// `simulate`: every delivery was saved and nothing was found lost or wrong, but exactly-once
/// delivery could not be verified (the partner's duplicates cannot be counted, or nothing can
/// be read back).
pub const NOT_VERIFIED: i32 = 4;
