//! The permission checks a user's commands pass after the token's own
//! claims (a claim that names the channel stands in for a role): the
//! user's roles and grants ([`Policy`], the node's copy in
//! [`Access`](super::Access)) and, on a group channel `groups.<id>`,
//! membership of the group (or `manage_group` on the channel).
//!
//! Memberships are read from the store once and remembered in the
//! session's [`UserView`] until the access version moves. A refusal is
//! `1104 permission_denied` naming the permission, or the group; it
//! changes nothing. The server API's publish asks the same policy through
//! [`require`] with the key's [`Principal`].

use tokenim_auth::{Permission, Policy, Principal};
use tokenim_protocol::{ChannelName, ErrorBody, ErrorCode, UserId};

use super::UserView;
use crate::store::records::GROUP_CHANNEL_PREFIX;
use crate::store::{GroupId, Store};

/// The `1104 permission_denied` error for `permission` (on `channel`).
fn denied(permission: Permission, channel: Option<&ChannelName>) -> ErrorBody {
    // A personal channel stands for its user (send, own history): not named.
    let on = channel
        .filter(|c| !c.is_personal())
        .map(|c| format!(" on {c}"))
        .unwrap_or_default();
    ErrorBody::new(
        ErrorCode::PermissionDenied,
        format!("permission '{permission}' is not granted{on}"),
    )
}

/// Fails with `1104 permission_denied` unless `policy` allows `principal`
/// `permission` (on `channel`; for `send`, the target's personal channel).
pub fn require(
    policy: &Policy,
    principal: &Principal,
    permission: Permission,
    channel: Option<&ChannelName>,
) -> Result<(), ErrorBody> {
    if policy.allows(principal, permission, channel) {
        Ok(())
    } else {
        Err(denied(permission, channel))
    }
}

impl UserView {
    /// `user` with the roles of this view, as the policy asks for.
    pub fn principal(&self, user: &UserId) -> Principal {
        Principal::user(user.clone(), self.roles())
    }

    /// [`require`] on `channel` for `user`, unless `claimed` (the user's
    /// token names the channel, which grants the permission); on a group
    /// channel, also membership of the group or `manage_group` there,
    /// claimed or not. `action` completes "only members of group <id> may
    /// …" (e.g. "publish to it").
    #[allow(clippy::too_many_arguments)]
    pub async fn require_channel(
        &mut self,
        policy: &Policy,
        store: &Store,
        user: &UserId,
        permission: Permission,
        channel: &ChannelName,
        claimed: bool,
        action: &str,
    ) -> Result<(), ErrorBody> {
        let principal = &self.principal(user);
        if !claimed {
            require(policy, principal, permission, Some(channel))?;
        }
        let Some(group) = channel.as_str().strip_prefix(GROUP_CHANNEL_PREFIX) else {
            return Ok(());
        };
        if policy.allows(principal, Permission::ManageGroup, Some(channel)) {
            return Ok(());
        }
        // A name that is no group id names a group nobody can belong to.
        let member = match GroupId::new(group) {
            Ok(id) => self.is_member(store, user, id).await?,
            Err(_) => false,
        };
        if member {
            Ok(())
        } else {
            Err(ErrorBody::new(
                ErrorCode::PermissionDenied,
                format!("only members of group {group} may {action}"),
            ))
        }
    }

    /// Whether `user` belongs to `group`, from this view or the store.
    async fn is_member(
        &mut self,
        store: &Store,
        user: &UserId,
        group: GroupId,
    ) -> Result<bool, ErrorBody> {
        if let Some(member) = self.membership(&group) {
            return Ok(member);
        }
        let member = store.is_member(&group, user).await.map_err(|e| {
            ErrorBody::new(
                e.code(),
                format!("membership of group {group} not checked: {e}"),
            )
        })?;
        self.remember(group, member);
        Ok(member)
    }
}
