//! Change bytes from outside, checked before anything relies on them: only an uncompressed change
//! chunk with a valid checksum, within the size bounds (operations, predecessors and repeated
//! strings counted from the encoded columns before automerge expands a single one), carrying
//! plain values, in exactly the encoding automerge writes itself. The last rule matters beyond
//! tidiness: a saved document keeps operations, not change bytes, and re-encodes each change when
//! it loads, so a change in any other encoding no longer matches its hash once saved.

use automerge::legacy::OpType;
use automerge::{Change, ChangeHash, ExpandedChange, ScalarValue};

use super::{RejectReason, Rejection, reject};
use crate::docs::guard;
use crate::sync::limits::{
    MAX_CHANGE_BYTES, MAX_CHANGE_OPS, MAX_CHANGE_PREDS, MAX_CHANGE_STRING_BYTES, MAX_VALUE_CHARS,
};

/// A change that passed every check that needs no document: decoded once, with its operations.
#[derive(Debug, Clone)]
pub struct CheckedChange {
    pub change: Change,
    pub ops: ExpandedChange,
    pub hash: ChangeHash,
}

impl CheckedChange {
    /// A change this program made itself: decoded, without the checks on bytes from outside.
    pub fn own(change: Change) -> Result<Self, Rejection> {
        let ops =
            guard::expand(&change).map_err(|e| Rejection { reason: RejectReason::Malformed, detail: e.to_string() })?;
        Ok(Self { hash: change.hash(), ops, change })
    }
}

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_DOCUMENT: u8 = 0;
const CHUNK_CHANGE: u8 = 1;
const CHUNK_COMPRESSED_CHANGE: u8 = 2;

/// Column ids and types of a change's operation columns (the automerge binary format).
const ACTION_COLUMN: u64 = 4;
const PRED_COLUMN: u64 = 7;
const KEY_COLUMN: u64 = 1;
const MARK_NAME_COLUMN: u64 = 10;
const TYPE_GROUP: u64 = 0;
const TYPE_INTEGER: u64 = 2;
const TYPE_STRING: u64 = 5;
const DEFLATE_BIT: u64 = 0b1000;

/// Checks a change from outside and decodes it.
pub fn check_change(bytes: &[u8]) -> Result<CheckedChange, Rejection> {
    if bytes.len() > MAX_CHANGE_BYTES {
        return reject(
            RejectReason::TooLarge,
            format!("a change of {} bytes is over the {MAX_CHANGE_BYTES}-byte limit", bytes.len()),
        );
    }
    count_before_expanding(bytes)?;
    let malformed = |e: guard::DocError| Rejection { reason: RejectReason::Malformed, detail: e.to_string() };
    let change = guard::decode_change(bytes).map_err(malformed)?;
    let hash = change.hash();
    // automerge parses the checksum but does not compare it with the bytes.
    if bytes.get(4..8) != Some(&hash.0[..4]) {
        return reject(RejectReason::Checksum, "the chunk's checksum does not match its contents");
    }
    if !change.extra_bytes().is_empty() {
        return reject(RejectReason::Malformed, "the change carries unknown trailing data");
    }
    if !change.deps().is_sorted_by(|a, b| a < b) {
        return reject(RejectReason::NotCanonical, "dependencies must be sorted and distinct");
    }
    if change.is_empty() {
        // automerge commits only changes with operations; a saved document cannot place an
        // empty one after counters other actors used meanwhile.
        return reject(RejectReason::Malformed, "a change holds at least one operation");
    }
    let ops = guard::expand(&change).map_err(malformed)?;
    let encoded = guard::encode(&ops).map_err(malformed)?;
    if encoded.raw_bytes() != bytes {
        return reject(RejectReason::NotCanonical, "the change is not in automerge's own encoding");
    }
    for op in &ops.operations {
        match &op.action {
            OpType::Put(value) => check_value(value)?,
            OpType::MarkBegin(_) | OpType::MarkEnd(_) => {
                return reject(RejectReason::NotFlat, "marks are not part of any document");
            }
            OpType::Increment(_) => return reject(RejectReason::NotFlat, "counters are not part of any document"),
            OpType::Make(_) | OpType::Delete => {}
        }
    }
    Ok(CheckedChange { change, ops, hash })
}

