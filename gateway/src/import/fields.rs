//! The rules for single fields shared by users and groups: names, avatar
//! URLs, metadata size, and dropping repeats from lists.

use std::collections::HashSet;
use std::hash::Hash;
use std::io;

use tokenim_protocol::UserId;

use super::ItemError;
use crate::store::Metadata;

/// Longest display name, in characters.
pub const NAME_MAX_CHARS: usize = 256;
/// Longest avatar URL, in characters.
pub const AVATAR_URL_MAX_CHARS: usize = 2048;

/// The display name: `name`, or the id when absent. It must be 1 to
/// [`NAME_MAX_CHARS`] characters, none a control character.
pub(crate) fn check_name(name: Option<String>, id: &UserId) -> Result<String, ItemError> {
    let name = name.unwrap_or_else(|| id.as_str().to_owned());
    if name.is_empty() {
        return Err(ItemError::field(
            "name",
            "must not be empty (leave it out to use the id)",
        ));
    }
    let chars = name.chars().count();
    if chars > NAME_MAX_CHARS {
        return Err(ItemError::field(
            "name",
            format_args!("{chars} characters, at most {NAME_MAX_CHARS} allowed"),
        ));
    }
    if name.chars().any(char::is_control) {
        return Err(ItemError::field(
            "name",
            "must not contain control characters",
        ));
    }
    Ok(name)
}

/// An absolute `http://` or `https://` URL with a host, at most
/// [`AVATAR_URL_MAX_CHARS`] characters, without spaces or control characters.
pub(crate) fn check_avatar_url(url: &str) -> Result<(), ItemError> {
    let bad = |problem: &str| Err(ItemError::field("avatar_url", problem));
    let chars = url.chars().count();
    if chars > AVATAR_URL_MAX_CHARS {
        return Err(ItemError::field(
            "avatar_url",
            format_args!("{chars} characters, at most {AVATAR_URL_MAX_CHARS} allowed"),
        ));
    }
    let rest = ["http://", "https://"].iter().find_map(|scheme| {
        url.get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| &url[scheme.len()..])
    });
    let Some(rest) = rest else {
        return bad("must be an http:// or https:// URL");
    };
    if rest.is_empty() || rest.starts_with('/') {
        return bad("has no host");
    }
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("must not contain spaces or control characters");
    }
    Ok(())
}

/// The metadata must serialize to at most `max_bytes` bytes of compact
/// JSON. Serializing stops as soon as the bound is passed.
pub(crate) fn check_metadata(metadata: &Metadata, max_bytes: usize) -> Result<(), ItemError> {
    let mut counter = Counter {
        bytes: 0,
        max: max_bytes,
    };
    if serde_json::to_writer(&mut counter, metadata).is_err() {
        return Err(ItemError::field(
            "metadata",
            format_args!("larger than {max_bytes} bytes as JSON"),
        ));
    }
    Ok(())
}

/// Counts written bytes and fails past `max`.
struct Counter {
    bytes: usize,
    max: usize,
}

impl io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.bytes += buf.len();
        if self.bytes > self.max {
            return Err(io::Error::other("too large"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `items` without repeats, first occurrences in their order.
pub(crate) fn dedupe<T: Eq + Hash + Clone>(mut items: Vec<T>) -> Vec<T> {
    let mut seen = HashSet::with_capacity(items.len());
    items.retain(|item| seen.insert(item.clone()));
    items
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use tokenim_protocol::ErrorCode;

    use super::*;

    fn alice() -> UserId {
        UserId::new("alice").unwrap()
    }

    #[test]
    fn names_default_to_the_id_and_are_bounded() {
        assert_eq!(check_name(None, &alice()).unwrap(), "alice");
        assert_eq!(
            check_name(Some("Alice A.".into()), &alice()).unwrap(),
            "Alice A."
        );
        // Counted in characters: 256 two-byte ones are a valid name.
        assert_eq!(
            check_name(Some("é".repeat(256)), &alice()).unwrap().len(),
            512
        );
        for bad in ["", "tab\there", "line\nbreak", "nul\0"] {
            let e = check_name(Some(bad.into()), &alice()).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidField);
            assert!(e.message.starts_with("field `name`"), "{}", e.message);
        }
        let e = check_name(Some("é".repeat(257)), &alice()).unwrap_err();
        assert!(e.message.contains("257 characters"), "{}", e.message);
    }

    #[test]
    fn avatar_urls_must_be_http_with_a_host() {
        for ok in [
            "https://cdn.example.com/a.png",
            "HTTP://example.com",
            "http://h",
        ] {
            check_avatar_url(ok).unwrap();
        }
        let long = format!("https://e.com/{}", "a".repeat(AVATAR_URL_MAX_CHARS));
        for bad in [
            "ftp://example.com/a.png",
            "javascript:alert(1)",
            "example.com/a.png",
            "https://",
            "https:///path",
            "https://exa mple.com",
            "https://example.com/\n",
            long.as_str(),
        ] {
            let e = check_avatar_url(bad).unwrap_err();
            assert_eq!(e.code, ErrorCode::InvalidField, "{bad}");
            assert!(e.message.starts_with("field `avatar_url`"), "{}", e.message);
        }
    }

    #[test]
    fn metadata_size_is_the_compact_json_size() {
        let json = json!({"k": "v".repeat(10)});
        let meta = json.as_object().unwrap().clone();
        let size = serde_json::to_vec(&meta).unwrap().len();
        check_metadata(&meta, size).unwrap();
        let e = check_metadata(&meta, size - 1).unwrap_err();
        assert!(e.message.starts_with("field `metadata`"), "{}", e.message);
        check_metadata(&Metadata::new(), 2).unwrap();
    }

    #[test]
    fn dedupe_keeps_first_occurrences_in_order() {
        assert_eq!(dedupe(vec![3, 1, 3, 2, 1]), vec![3, 1, 2]);
    }
}
