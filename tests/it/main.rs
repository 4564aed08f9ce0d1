//! The integration tests: one binary, one module per area.

mod helpers;
mod openapi;
mod partner;
mod profiles;
