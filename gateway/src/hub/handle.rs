//! [`SessionHandle`]: what the hub holds for each local session.

use tokenim_protocol::{Codec, SessionId, UserId};

use super::outbound::Outbound;

/// The shareable face of a session: who it is, which codec it speaks, and
/// its outbound queue. Cheap to hold in many subscriber lists (`Arc`).
#[derive(Debug)]
pub struct SessionHandle {
    /// Unique within this process.
    pub id: SessionId,
    /// The authenticated user.
    pub user: UserId,
    /// The codec of the connection, so fan-out picks the right bytes.
    pub codec: Codec,
    /// Frames waiting to be written.
    pub outbound: Outbound,
}
