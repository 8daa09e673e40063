//! [`Data`]: the application's payload inside `publish`, `send` and
//! `message` frames.
//!
//! Data is any JSON value. In the JSON codec it is embedded as-is; in the
//! MessagePack codec it is the equivalent MessagePack value (map, array,
//! string, number, bool, nil), so a client of either codec reads the same
//! value that a client of the other sent. Inside the server it is kept as
//! compact JSON text and converted once per codec per message, never once per
//! subscriber.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::value::RawValue;

/// A JSON value carried opaquely, stored as compact JSON text.
///
/// ```
/// use tokenim_protocol::Data;
/// let d = Data::from_json(r#"{ "text" : "hi" }"#).unwrap();
/// assert_eq!(d.as_json(), r#"{"text":"hi"}"#);
/// ```
#[derive(Clone)]
pub struct Data(Box<RawValue>);

impl Data {
    /// Parses JSON text and keeps it in compact form.
    pub fn from_json(json: &str) -> Result<Self, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(json);
        let data = Data::deserialize(&mut de)?;
        de.end()?;
        Ok(data)
    }

    /// Serialises any value as data.
    pub fn from_value<T: Serialize + ?Sized>(value: &T) -> Result<Self, serde_json::Error> {
        let mut out = Vec::with_capacity(64);
        value.serialize(&mut serde_json::Serializer::with_formatter(
            &mut out, Compact,
        ))?;
        let json = String::from_utf8(out).expect("serde_json writes UTF-8");
        RawValue::from_string(json).map(Data)
    }

    /// The compact JSON text.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }

    /// Size of the compact JSON text in bytes: what the gateway's message
    /// size limit counts.
    pub fn len(&self) -> usize {
        self.0.get().len()
    }

    /// Whether the JSON text is empty (never true for a decoded value).
    pub fn is_empty(&self) -> bool {
        self.0.get().is_empty()
    }
}

impl PartialEq for Data {
    fn eq(&self, other: &Self) -> bool {
        self.as_json() == other.as_json()
    }
}

impl Eq for Data {}

impl fmt::Debug for Data {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_json())
    }
}

impl Serialize for Data {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if serializer.is_human_readable() {
            // serde_json embeds a RawValue verbatim.
            self.0.serialize(serializer)
        } else {
            let mut de = serde_json::Deserializer::from_str(self.0.get());
            serde_transcode::Transcoder::new(&mut de).serialize(serializer)
        }
    }
}

/// serde_json's compact output, except that a negative zero is written
/// `-0`: serde_json reads `-0` as the float `-0.0` and would write it back
/// so, changing what the client sent.
struct Compact;

impl serde_json::ser::Formatter for Compact {
    fn write_f64<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        value: f64,
    ) -> std::io::Result<()> {
        if value == 0.0 && value.is_sign_negative() {
            writer.write_all(b"-0")
        } else {
            serde_json::ser::CompactFormatter.write_f64(writer, value)
        }
    }
}

impl<'de> Deserialize<'de> for Data {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let mut out = Vec::with_capacity(64);
        let mut ser = serde_json::Serializer::with_formatter(&mut out, Compact);
        serde_transcode::transcode(deserializer, &mut ser).map_err(D::Error::custom)?;
        let json = String::from_utf8(out).map_err(D::Error::custom)?;
        RawValue::from_string(json)
            .map(Data)
            .map_err(D::Error::custom)
    }
}
