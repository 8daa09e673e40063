//! Access control, in one place: who may do what on which channel.
//!
//! * [`Access`] (`node`): the node's copy of the policy (roles and grants)
//!   and of the access version every change bumps.
//! * [`UserView`] (`view`): what one session knows about its user beyond
//!   the token (roles, revocation, checked memberships), [`admit`] when a
//!   token is accepted, and [`UserView::sync`] when the version moves.
//! * `checks`: the permission checks of commands ([`require`],
//!   [`UserView::require_channel`]), asked by sessions and by the server
//!   API alike.
//! * [`publish`]: the rules every publish obeys, from a session or from
//!   the server API, with one answer each.
//!
//! What is stored (the policy document, bans, revocations) is the
//! store's ([`crate::store::policy`]); this module reads it and decides.

mod checks;
mod node;
pub mod publish;
mod view;

pub use self::checks::require;
pub use self::node::Access;
pub use self::view::{Admitted, Refusal, UserView, admit};
