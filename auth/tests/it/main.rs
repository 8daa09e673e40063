//! Integration tests of `tokenim-auth`: one test binary, one module per
//! concern. Keys are fixed PEM files under `tests/keys/`.

mod algorithms;
mod config;
mod rejections;
mod rotation;
mod support;
mod time;
