//! Header names we set and read, and typed access to AMQP header values.

use lapin::types::{AMQPValue, FieldTable};

/// Stable error code of a dead-lettered message (`BusError::code`-style kebab-case).
pub const ERROR: &str = "x-vaxcred-error";
/// Human explanation of a dead-lettered message; never contains patient data.
pub const REASON: &str = "x-vaxcred-reason";
/// Full name of the queue the dead-lettered message was consumed from.
pub const SOURCE_QUEUE: &str = "x-vaxcred-source-queue";
/// How many times the message went through a retry queue (absent = 0).
pub const ATTEMPT: &str = "x-vaxcred-attempt";
/// Set by quorum queues on redelivery: deliveries before this one (absent on the first).
pub const DELIVERY_COUNT: &str = "x-delivery-count";
/// Set by the broker when it dead-letters: an array of tables, newest first.
pub const X_DEATH: &str = "x-death";

/// Integer value of any AMQP integer type.
pub fn as_i64(value: &AMQPValue) -> Option<i64> {
    match value {
        AMQPValue::ShortShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortInt(v) => Some(i64::from(*v)),
        AMQPValue::ShortUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongInt(v) => Some(i64::from(*v)),
        AMQPValue::LongUInt(v) => Some(i64::from(*v)),
        AMQPValue::LongLongInt(v) => Some(*v),
        AMQPValue::Timestamp(v) => i64::try_from(*v).ok(),
        _ => None,
    }
}

/// Text value of a string header (lossy for invalid UTF-8).
pub fn as_string(value: &AMQPValue) -> Option<String> {
    match value {
        AMQPValue::LongString(s) => Some(String::from_utf8_lossy(s.as_bytes()).into_owned()),
        AMQPValue::ShortString(s) => Some(s.as_str().to_owned()),
        _ => None,
    }
}

/// `headers[name]` as text.
pub fn get_string(headers: Option<&FieldTable>, name: &str) -> Option<String> {
    headers?.inner().get(name).and_then(as_string)
}

/// `headers[name]` as an integer.
pub fn get_i64(headers: Option<&FieldTable>, name: &str) -> Option<i64> {
    headers?.inner().get(name).and_then(as_i64)
}

/// The newest `x-death` entry: why and from where the broker last dead-lettered the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct XDeath {
    /// `rejected`, `expired`, `maxlen` or `delivery_limit`.
    pub reason: String,
    /// Queue the message was dead-lettered from.
    pub queue: String,
    /// How many times it was dead-lettered from that queue for that reason.
    pub count: i64,
}

/// Parses the first `x-death` entry.
pub fn x_death(headers: Option<&FieldTable>) -> Option<XDeath> {
    let AMQPValue::FieldArray(entries) = headers?.inner().get(X_DEATH)? else {
        return None;
    };
    let AMQPValue::FieldTable(first) = entries.as_slice().first()? else {
        return None;
    };
    Some(XDeath {
        reason: get_string(Some(first), "reason")?,
        queue: get_string(Some(first), "queue").unwrap_or_default(),
        count: get_i64(Some(first), "count").unwrap_or(0),
    })
}

/// Keeps a header value safe for logs and peers: printable ASCII-ish, bounded length. Callers
/// must still never pass patient data.
pub(crate) fn sanitize(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(max)
        .collect()
}

/// Copy of `headers` without the entries named in `drop`.
pub(crate) fn without(headers: Option<&FieldTable>, drop: &[&str]) -> FieldTable {
    let mut out = FieldTable::default();
    if let Some(headers) = headers {
        for (k, v) in headers {
            if !drop.contains(&k.as_str()) {
                out.insert(k.clone(), v.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lapin::types::{FieldArray, LongString, ShortString};

    #[test]
    fn reads_the_newest_x_death_entry() {
        let mut entry = FieldTable::default();
        entry.insert(
            "reason".into(),
            AMQPValue::LongString(LongString::from("delivery_limit")),
        );
        entry.insert(
            "queue".into(),
            AMQPValue::LongString(LongString::from("p.ingest")),
        );
        entry.insert("count".into(), AMQPValue::LongLongInt(1));
        let mut headers = FieldTable::default();
        headers.insert(
            ShortString::from(X_DEATH),
            AMQPValue::FieldArray(FieldArray::from(vec![AMQPValue::FieldTable(entry)])),
        );
        let death = x_death(Some(&headers)).unwrap();
        assert_eq!(death.reason, "delivery_limit");
        assert_eq!(death.queue, "p.ingest");
        assert_eq!(death.count, 1);
        assert_eq!(x_death(None), None);
    }

    #[test]
    fn sanitize_removes_line_breaks_and_bounds_length() {
        assert_eq!(sanitize("a\r\nb", 10), "a  b");
        assert_eq!(sanitize(&"x".repeat(600), 512).len(), 512);
    }
}
