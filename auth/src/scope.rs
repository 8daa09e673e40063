//! Channel scopes: which channels a token may subscribe or publish to.
//!
//! A token's `channels` and `publish` claims each hold a list of
//! [`ChannelPattern`]s. A claim that is absent puts no limit
//! ([`ChannelScope::Any`]); a claim that is present limits the token to the
//! channels its patterns match ([`ChannelScope::Only`]), so an empty list
//! allows nothing. A present claim also grants: the gateway lets the token
//! do what its claim names without asking the user's roles (the
//! application's backend signed it), while an absent claim leaves the
//! decision to the roles and grants ([`ChannelScope::grants`]).

use std::fmt;

use tokenim_protocol::ChannelName;

/// One entry of a scope claim: an exact channel name (`rooms.lobby`) or a
/// prefix followed by one trailing `*` (`rooms.*`), which matches every
/// channel whose name starts with the prefix. A lone `*` matches every
/// channel.
///
/// ```
/// use tokenim_auth::ChannelPattern;
/// use tokenim_protocol::ChannelName;
///
/// let rooms = ChannelPattern::new("rooms.*").unwrap();
/// assert!(rooms.matches(&ChannelName::new("rooms.lobby").unwrap()));
/// assert!(!rooms.matches(&ChannelName::new("admin").unwrap()));
/// assert!(ChannelPattern::new("ro*ms").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChannelPattern {
    /// Matches exactly this channel.
    Exact(ChannelName),
    /// Matches every channel whose name starts with this text (the pattern
    /// without its trailing `*`).
    Prefix(String),
}

/// A string that is not a valid [`ChannelPattern`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid channel pattern {0:?}: a channel name, or a prefix of one followed by `*`")]
pub struct InvalidPattern(pub String);

impl ChannelPattern {
    /// Parses a pattern. A prefix pattern is accepted only when some valid
    /// channel name starts with its prefix, so a pattern that could never
    /// match (`a b*`, `**`) is refused rather than silently useless.
    pub fn new(s: &str) -> Result<Self, InvalidPattern> {
        let invalid = || InvalidPattern(crate::error::echo(s));
        match s.strip_suffix('*') {
            Some(prefix) => {
                // `prefix + "a"` is a valid name exactly when some valid name
                // starts with `prefix` (every grammar allows a trailing `a`).
                if prefix.contains('*') || ChannelName::new(&format!("{prefix}a")).is_err() {
                    return Err(invalid());
                }
                Ok(Self::Prefix(prefix.to_owned()))
            }
            None => ChannelName::new(s).map(Self::Exact).map_err(|_| invalid()),
        }
    }

    /// Whether `channel` is matched by this pattern.
    pub fn matches(&self, channel: &ChannelName) -> bool {
        match self {
            Self::Exact(name) => name == channel,
            Self::Prefix(prefix) => channel.as_str().starts_with(prefix.as_str()),
        }
    }
}

impl fmt::Display for ChannelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(name) => f.write_str(name.as_str()),
            Self::Prefix(prefix) => write!(f, "{prefix}*"),
        }
    }
}

impl serde::Serialize for ChannelPattern {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for ChannelPattern {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Self::new(&s).map_err(serde::de::Error::custom)
    }
}

impl std::str::FromStr for ChannelPattern {
    type Err = InvalidPattern;

    fn from_str(s: &str) -> Result<Self, InvalidPattern> {
        Self::new(s)
    }
}

/// Which channels a token allows for one kind of action.
///
/// ```
/// use tokenim_auth::{ChannelPattern, ChannelScope};
/// use tokenim_protocol::ChannelName;
///
/// let lobby = ChannelName::new("rooms.lobby").unwrap();
/// assert!(ChannelScope::Any.allows(&lobby));
/// let only = ChannelScope::Only(vec![ChannelPattern::new("news").unwrap()]);
/// assert!(!only.allows(&lobby));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ChannelScope {
    /// The token puts no limit on channels (the claim was absent).
    #[default]
    Any,
    /// Only the channels matched by at least one of these patterns.
    Only(Vec<ChannelPattern>),
}

