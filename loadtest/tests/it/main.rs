//! The generator's integration tests: a real gateway on port 0 in this
//! process, the generator's scenarios run briefly against it (small N,
//! a few seconds at most), and their counts checked against what was
//! sent. One test binary; modules by scenario.

mod support;

mod broadcast;
mod chat;
mod cli;
mod connect;
mod idle;
mod ramp;
mod socketio;
mod workers;
