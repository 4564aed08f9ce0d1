//! `spoke` checks that a partner's system integrates correctly with the Connector: it plays
//! InTouch and the Connector against the partner's API, described once as a profile, and ships a
//! mock partner that serves any profile's API shape.

pub mod auth;
pub mod bundle;
pub mod certify;
pub mod cli;
pub mod connector;
pub mod controls;
pub mod digest;
pub mod encoded;
pub mod exit_codes;
pub mod fixtures;
pub mod inbound;
pub mod intouch;
pub mod model;
pub mod output;
pub mod partner;
pub mod profile;
pub mod replay;
pub mod report;
pub mod selftest;
pub mod serve;
pub mod service;
pub mod simulate;
pub mod suite;
pub mod tls;
pub mod twoway;
pub mod xml;
