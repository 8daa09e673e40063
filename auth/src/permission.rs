//! Roles, permissions and grants: what a user (or an application key) may
//! do on a channel, decided by a [`Policy`].
//!
//! * A [`Role`] maps a name to a set of [`Permission`]s.
//! * A [`Grant`] gives one permission to a [`Subject`] (a user, a role or an
//!   application key), on every channel or on the channels a
//!   [`ChannelPattern`] matches.
//! * A user holds the roles its record lists; a user with none (including
//!   one the store has never seen, known only from its token) holds the
//!   built-in role [`DEFAULT_USER_ROLE`] (by default it allows nothing;
//!   the node's configuration defines it, see [`Policy::with_user_role`]).
//!   An application key holds [`DEFAULT_APP_ROLE`]. Both can be redefined
//!   like any role to change what everyone may do.
//!
//! ```
//! use tokenim_auth::{Grant, Permission, Policy, Principal, RoleName, Subject};
//! use tokenim_protocol::{ChannelName, UserId};
//!
//! let mut policy = Policy::default();
//! let guest = RoleName::new("guest").unwrap();
//! policy.set_role(guest.clone(), [Permission::Subscribe].into());
//! let alice = Principal::user(UserId::new("alice").unwrap(), vec![guest]);
//! let lobby = ChannelName::new("rooms.lobby").unwrap();
//! assert!(policy.allows(&alice, Permission::Subscribe, Some(&lobby)));
//! assert!(!policy.allows(&alice, Permission::Publish, Some(&lobby)));
//!
//! policy.grant(Grant {
//!     subject: Subject::User(UserId::new("alice").unwrap()),
//!     permission: Permission::Publish,
//!     channels: Some("rooms.*".parse().unwrap()),
//! });
//! assert!(policy.allows(&alice, Permission::Publish, Some(&lobby)));
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};
use tokenim_protocol::{ChannelName, UserId};

use crate::api_key::ApiKeyId;
use crate::scope::ChannelPattern;

/// The role every user without roles holds.
pub const DEFAULT_USER_ROLE: &str = "user";
/// The role every application key holds.
pub const DEFAULT_APP_ROLE: &str = "app";

/// Something a user or application may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Permission {
    /// Send direct messages to users.
    Send,
    /// Publish to a channel.
    Publish,
    /// Subscribe to a channel.
    Subscribe,
    /// Read a channel's history (and recover missed messages).
    History,
    /// See who is in a channel.
    Presence,
    /// Manage a group: its channel without being a member.
    ManageGroup,
}

impl Permission {
    /// Every permission.
    pub const ALL: [Permission; 6] = [
        Permission::Send,
        Permission::Publish,
        Permission::Subscribe,
        Permission::History,
        Permission::Presence,
        Permission::ManageGroup,
    ];

    /// The permission's name, e.g. `publish`.
    pub fn as_str(self) -> &'static str {
        match self {
            Permission::Send => "send",
            Permission::Publish => "publish",
            Permission::Subscribe => "subscribe",
            Permission::History => "history",
            Permission::Presence => "presence",
            Permission::ManageGroup => "manage_group",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role's name: 1 to 32 bytes of `a-z 0-9 _ -`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct RoleName(String);

/// A string that is not a valid [`RoleName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid role name {0:?}: 1 to 32 bytes of a-z 0-9 _ -")]
pub struct InvalidRole(pub String);

impl RoleName {
    /// Validates a role name.
    pub fn new(s: &str) -> Result<Self, InvalidRole> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'-'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidRole(crate::error::echo(s)))
        }
    }

    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn builtin(s: &str) -> Self {
        Self(s.to_owned())
    }
}

impl std::borrow::Borrow<str> for RoleName {
    fn borrow(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for RoleName {
    type Error = InvalidRole;
    fn try_from(s: String) -> Result<Self, InvalidRole> {
        Self::new(&s)
    }
}

impl From<RoleName> for String {
    fn from(r: RoleName) -> String {
        r.0
    }
}

impl fmt::Display for RoleName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A role and the permissions it gives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// The role's name.
    pub name: RoleName,
    /// What holders of the role may do, on every channel.
    pub permissions: BTreeSet<Permission>,
}

/// Who a grant is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    /// One user.
    User(UserId),
    /// Every holder of a role.
    Role(RoleName),
    /// One application key.
    App(ApiKeyId),
}

impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::User(u) => write!(f, "user:{}", u.as_str()),
            Subject::Role(r) => write!(f, "role:{r}"),
            Subject::App(k) => write!(f, "app:{k}"),
        }
    }
}

impl Subject {
    /// Reads what [`Display`](fmt::Display) writes: `user:<id>`,
    /// `role:<name>` or `app:<key id>`, each checked; `None` for anything
    /// else.
    ///
    /// ```
    /// use tokenim_auth::Subject;
    /// let subject = Subject::parse("role:moderator").unwrap();
    /// assert_eq!(subject.to_string(), "role:moderator");
    /// assert!(Subject::parse("bogus").is_none());
    /// assert!(Subject::parse("user:bad id").is_none());
    /// ```
    pub fn parse(s: &str) -> Option<Self> {
        let (kind, name) = s.split_once(':')?;
        match kind {
            "user" => UserId::new(name).ok().map(Subject::User),
            "role" => RoleName::new(name).ok().map(Subject::Role),
            "app" => ApiKeyId::parse(name).ok().map(Subject::App),
            _ => None,
        }
    }
}

/// One permission given to a subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    /// Who receives it.
    pub subject: Subject,
    /// What it allows.
    pub permission: Permission,
    /// On which channels (`None`: every channel).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<ChannelPattern>,
}

impl Grant {
    /// Whether this grant covers `channel` (`None`: a channel-less action).
    fn covers(&self, channel: Option<&ChannelName>) -> bool {
        match (&self.channels, channel) {
            (None, _) => true,
            (Some(p), Some(c)) => p.matches(c),
            (Some(_), None) => false,
        }
    }
}

/// Who is asking: a user with its roles, or an application key.
///
/// A principal without roles holds its kind's default role
/// ([`DEFAULT_USER_ROLE`] or [`DEFAULT_APP_ROLE`]) implicitly, without an
/// allocation: every idle connection holds one of these.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The user or key itself.
    pub subject: Subject,
    /// The roles it holds; empty: the default role of its kind.
    pub roles: Vec<RoleName>,
}

impl Principal {
    /// A user holding `roles`, or [`DEFAULT_USER_ROLE`] when it has none.
    pub fn user(user: UserId, roles: Vec<RoleName>) -> Self {
        Self {
            subject: Subject::User(user),
            roles,
        }
    }

    /// An application key, holding [`DEFAULT_APP_ROLE`].
    pub fn app(key: ApiKeyId) -> Self {
        Self {
            subject: Subject::App(key),
            roles: Vec::new(),
        }
    }

    /// The role held when `roles` is empty.
    fn default_role(&self) -> &'static str {
        match self.subject {
            Subject::App(_) => DEFAULT_APP_ROLE,
            _ => DEFAULT_USER_ROLE,
        }
    }

    /// Whether it holds `role`.
    pub fn holds(&self, role: &str) -> bool {
        if self.roles.is_empty() {
            self.default_role() == role
        } else {
            self.roles.iter().any(|r| r.as_str() == role)
        }
    }

    /// The names of the roles it holds (the default one when none).
    fn role_names(&self) -> impl Iterator<Item = &str> {
        let default = self.roles.is_empty().then(|| self.default_role());
        default
            .into_iter()
            .chain(self.roles.iter().map(RoleName::as_str))
    }
}

/// Every role and grant: answers whether a principal may do something.
///
/// The built-in roles ([`DEFAULT_USER_ROLE`], [`DEFAULT_APP_ROLE`]) have
/// definitions that come from the node's configuration and are never
/// stored ([`Policy::with_user_role`]); a role set with
/// [`Policy::set_role`] under their name replaces them and is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    roles: BTreeMap<RoleName, BTreeSet<Permission>>,
    grants: Vec<Grant>,
    #[serde(skip, default = "builtin_roles")]
    builtin: BTreeMap<RoleName, BTreeSet<Permission>>,
}

/// The built-in roles as [`Policy::default`] defines them.
fn builtin_roles() -> BTreeMap<RoleName, BTreeSet<Permission>> {
    BTreeMap::from([
        (RoleName::builtin(DEFAULT_USER_ROLE), BTreeSet::new()),
        (
            RoleName::builtin(DEFAULT_APP_ROLE),
            [Permission::Publish, Permission::Send].into(),
        ),
    ])
}