fn check_value(value: &ScalarValue) -> Result<(), Rejection> {
    match value {
        ScalarValue::Str(text) if text.chars().count() > MAX_VALUE_CHARS => reject(
            RejectReason::TooLarge,
            format!(
                "a text value of {} characters is over the {MAX_VALUE_CHARS}-character limit",
                text.chars().count()
            ),
        ),
        ScalarValue::Bytes(_) | ScalarValue::Counter(_) | ScalarValue::Unknown { .. } => {
            reject(RejectReason::NotFlat, "entries hold text, numbers, booleans and times only")
        }
        _ => Ok(()),
    }
}

/// Reads the chunk's frame and the columns that decide how much automerge would expand, without
/// expanding anything: the operation count, the predecessors and the bytes of repeated strings.
fn count_before_expanding(bytes: &[u8]) -> Result<(), Rejection> {
    let malformed = |what: &str| Rejection { reason: RejectReason::Malformed, detail: format!("change chunk: {what}") };
    let mut r = Reader(bytes);
    if r.take(4).map_err(|_| malformed("too short"))? != MAGIC {
        return reject(RejectReason::Malformed, "not an automerge chunk");
    }
    r.take(4).map_err(|_| malformed("too short"))?;
    match r.take(1).map_err(|_| malformed("too short"))?[0] {
        CHUNK_CHANGE => {}
        CHUNK_COMPRESSED_CHANGE => {
            return reject(RejectReason::WrongChunk, "compressed change chunks are refused; send changes uncompressed");
        }
        CHUNK_DOCUMENT => return reject(RejectReason::WrongChunk, "a whole document is not a change"),
        other => return reject(RejectReason::WrongChunk, format!("chunk type {other} is not a change")),
    }
    let length = r.uleb().map_err(|_| malformed("length"))?;
    if length != r.0.len() as u64 {
        return reject(RejectReason::Malformed, "the chunk's length does not match its bytes");
    }
    let deps = r.uleb().map_err(|_| malformed("dependencies"))?;
    r.take_n(deps, 32).map_err(|_| malformed("dependencies"))?;
    r.bytes().map_err(|_| malformed("actor"))?;
    r.uleb().map_err(|_| malformed("seq"))?;
    r.uleb().map_err(|_| malformed("start op"))?;
    r.sleb().map_err(|_| malformed("time"))?;
    r.bytes().map_err(|_| malformed("message"))?;
    let actors = r.uleb().map_err(|_| malformed("actors"))?;
    for _ in 0..actors {
        r.bytes().map_err(|_| malformed("actors"))?;
    }
    let columns = r.uleb().map_err(|_| malformed("columns"))?;
    let mut specs = Vec::new();
    for _ in 0..columns {
        let spec = r.uleb().map_err(|_| malformed("columns"))?;
        let len = r.uleb().map_err(|_| malformed("columns"))?;
        specs.push((spec, len));
    }
    let (mut ops, mut preds, mut strings) = (0, 0, 0);
    for (spec, len) in specs {
        let data = r.take_n(len, 1).map_err(|_| malformed("column data"))?;
        if spec & DEFLATE_BIT != 0 {
            return reject(RejectReason::WrongChunk, "compressed columns are refused; send changes uncompressed");
        }
        let over = |what: &str, limit: u64| Rejection {
            reason: RejectReason::TooLarge,
            detail: format!("the change declares more than {limit} {what}"),
        };
        match (spec >> 4, spec & 0b111) {
            (ACTION_COLUMN, TYPE_INTEGER) => {
                ops = scan(data, Values::Integers, MAX_CHANGE_OPS)
                    .map_err(|e| e.or(over("operations", MAX_CHANGE_OPS)))?
                    .0;
            }
            (PRED_COLUMN, TYPE_GROUP) => {
                preds = scan(data, Values::Integers, MAX_CHANGE_PREDS)
                    .map_err(|e| e.or(over("predecessors", MAX_CHANGE_PREDS)))?
                    .1;
            }
            (KEY_COLUMN | MARK_NAME_COLUMN, TYPE_STRING) => {
                strings += scan(data, Values::Strings, MAX_CHANGE_STRING_BYTES)
                    .map_err(|e| e.or(over("bytes of keys", MAX_CHANGE_STRING_BYTES)))?
                    .1;
            }
            _ => {}
        }
    }
    if ops > MAX_CHANGE_OPS {
        return reject(RejectReason::TooLarge, format!("the change declares more than {MAX_CHANGE_OPS} operations"));
    }
    if preds > MAX_CHANGE_PREDS || strings > MAX_CHANGE_STRING_BYTES {
        return reject(RejectReason::TooLarge, "the change expands past its bounds");
    }
    Ok(())
}

