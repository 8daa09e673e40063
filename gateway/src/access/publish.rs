//! The rules every publish obeys, whoever sends it: a session's `publish`
//! and `send`, or the server API's `POST /v1/publish`. Each rule gives one
//! answer, with the same code on the socket and over HTTP.

use tokenim_protocol::{ChannelName, Data, ErrorBody, ErrorCode};

/// Longest `msg_id` accepted.
pub const MAX_MSG_ID_LEN: usize = 64;

/// Whether `id` is a valid `msg_id` (the idempotency key of a publish):
/// 1 to [`MAX_MSG_ID_LEN`] visible ASCII characters (bytes 0x21 to 0x7e).
pub fn valid_msg_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_MSG_ID_LEN && id.bytes().all(|b| b.is_ascii_graphic())
}

/// `1000 bad_request` unless `msg_id` is absent or [`valid_msg_id`].
pub fn check_msg_id(msg_id: Option<&str>) -> Result<(), ErrorBody> {
    match msg_id {
        Some(id) if !valid_msg_id(id) => Err(ErrorBody::new(
            ErrorCode::BadRequest,
            "msg_id must be 1 to 64 visible ASCII characters",
        )),
        _ => Ok(()),
    }
}

/// `1104 permission_denied` for a channel publish to a personal channel:
/// those take direct messages only (`send`, or `users` over HTTP).
pub fn check_channel(channel: &ChannelName) -> Result<(), ErrorBody> {
    if channel.is_personal() {
        Err(ErrorBody::new(
            ErrorCode::PermissionDenied,
            "personal channels take direct messages: send to the user instead",
        ))
    } else {
        Ok(())
    }
}

/// `message_too_large` when `data` is over `max` bytes
/// (`limits.max_data_size`).
pub fn check_size(data: &Data, max: usize) -> Result<(), ErrorBody> {
    if data.len() > max {
        Err(ErrorBody::new(
            ErrorCode::MessageTooLarge,
            format!("data is {} bytes; the limit is {max}", data.len()),
        ))
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msg_ids_are_one_to_64_visible_ascii_characters() {
        assert!(check_msg_id(None).is_ok());
        assert!(check_msg_id(Some("c7f1e2a0-0005")).is_ok());
        assert!(check_msg_id(Some(&"x".repeat(64))).is_ok());
        for bad in ["", "a b", "é", &"x".repeat(65)] {
            let e = check_msg_id(Some(bad)).unwrap_err();
            assert_eq!(e.code, ErrorCode::BadRequest, "{bad:?}");
        }
    }

    #[test]
    fn personal_channels_take_no_channel_publish() {
        let personal = ChannelName::new("#alice").unwrap();
        assert_eq!(
            check_channel(&personal).unwrap_err().code,
            ErrorCode::PermissionDenied
        );
        assert!(check_channel(&ChannelName::new("rooms.a").unwrap()).is_ok());
    }
}
