//! The simulated Connector: a partner client driven only by the profile, with staff sync,
//! lead-source sync and delivery as the integration guide describes them.

pub mod client;
pub mod exchange;
pub mod session;

pub use client::{Answer, CallError, ClientLimits, ListFailure, ListOutcome, PartnerClient, Saved};
pub use exchange::{Exchange, Recorder, Redactor};
