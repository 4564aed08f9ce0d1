//! The integration tests: one binary, one module per area.

mod bundle;
mod certify;
mod client;
mod connector;
mod controls;
mod diff;
mod formats;
mod fuzz;
mod helpers;
mod hostile;
mod html;
mod oauth;
mod openapi;
mod partner;
mod profiles;
mod properties;
mod redaction;
mod rules;
mod serve;
mod shapes;
mod simulate;
mod tls;
mod twoway;
mod waivers;
mod xml;