impl ChannelScope {
    /// Builds a scope from a claim's value: `None` (claim absent) is
    /// [`ChannelScope::Any`]; a list is [`ChannelScope::Only`] of its parsed
    /// patterns, and one invalid entry makes the whole claim invalid.
    pub fn from_claim<S: AsRef<str>>(claim: Option<&[S]>) -> Result<Self, InvalidPattern> {
        match claim {
            None => Ok(Self::Any),
            Some(list) => list
                .iter()
                .map(|p| ChannelPattern::new(p.as_ref()))
                .collect::<Result<_, _>>()
                .map(Self::Only),
        }
    }

    /// Whether `channel` is inside this scope.
    pub fn allows(&self, channel: &ChannelName) -> bool {
        match self {
            Self::Any => true,
            Self::Only(patterns) => patterns.iter().any(|p| p.matches(channel)),
        }
    }

    /// Whether the token's claim names `channel`: a present claim that
    /// matches it, which the gateway takes as the application's grant.
    pub fn grants(&self, channel: &ChannelName) -> bool {
        matches!(self, Self::Only(patterns) if patterns.iter().any(|p| p.matches(channel)))
    }

    /// Whether this scope puts no limit at all.
    pub fn is_any(&self) -> bool {
        matches!(self, Self::Any)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(s: &str) -> ChannelName {
        ChannelName::new(s).unwrap()
    }

    #[test]
    fn exact_pattern_matches_only_itself() {
        let p = ChannelPattern::new("rooms.lobby").unwrap();
        assert_eq!(p, ChannelPattern::Exact(ch("rooms.lobby")));
        assert!(p.matches(&ch("rooms.lobby")));
        assert!(!p.matches(&ch("rooms.lobby2")));
        assert!(!p.matches(&ch("rooms")));
    }

    #[test]
    fn prefix_pattern_matches_by_prefix() {
        let p = ChannelPattern::new("rooms.*").unwrap();
        assert_eq!(p, ChannelPattern::Prefix("rooms.".into()));
        assert!(p.matches(&ch("rooms.lobby")));
        assert!(p.matches(&ch("rooms.a.b")));
        assert!(!p.matches(&ch("rooms")));
        assert!(!p.matches(&ch("roomsx")));
        assert!(!p.matches(&ch("news.rooms.x")));
        assert_eq!(p.to_string(), "rooms.*");
    }

    #[test]
    fn star_alone_matches_everything() {
        let p = ChannelPattern::new("*").unwrap();
        assert!(p.matches(&ch("anything")));
        assert!(p.matches(&ch("#alice")));
    }

    #[test]
    fn personal_channel_patterns() {
        assert!(
            ChannelPattern::new("#alice")
                .unwrap()
                .matches(&ch("#alice"))
        );
        let p = ChannelPattern::new("#*").unwrap();
        assert!(p.matches(&ch("#bob")));
        assert!(!p.matches(&ch("bob")));
    }

    #[test]
    fn invalid_patterns_are_refused() {
        for bad in [
            "",
            "**",
            "ro*ms",
            "*rooms",
            "rooms.**",
            "has space*",
            "a b",
            "#",
            "#a:b*",
        ] {
            assert!(ChannelPattern::new(bad).is_err(), "{bad:?} accepted");
        }
        let long = "a".repeat(200);
        let err = ChannelPattern::new(&long).unwrap_err();
        assert!(err.0.len() <= crate::error::ECHO_MAX);
    }

    #[test]
    fn scope_from_claim() {
        assert_eq!(
            ChannelScope::from_claim::<&str>(None).unwrap(),
            ChannelScope::Any
        );
        let only = ChannelScope::from_claim(Some(&["news", "rooms.*"][..])).unwrap();
        assert!(only.allows(&ch("news")));
        assert!(only.allows(&ch("rooms.x")));
        assert!(!only.allows(&ch("admin")));
        assert!(!only.is_any());
        let none = ChannelScope::from_claim::<&str>(Some(&[])).unwrap();
        assert!(!none.allows(&ch("news")));
        assert!(ChannelScope::from_claim(Some(&["news", "bad pattern"][..])).is_err());
    }
}
