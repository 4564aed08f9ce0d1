//! The integration tests: one binary, one module per area.

mod bundle;
mod certify;
mod client;
mod fuzz;
mod helpers;
mod hostile;
mod openapi;
mod partner;
mod profiles;
mod properties;
mod simulate;
