//! The tag=value wire format: [`encode`] writes one message with its BodyLength(9) and
//! CheckSum(10); [`Reader`] reads messages from a byte stream through `refix-message`'s
//! scanner, which verifies both before a field is read.
//!
//! BodyLength counts the bytes from the field after BodyLength up to and including the SOH
//! before CheckSum; CheckSum is the sum of every byte before it, modulo 256, as three digits
//! (FIX 4.4 specification, volume 2, "Message format").

use refix_message::framing::GarbledReason;
use refix_message::stream::Outcome;
use refix_message::{MessageStream, RawMessage, Tag};
use tokio::io::{AsyncRead, AsyncReadExt};

use super::FixError;

/// The field separator, SOH (0x01).
pub const SOH: u8 = 0x01;

/// A run of `tag=value<SOH>` fields, built in order.
#[derive(Debug, Clone, Default)]
pub struct Fields(Vec<u8>);

impl Fields {
    /// An empty run.
    pub fn new() -> Fields {
        Fields(Vec::with_capacity(256))
    }

    /// Append `tag=value`.
    pub fn add(&mut self, tag: u32, value: impl std::fmt::Display) -> &mut Fields {
        use std::io::Write;
        let _ = write!(self.0, "{tag}={value}");
        self.0.push(SOH);
        self
    }

    /// Append fields already in wire form (`tag=value<SOH>…`).
    pub fn extend_raw(&mut self, raw: &[u8]) -> &mut Fields {
        self.0.extend_from_slice(raw);
        self
    }

    /// Forget every field, keeping the allocation.
    pub fn clear(&mut self) {
        self.0.clear();
    }

    /// The fields in wire form.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Write one complete message into `out` (cleared first): BeginString(8), BodyLength(9),
/// MsgType(35), then `rest` (header fields, then body fields), then CheckSum(10).
pub fn encode(begin_string: &str, msg_type: &str, rest: &[u8], out: &mut Vec<u8>) {
    out.clear();
    let body_len = 3 + msg_type.len() + 1 + rest.len();
    out.extend_from_slice(b"8=");
    out.extend_from_slice(begin_string.as_bytes());
    out.push(SOH);
    out.extend_from_slice(b"9=");
    out.extend_from_slice(body_len.to_string().as_bytes());
    out.push(SOH);
    out.extend_from_slice(b"35=");
    out.extend_from_slice(msg_type.as_bytes());
    out.push(SOH);
    out.extend_from_slice(rest);
    let sum = out.iter().fold(0u8, |acc, b| acc.wrapping_add(*b));
    out.extend_from_slice(format!("10={sum:03}").as_bytes());
    out.push(SOH);
}

/// Show FIX bytes for people: SOH as `|`, at most `max` characters.
pub fn display(bytes: &[u8], max: usize) -> String {
    String::from_utf8_lossy(bytes)
        .chars()
        .take(max)
        .map(|c| if c == '\u{1}' { '|' } else { c })
        .collect()
}

/// Turn a template's `|`-separated fields into wire form (`|` becomes SOH; a trailing
/// separator is added when missing).
pub fn pipes_to_soh(text: &str, out: &mut Vec<u8>) {
    out.clear();
    out.extend(text.bytes().map(|b| if b == b'|' { SOH } else { b }));
    if out.last().is_some_and(|b| *b != SOH) {
        out.push(SOH);
    }
}

/// Check that `text` is a run of `tag=value` fields separated by `|` (placeholders allowed in
/// values); returns the tags in order.
///
/// # Errors
/// A message naming the first field that is not `tag=value` with a positive numeric tag.
pub fn template_tags(text: &str) -> Result<Vec<u32>, String> {
    let mut tags = Vec::new();
    for (n, field) in text.trim_end_matches('|').split('|').enumerate() {
        let tag = field
            .split_once('=')
            .and_then(|(t, _)| t.parse::<u32>().ok())
            .filter(|t| *t > 0)
            .ok_or_else(|| {
                format!(
                    "field {} (\"{field}\") is not tag=value with a numeric tag; separate fields with |",
                    n + 1
                )
            })?;
        tags.push(tag);
    }
    Ok(tags)
}

/// The value of `tag` in wire-form fields (`tag=value<SOH>…`), if present.
pub fn find(raw: &[u8], tag: u32) -> Option<&[u8]> {
    let mut prefix = [0u8; 12];
    let n = {
        use std::io::Write;
        let mut c = std::io::Cursor::new(&mut prefix[..]);
        let _ = write!(c, "{tag}=");
        c.position() as usize
    };
    let prefix = &prefix[..n];
    raw.split(|b| *b == SOH)
        .find(|f| f.starts_with(prefix))
        .map(|f| &f[n..])
}

/// The text of `tag` in `msg`, or `""` when it is absent or not text.
pub fn text(msg: &RawMessage, tag: u32) -> &str {
    msg.get_str(Tag(tag)).ok().flatten().unwrap_or("")
}

/// The integer value of `tag` in `msg`, if present and numeric.
pub fn int(msg: &RawMessage, tag: u32) -> Option<i64> {
    msg.get_int(Tag(tag)).ok().flatten()
}

/// Reads checksum-verified messages from a byte stream.
#[derive(Default)]
pub struct Reader {
    stream: MessageStream,
    buf: Vec<u8>,
}

impl Reader {
    /// A reader with an empty buffer.
    pub fn new() -> Reader {
        Reader {
            stream: MessageStream::default(),
            buf: vec![0; 16 * 1024],
        }
    }