impl Default for Policy {
    /// The built-in roles, default-deny: `user` may do nothing (a user
    /// acts only where a grant, another role or its token's claims allow);
    /// `app` may publish and send.
    fn default() -> Self {
        Self {
            roles: BTreeMap::new(),
            grants: Vec::new(),
            builtin: builtin_roles(),
        }
    }
}

impl Policy {
    /// What development mode gives the built-in role `user`: every
    /// permission but `manage_group`.
    pub fn development_user_role() -> BTreeSet<Permission> {
        Permission::ALL
            .into_iter()
            .filter(|p| *p != Permission::ManageGroup)
            .collect()
    }

    /// This policy with the built-in role `user` defined as `permissions`
    /// (unless a stored definition replaces it).
    pub fn with_user_role(mut self, permissions: BTreeSet<Permission>) -> Self {
        self.builtin
            .insert(RoleName::builtin(DEFAULT_USER_ROLE), permissions);
        self
    }

    /// Whether `who` may do `permission` (on `channel`, when the action
    /// has one).
    pub fn allows(
        &self,
        who: &Principal,
        permission: Permission,
        channel: Option<&ChannelName>,
    ) -> bool {
        let by_role = who
            .role_names()
            .any(|r| self.permissions(r).is_some_and(|p| p.contains(&permission)));
        by_role
            || self.grants.iter().any(|g| {
                g.permission == permission
                    && g.covers(channel)
                    && (g.subject == who.subject
                        || matches!(&g.subject, Subject::Role(r) if who.holds(r.as_str())))
            })
    }

    /// A role's permissions: its stored definition, else the built-in one.
    fn permissions(&self, role: &str) -> Option<&BTreeSet<Permission>> {
        self.roles.get(role).or_else(|| self.builtin.get(role))
    }

    /// Defines (or redefines) a role.
    pub fn set_role(&mut self, name: RoleName, permissions: BTreeSet<Permission>) {
        self.roles.insert(name, permissions);
    }

    /// Removes a role and every grant made to it; returns whether it
    /// existed. A built-in role falls back to its configured definition.
    pub fn remove_role(&mut self, name: &RoleName) -> bool {
        let existed = self.roles.remove(name).is_some();
        if existed {
            self.grants
                .retain(|g| !matches!(&g.subject, Subject::Role(r) if r == name));
        }
        existed
    }

    /// A role's permissions.
    pub fn role(&self, name: &RoleName) -> Option<&BTreeSet<Permission>> {
        self.permissions(name.as_str())
    }

