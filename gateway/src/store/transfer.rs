//! Export and import of a whole store as JSON lines, between any two
//! backends (`tokenim store export`, `tokenim store import`): for backups,
//! and for moving a deployment from one node's embedded store to
//! PostgreSQL.
//!
//! One line per stored key, tables in [`Table::ALL`] order (users and
//! groups before the memberships that name them):
//!
//! ```text
//! {"table":"users","key":"alice","value":{"id":"alice",...}}
//! {"table":"meta","key":"counter/audit","value":42}
//! ```
//!
//! `value` is the stored record itself (every record is JSON; counters
//! are numbers); a value that is not JSON would be written as
//! `"value_base64"` instead. Both directions stream: a page of
//! [`PAGE`] keys is in memory at a time.

use std::io::{BufRead, Read, Write};

use base64::Engine;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::StoreError;
use super::kv::{Kv, Op, Table};

/// Keys read, or written in one transaction, at a time.
pub const PAGE: usize = 1_000;

/// Longest line an import takes (a record is far smaller).
pub const MAX_LINE: usize = 16 << 20;

#[derive(Serialize)]
struct LineOut<'a> {
    table: &'static str,
    key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    value_base64: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LineIn<'a> {
    table: &'a str,
    key: String,
    #[serde(borrow, default)]
    value: Option<&'a RawValue>,
    #[serde(default)]
    value_base64: Option<String>,
}

/// Why an export or import stopped.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Reading or writing the file failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A line of the import is not what an export writes.
    #[error("line {line}: {why}")]
    Line {
        /// 1-based.
        line: u64,
        /// What is wrong.
        why: String,
    },
    /// The import's target already holds data.
    #[error("the target store is not empty ({0} holds keys): import into an empty store")]
    NotEmpty(&'static str),
}

/// Writes every key of every table to `out`; returns how many.
pub async fn export(kv: &Kv, out: &mut impl Write) -> Result<u64, TransferError> {
    let mut n = 0;
    for table in Table::ALL {
        let mut after: Option<String> = None;
        loop {
            let page = kv.scan(table, "", after.as_deref(), PAGE).await?;
            for (key, value) in &page {
                let raw = std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| serde_json::from_str::<&RawValue>(s).ok());
                let line = LineOut {
                    table: table.name(),
                    key,
                    value: raw,
                    value_base64: raw
                        .is_none()
                        .then(|| base64::engine::general_purpose::STANDARD.encode(value)),
                };
                serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
                out.write_all(b"\n")?;
                n += 1;
            }
            match page.last() {
                Some((last, _)) if page.len() == PAGE => after = Some(last.clone()),
                _ => break,
            }
        }
    }
    out.flush()?;
    Ok(n)
}

/// Reads an export from `input` into `kv`, which must be empty; returns
/// how many keys it wrote. Each page is one transaction: an import that
/// stops half-way leaves whole pages, and is started again on an emptied
/// store. PostgreSQL's statistics are refreshed at the end.
pub async fn import(kv: &Kv, input: &mut impl BufRead) -> Result<u64, TransferError> {
    for table in Table::ALL {
        if kv.count(table, "").await? > 0 {
            return Err(TransferError::NotEmpty(table.name()));
        }
    }
    let mut n = 0;
    let mut line_no = 0;
    let mut ops = Vec::with_capacity(PAGE);
    let mut buf = String::new();
    loop {
        buf.clear();
        let read = Read::take(&mut *input, MAX_LINE as u64 + 1).read_line(&mut buf)?;
        if read == 0 {
            break;
        }
        line_no += 1;
        if buf.len() > MAX_LINE {
            return Err(bad(line_no, format!("longer than {MAX_LINE} bytes")));
        }
        if buf.trim().is_empty() {
            continue;
        }
        ops.push(parse_line(&buf).map_err(|why| bad(line_no, why))?);
        if ops.len() == PAGE {
            n += ops.len() as u64;
            kv.write(std::mem::take(&mut ops)).await?;
        }
    }
    n += ops.len() as u64;
    kv.write(ops).await?;
    if let Kv::Postgres(pg) = kv {
        pg.analyze().await?;
    }
    Ok(n)
}

fn bad(line: u64, why: String) -> TransferError {
    TransferError::Line { line, why }
}

fn parse_line(text: &str) -> Result<Op, String> {
    let line: LineIn<'_> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let table = Table::ALL
        .into_iter()
        .find(|t| t.name() == line.table)
        .ok_or_else(|| format!("unknown table {:?}", line.table))?;
    if line.key.is_empty() {
        return Err("an empty key".into());
    }
    let value = match (line.value, line.value_base64) {
        (Some(raw), None) => raw.get().as_bytes().to_vec(),
        (None, Some(b64)) => base64::engine::general_purpose::STANDARD
            .decode(b64)
            .map_err(|e| format!("value_base64: {e}"))?,
        _ => return Err("exactly one of value and value_base64".into()),
    };
    Ok(Op::Put(table, line.key, value))
}