    /// The next message already buffered, if any.
    ///
    /// # Errors
    /// [`FixError::Garbled`] when the buffered bytes fail framing, BodyLength or CheckSum.
    pub fn buffered(&mut self) -> Result<Option<RawMessage>, FixError> {
        match self.stream.next_message() {
            Outcome::Message(m) => Ok(Some(m)),
            Outcome::Incomplete => Ok(None),
            Outcome::Garbled { reason, bytes } => Err(FixError::Garbled {
                reason: garbled_reason(reason).into(),
                excerpt: display(&bytes, 200),
            }),
        }
    }

    /// The next message from `r`. Cancel-safe: bytes are kept only once a read completed.
    ///
    /// # Errors
    /// [`FixError::Garbled`] for a message that fails its checks, [`FixError::Io`] when the
    /// connection fails or the counterparty closes it.
    pub async fn next<R: AsyncRead + Unpin>(&mut self, r: &mut R) -> Result<RawMessage, FixError> {
        loop {
            if let Some(m) = self.buffered()? {
                return Ok(m);
            }
            if self.buf.is_empty() {
                self.buf = vec![0; 16 * 1024];
            }
            let n = r
                .read(&mut self.buf)
                .await
                .map_err(|e| FixError::Io(format!("reading: {e}")))?;
            if n == 0 {
                return Err(FixError::Io(
                    "the counterparty closed the connection".into(),
                ));
            }
            self.stream.feed(&self.buf[..n]);
        }
    }
}

/// What a garbled message's fault was, in the field's terms.
fn garbled_reason(r: GarbledReason) -> &'static str {
    match r {
        GarbledReason::MissingBeginString => "does not start with BeginString(8)=FIX",
        GarbledReason::MalformedBeginString => "malformed BeginString(8)",
        GarbledReason::MissingBodyLength => "BodyLength(9) is not the second field",
        GarbledReason::MalformedBodyLength => "malformed BodyLength(9)",
        GarbledReason::BodyLengthMismatch => "BodyLength(9) does not end where CheckSum(10) starts",
        GarbledReason::MissingMsgType => "MsgType(35) is not the third field",
        GarbledReason::MalformedChecksum => "malformed CheckSum(10)",
        GarbledReason::ChecksumMismatch => "CheckSum(10) does not match the bytes",
        GarbledReason::FrameTooLarge => "message larger than 1 MiB",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoded_messages_pass_the_scanner_and_keep_their_fields() {
        let mut f = Fields::new();
        f.add(49, "CLIENT")
            .add(56, "PAPER")
            .add(34, 7)
            .add(58, "hi");
        let mut out = Vec::new();
        encode("FIX.4.4", "0", f.as_bytes(), &mut out);
        // Heartbeat from the FIX 4.4 specification's BodyLength rule: 35=0| + 4 fields.
        assert!(display(&out, 200).starts_with("8=FIX.4.4|9=35|35=0|49=CLIENT|"));
        let mut r = Reader::new();
        r.stream.feed(&out);
        let m = r.buffered().unwrap().unwrap();
        assert_eq!(text(&m, 58), "hi");
        assert_eq!(int(&m, 34), Some(7));
    }

    #[test]
    fn a_wrong_checksum_is_garbled() {
        let mut out = Vec::new();
        encode("FIX.4.4", "0", b"34=1\x01", &mut out);
        let n = out.len();
        out[n - 2] = if out[n - 2] == b'0' { b'1' } else { b'0' };
        let mut r = Reader::new();
        r.stream.feed(&out);
        let e = r.buffered().unwrap_err();
        assert!(e.to_string().contains("CheckSum(10)"), "{e}");
    }

    #[test]
    fn templates_are_tag_value_runs() {
        assert_eq!(template_tags("11={{seq}}|55=X|").unwrap(), vec![11, 55]);
        assert!(
            template_tags("11=1|symbol=X")
                .unwrap_err()
                .contains("field 2")
        );
        assert_eq!(find(b"11=5\x0155=X\x01", 55), Some(&b"X"[..]));
        assert_eq!(find(b"111=5\x0111=7\x01", 11), Some(&b"7"[..]));
    }
}
