//! Gateway integration tests: the real server on port 0, real sockets, the
//! real Rust client, both codecs. One test binary; modules by topic.

mod support;

mod api;
mod auth;
mod broker_contract;
mod history;
mod http;
mod lifecycle;
mod limits;
mod malformed;
mod permissions;
mod postgres_store;
mod pubsub;
mod redis_cluster;
mod redis_faults;
mod safe_defaults;
mod scale_out;
mod slow_consumer;
mod store_contract;
mod tls;
