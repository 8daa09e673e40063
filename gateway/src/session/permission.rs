//! The permission checks of commands, made after the token's own claims:
//! the user's roles and grants ([`tokenim_auth::Policy`], the node's copy in
//! [`crate::access::Access`]) and, on a group channel `groups.<id>`,
//! membership of the group (or `manage_group` on the channel).
//!
//! Memberships are read from the store once and remembered in the
//! session's [`UserView`](super::access::UserView) until the access
//! version moves. A refusal is `1104 permission_denied` naming the
//! permission, or the group; it changes nothing.

use tokenim_auth::{Permission, Principal};
use tokenim_protocol::{ChannelName, ErrorCode};

use super::Session;
use super::commands::{CommandError, fail};
use crate::store::GroupId;
use crate::store::records::GROUP_CHANNEL_PREFIX;

/// The `1104 permission_denied` error for `permission` (on `channel`).
fn denied(permission: Permission, channel: Option<&ChannelName>) -> Result<(), CommandError> {
    // A personal channel stands for its user (send, own history): not named.
    let on = channel
        .filter(|c| !c.is_personal())
        .map(|c| format!(" on {c}"))
        .unwrap_or_default();
    fail(
        ErrorCode::PermissionDenied,
        format!("permission '{permission}' is not granted{on}"),
    )
}

impl Session {
    /// Fails with `1104 permission_denied` unless the user's roles or
    /// grants allow `permission` (on `channel`; for `send`, the target's
    /// personal channel).
    pub(super) fn require(
        &self,
        permission: Permission,
        channel: Option<&ChannelName>,
    ) -> Result<(), CommandError> {
        let principal = self.principal();
        if self
            .state
            .access
            .policy()
            .allows(&principal, permission, channel)
        {
            Ok(())
        } else {
            denied(permission, channel)
        }
    }

    /// [`Session::require`] on `channel`; on a group channel, also
    /// membership of the group or `manage_group` there. `action` completes
    /// "only members of group <id> may …" (e.g. "publish to it").
    pub(super) async fn require_channel(
        &mut self,
        permission: Permission,
        channel: &ChannelName,
        action: &str,
    ) -> Result<(), CommandError> {
        let policy = self.state.access.policy();
        let principal = &self.principal();
        if !policy.allows(principal, permission, Some(channel)) {
            return denied(permission, Some(channel));
        }
        let Some(group) = channel.as_str().strip_prefix(GROUP_CHANNEL_PREFIX) else {
            return Ok(());
        };
        if policy.allows(principal, Permission::ManageGroup, Some(channel)) {
            return Ok(());
        }
        // A name that is no group id names a group nobody can belong to.
        let member = match GroupId::new(group) {
            Ok(id) => self.is_member(id).await?,
            Err(_) => false,
        };
        if member {
            Ok(())
        } else {
            fail(
                ErrorCode::PermissionDenied,
                format!("only members of group {group} may {action}"),
            )
        }
    }

    /// The user with its roles, as the policy asks for.
    fn principal(&self) -> Principal {
        Principal::user(self.handle.user.clone(), self.view.roles())
    }

    /// Whether the user belongs to `group`, from the cache or the store.
    async fn is_member(&mut self, group: GroupId) -> Result<bool, CommandError> {
        if let Some(member) = self.view.membership(&group) {
            return Ok(member);
        }
        let member = self
            .state
            .store
            .is_member(&group, &self.handle.user)
            .await
            .map_err(|e| CommandError {
                code: e.code(),
                message: format!("membership of group {group} not checked: {e}"),
            })?;
        self.view.remember(group, member);
        Ok(member)
    }
}