    /// Every role, by name, the built-in ones included.
    pub fn roles(&self) -> impl Iterator<Item = Role> + '_ {
        let builtin = self
            .builtin
            .iter()
            .filter(|(name, _)| !self.roles.contains_key(*name));
        let mut all: Vec<_> = self.roles.iter().chain(builtin).collect();
        all.sort_by(|a, b| a.0.cmp(b.0));
        all.into_iter().map(|(name, p)| Role {
            name: name.clone(),
            permissions: p.clone(),
        })
    }

    /// Adds a grant; returns `false` if the same grant already exists.
    pub fn grant(&mut self, grant: Grant) -> bool {
        if self.grants.contains(&grant) {
            return false;
        }
        self.grants.push(grant);
        true
    }

    /// Removes a grant; returns whether it existed.
    pub fn revoke(&mut self, grant: &Grant) -> bool {
        let before = self.grants.len();
        self.grants.retain(|g| g != grant);
        self.grants.len() != before
    }

    /// Every grant, in the order they were made.
    pub fn grants(&self) -> &[Grant] {
        &self.grants
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(id: &str, roles: &[&str]) -> Principal {
        Principal::user(
            UserId::new(id).unwrap(),
            roles.iter().map(|r| RoleName::new(r).unwrap()).collect(),
        )
    }

    fn channel(s: &str) -> ChannelName {
        ChannelName::new(s).unwrap()
    }

    #[test]
    fn the_default_user_role_allows_nothing_unless_configured() {
        let bob = user("bob", &[]);
        let lobby = channel("rooms.lobby");
        let policy = Policy::default();
        for p in Permission::ALL {
            assert!(!policy.allows(&bob, p, Some(&lobby)), "{p}");
        }
        let policy = policy.with_user_role([Permission::Subscribe].into());
        assert!(policy.allows(&bob, Permission::Subscribe, Some(&lobby)));
        assert!(!policy.allows(&bob, Permission::Publish, Some(&lobby)));
        let user_role = RoleName::new(DEFAULT_USER_ROLE).unwrap();
        assert_eq!(
            policy.role(&user_role),
            Some(&[Permission::Subscribe].into())
        );
        assert_eq!(policy.roles().count(), 2);
    }

    #[test]
    fn built_in_definitions_are_not_stored_and_a_stored_one_wins() {
        let open = Policy::default().with_user_role(Policy::development_user_role());
        let stored: Policy = serde_json::from_str(&serde_json::to_string(&open).unwrap()).unwrap();
        assert!(!stored.allows(&user("bob", &[]), Permission::Send, None));
        let mut policy = Policy::default();
        policy.set_role(
            RoleName::new(DEFAULT_USER_ROLE).unwrap(),
            [Permission::Send].into(),
        );
        let stored: Policy =
            serde_json::from_str(&serde_json::to_string(&policy).unwrap()).unwrap();
        let stored = stored.with_user_role(BTreeSet::new());
        assert!(stored.allows(&user("bob", &[]), Permission::Send, None));
        assert_eq!(stored.roles().count(), 2);
    }

    #[test]
    fn users_without_roles_hold_the_default_role() {
        let mut policy = Policy::default().with_user_role(Policy::development_user_role());
        let bob = user("bob", &[]);
        assert!(policy.allows(&bob, Permission::Send, None));
        assert!(!policy.allows(&bob, Permission::ManageGroup, None));
        policy.set_role(
            RoleName::new(DEFAULT_USER_ROLE).unwrap(),
            [Permission::Subscribe].into(),
        );
        assert!(!policy.allows(&bob, Permission::Send, None));
    }

    #[test]
    fn role_grants_reach_holders_and_channel_grants_only_their_channels() {
        let mut policy = Policy::default();
        let mods = RoleName::new("mod").unwrap();
        policy.set_role(mods.clone(), BTreeSet::new());
        let grant = Grant {
            subject: Subject::Role(mods),
            permission: Permission::Publish,
            channels: Some(ChannelPattern::new("news.*").unwrap()),
        };
        assert!(policy.grant(grant.clone()));
        assert!(!policy.grant(grant.clone()));
        let m = user("m", &["mod"]);
        assert!(policy.allows(&m, Permission::Publish, Some(&channel("news.a"))));
        assert!(!policy.allows(&m, Permission::Publish, Some(&channel("rooms.a"))));
        assert!(!policy.allows(&m, Permission::Publish, None));
        assert!(!policy.allows(&user("x", &[]), Permission::ManageGroup, None));
        assert!(policy.revoke(&grant));
        assert!(!policy.allows(&m, Permission::Publish, Some(&channel("news.a"))));
    }

    #[test]
    fn grants_to_the_default_role_reach_users_without_roles_only() {
        let mut policy = Policy::default().with_user_role(Policy::development_user_role());
        policy.set_role(RoleName::new("mod").unwrap(), BTreeSet::new());
        policy.grant(Grant {
            subject: Subject::Role(RoleName::new(DEFAULT_USER_ROLE).unwrap()),
            permission: Permission::ManageGroup,
            channels: None,
        });
        assert!(policy.allows(&user("plain", &[]), Permission::ManageGroup, None));
        assert!(!policy.allows(&user("m", &["mod"]), Permission::ManageGroup, None));
        assert!(!policy.allows(&user("m", &["mod"]), Permission::Send, None));
    }

    #[test]
    fn apps_hold_the_app_role_and_their_own_grants() {
        let mut policy = Policy::default();
        let key = ApiKeyId::generate();
        let app = Principal::app(key.clone());
        assert!(policy.allows(&app, Permission::Publish, Some(&channel("a"))));
        assert!(!policy.allows(&app, Permission::History, Some(&channel("a"))));
        policy.grant(Grant {
            subject: Subject::App(key),
            permission: Permission::History,
            channels: None,
        });
        assert!(policy.allows(&app, Permission::History, Some(&channel("a"))));
    }

    #[test]
    fn subjects_and_grants_have_a_stable_json_form() {
        let g = Grant {
            subject: Subject::User(UserId::new("alice").unwrap()),
            permission: Permission::ManageGroup,
            channels: Some(ChannelPattern::new("groups.*").unwrap()),
        };
        let json = serde_json::to_string(&g).unwrap();
        assert_eq!(
            json,
            r#"{"subject":{"user":"alice"},"permission":"manage_group","channels":"groups.*"}"#
        );
        assert_eq!(serde_json::from_str::<Grant>(&json).unwrap(), g);
    }
}