/// Why a column scan stopped.
enum ScanError {
    Malformed(Rejection),
    OverLimit,
}

impl ScanError {
    fn or(self, over: Rejection) -> Rejection {
        match self {
            Self::Malformed(rejection) => rejection,
            Self::OverLimit => over,
        }
    }
}

#[derive(Clone, Copy)]
enum Values {
    /// Unsigned LEB128 numbers; a value weighs its number (a predecessor group's size).
    Integers,
    /// Length-prefixed strings; a value weighs its length.
    Strings,
}

/// Walks a run-length-encoded column: `(values, total weight)`. Stops as soon as either passes
/// `limit`, so a run that claims billions of values costs nothing.
fn scan(column: &[u8], values: Values, limit: u64) -> Result<(u64, u64), ScanError> {
    let bad = || ScanError::Malformed(Rejection { reason: RejectReason::Malformed, detail: "change column".into() });
    let mut r = Reader(column);
    let (mut count, mut weight) = (0u64, 0u64);
    let value = |r: &mut Reader<'_>| -> Result<u64, ScanError> {
        match values {
            Values::Integers => r.uleb().map_err(|_| bad()),
            Values::Strings => r.bytes().map(|s| s.len() as u64).map_err(|_| bad()),
        }
    };
    while !r.0.is_empty() {
        let run = r.sleb().map_err(|_| bad())?;
        if run > 0 {
            let each = value(&mut r)?;
            count = count.saturating_add(run as u64);
            weight = weight.saturating_add((run as u64).saturating_mul(each));
        } else if run < 0 {
            // Each literal takes at least a byte, so this loop ends with the column.
            for _ in 0..run.unsigned_abs() {
                let each = value(&mut r)?;
                count += 1;
                weight = weight.saturating_add(each);
                if count > limit || weight > limit {
                    return Err(ScanError::OverLimit);
                }
            }
        } else {
            count = count.saturating_add(r.uleb().map_err(|_| bad())?);
        }
        if count > limit || weight > limit {
            return Err(ScanError::OverLimit);
        }
    }
    Ok((count, weight))
}

/// A cursor over bytes: LEB128 numbers and length-prefixed slices.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn uleb(&mut self) -> Result<u64, ()> {
        leb128::read::unsigned(&mut self.0).map_err(|_| ())
    }

    fn sleb(&mut self) -> Result<i64, ()> {
        leb128::read::signed(&mut self.0).map_err(|_| ())
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ()> {
        if n > self.0.len() {
            return Err(());
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    /// `count` items of `size` bytes.
    fn take_n(&mut self, count: u64, size: u64) -> Result<&'a [u8], ()> {
        let n = count.checked_mul(size).and_then(|n| usize::try_from(n).ok()).ok_or(())?;
        self.take(n)
    }

    /// A length-prefixed slice.
    fn bytes(&mut self) -> Result<&'a [u8], ()> {
        let n = self.uleb()?;
        self.take_n(n, 1)
    }
}
