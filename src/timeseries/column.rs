//! BSONColumn, the compressed column of version-2 and -3 time-series buckets (BSON binary
//! subtype 7), decoded element by element.
//!
//! ## The format
//!
//! A column is a sequence of *control bytes*, each followed by its payload, ended by a 0 byte
//! that must be the column's last byte:
//!
//! - **literal** (control `0x01`–`0x13`, `0x7F`, `0xFF`: a BSON type): a BSON element with an
//!   empty name. It is the next element, and the base for the deltas that follow.
//! - **Simple-8b run** (`0x80`–`0xDF`): the low nibble + 1 blocks of 8 bytes (see
//!   [`super::simple8b`]), each slot a delta or a skip (a missing element). The high nibble is
//!   the scale: `0x8_` takes the value's bits as an integer; `0x9_`–`0xD_` are doubles × 1, 10,
//!   100, 10⁴, 10⁸ rounded to integers (the previous double must be exactly representable at
//!   the new scale). Deltas are 64-bit for int32, int64, double, bool, ObjectId (timestamp and
//!   counter bytes interleaved), date and timestamp — the last three as delta-of-delta — and
//!   128-bit for string and code (≤ 16 bytes, reversed), binary (≤ 16 bytes) and decimal128.
//!   Any other type only repeats with zero deltas. Deltas before the first literal are missing.
//! - **interleaved** (`0xF0` legacy, `0xF1`, `0xF2` array root): a reference object (a plain
//!   BSON document) whose scalar leaves each become a stream with the leaf as its first value
//!   (`0xF0` treats arrays as leaves, the others descend into them). Each element is then one
//!   object: every stream gives its next value (or a skip, which omits the field), in the
//!   reference's field order. A stream that runs dry reads the next control byte — a literal or
//!   a Simple-8b run — so the streams' runs are interleaved in the order they are needed. A 0
//!   byte where the first stream needs a control byte ends interleaved mode; the last object is
//!   then the base for zero deltas. A sub-object whose fields are all skipped is omitted (unless
//!   the reference has it empty), and an object with no field at all is a missing element.
//!
//! ## Decisions
//!
//! - The decoder is a cursor ([`Column::next_element`]) that borrows each element from its own buffers:
//!   memory is the input plus one element (an interleaved object, or the last value of each
//!   stream), whatever the element count. The count is capped ([`Column::with_limit`]) because a
//!   few bytes of run-length blocks can stand for millions of elements.
//! - Every malformed input is a [`ColumnError`] with the byte offset; nothing panics, nothing
//!   recurses. A string without a 128-bit encoding (longer than 16 bytes, or starting with a 0
//!   byte) is a base of 0 for the deltas after it, as the encoder writes them; a binary longer
//!   than 16 bytes takes no non-zero delta.
//! - Literals are checked structurally (sizes within bounds, terminators, known types); their
//!   content is validated by the Extended JSON encoder when a measurement is written.

use super::raw::{self, Elements};
use super::simple8b::{self, Cursor, Slot};

/// The most elements a [`Column`] yields unless told otherwise (see [`Column::with_limit`]).
pub const DEFAULT_ELEMENT_LIMIT: u64 = 10_000_000;

/// Scale multipliers of the double control bytes `0x9_`–`0xD_`.
const SCALE_MULTIPLIERS: [f64; 5] = [1.0, 10.0, 100.0, 10_000.0, 100_000_000.0];
/// The scale index of control bytes `0x8_`: the value's bits as an integer.
const MEMORY_AS_INTEGER: u8 = 5;
/// Largest magnitude a scaled double may have (2⁵³, exactly representable).
const MAX_SAFE_DOUBLE: f64 = 9_007_199_254_740_992.0;

/// A column that cannot be decoded, with the byte offset where the problem was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind} at byte {offset} of the column")]
pub struct ColumnError {
    pub offset: usize,
    pub kind: ColumnErrorKind,
}

/// What is wrong with a column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ColumnErrorKind {
    #[error("empty column")]
    Empty,
    #[error("the column ends without its terminating 0 byte")]
    Unterminated,
    #[error("bytes follow the column's terminating 0 byte")]
    TrailingBytes,
    #[error("invalid control byte {0:#04x}")]
    InvalidControl(u8),
    #[error("invalid literal: {0}")]
    InvalidLiteral(&'static str),
    #[error("simple-8b blocks run past the end of the column")]
    TruncatedBlocks,
    #[error("invalid simple-8b selector")]
    InvalidSelector,
    #[error("deltas of scale index {scale} cannot follow a {type_name} value")]
    ScaleForType { scale: u8, type_name: &'static str },
    #[error("the previous double cannot be represented at scale index {scale}")]
    DoubleScale { scale: u8 },
    #[error("a non-zero delta cannot follow a {0} value")]
    Delta(&'static str),
    #[error("a non-zero delta cannot follow a binary of {0} bytes (at most 16)")]
    LongBinary(usize),
    #[error("interleaved mode: {0}")]
    Interleaved(&'static str),
    #[error("more than {0} elements")]
    TooManyElements(u64),
}

fn error(offset: usize, kind: ColumnErrorKind) -> ColumnError {
    ColumnError { offset, kind }
}

/// One decoded element: a value (its BSON type and value bytes, as in a document without the
/// name) or a missing one (a skip: the measurement has no such field).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Element<'a> {
    Missing,
    Value { ty: u8, value: &'a [u8] },
}

/// The integer a stream's deltas apply to.
#[derive(Debug, Clone, Copy)]
enum Base {
    /// 64-bit: the value, or for delta-of-delta types the running delta with the value in
    /// `acc`; `scale` is the current control byte's (doubles only).
    Narrow {
        value: i64,
        acc: i64,
        delta_of_delta: bool,
        scale: u8,
    },
    /// 128-bit; `encodable` is false after a binary longer than 16 bytes, which takes no
    /// delta (a string without an encoding is a base of 0 instead).
    Wide { value: u128, encodable: bool },
}

impl Base {
    fn narrow(value: i64, delta_of_delta: bool) -> Self {
        if delta_of_delta {
            Base::Narrow {
                value: 0,
                acc: value,
                delta_of_delta,
                scale: MEMORY_AS_INTEGER,
            }
        } else {
            Base::Narrow {
                value,
                acc: 0,
                delta_of_delta,
                scale: MEMORY_AS_INTEGER,
            }
        }
    }
}

/// One stream of values: the whole column in regular mode, one leaf in interleaved mode.
#[derive(Debug, Clone)]
struct Stream {
    /// BSON type of the last value; 0 before the first literal (deltas are then missing).
    ty: u8,
    /// Value bytes of the last value.
    value: Vec<u8>,
    base: Base,
    cursor: Cursor,
    /// Offset of the control byte being decoded, for errors.
    control: usize,
}

fn is_literal(control: u8) -> bool {
    control & 0xE0 == 0 || control == 0x7F || control == 0xFF
}

fn is_interleaved_start(control: u8) -> bool {
    (0xF0..=0xF2).contains(&control)
}

fn scale_index(control: u8) -> Option<u8> {
    match control >> 4 {
        0x8 => Some(MEMORY_AS_INTEGER),
        n @ 0x9..=0xD => Some(n - 0x9),
        _ => None,
    }
}

fn le_i64(bytes: &[u8]) -> i64 {
    bytes
        .first_chunk::<8>()
        .map_or(0, |b| i64::from_le_bytes(*b))
}

fn le_i32(bytes: &[u8]) -> i32 {
    bytes
        .first_chunk::<4>()
        .map_or(0, |b| i32::from_le_bytes(*b))
}

/// ObjectId → integer: the timestamp's and counter's bytes interleaved, most significant
/// first, so that ObjectIds generated in sequence give small deltas. Bytes 4–8 (the process
/// part) are not encoded; they come from the previous value.
fn encode_object_id(oid: &[u8]) -> i64 {
    let b = |i: usize| oid.get(i).copied().unwrap_or(0);
    i64::from_le_bytes([b(11), b(3), b(10), b(2), b(9), b(1), b(0), 0])
}

fn decode_object_id(value: i64, oid: &mut [u8]) {
    let e = value.to_le_bytes();
    if let Some(oid) = oid.first_chunk_mut::<12>() {
        oid[0] = e[6];
        oid[1] = e[5];
        oid[2] = e[3];
        oid[3] = e[1];
        oid[9] = e[4];
        oid[10] = e[2];
        oid[11] = e[0];
    }
}

/// A double as an integer at a scale, `None` when that loses anything (bit for bit, so -0.0
/// does not become 0.0).
fn encode_double(value: f64, scale: u8) -> Option<i64> {
    if scale == MEMORY_AS_INTEGER {
        return Some(value.to_bits() as i64);
    }
    let multiplier = *SCALE_MULTIPLIERS.get(usize::from(scale))?;
    let scaled = value * multiplier;
    if !(-MAX_SAFE_DOUBLE..=MAX_SAFE_DOUBLE).contains(&scaled) {
        return None;
    }
    let rounded = scaled.round() as i64;
    ((rounded as f64 / multiplier).to_bits() == value.to_bits()).then_some(rounded)
}

fn decode_double(value: i64, scale: u8) -> f64 {
    match SCALE_MULTIPLIERS.get(usize::from(scale)) {
        Some(multiplier) => value as f64 / multiplier,
        None => f64::from_bits(value as u64),
    }
}

/// A string of at most 16 bytes, reversed into the low bytes (its end changes most often).
/// A leading 0 byte would be ambiguous, so such strings have no encoding.
fn encode_string(s: &[u8]) -> Option<u128> {
    if s.len() > 16 || s.first() == Some(&0) {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (slot, byte) in bytes.iter_mut().zip(s.iter().rev()) {
        *slot = *byte;
    }
    Some(u128::from_le_bytes(bytes))
}

fn encode_binary(data: &[u8]) -> Option<u128> {
    if data.len() > 16 {
        return None;
    }
    let mut bytes = [0u8; 16];
    bytes[..data.len()].copy_from_slice(data);
    Some(u128::from_le_bytes(bytes))
}

impl Stream {
    fn new() -> Self {
        Stream {
            ty: 0,
            value: Vec::new(),
            base: Base::narrow(0, false),
            cursor: Cursor::new(false),
            control: 0,
        }
    }

    /// Makes `value` (of type `ty`) the stream's last value and the base of its deltas.
    fn set_literal(&mut self, ty: u8, value: &[u8], control: usize) {
        self.ty = ty;
        self.value.clear();
        self.value.extend_from_slice(value);
        self.control = control;
        self.base = match ty {
            0x02 | 0x0D => {
                // String / code: int32 length, bytes, NUL. One without an encoding is a base of
                // 0: the encoder writes the next string as a delta from 0.
                let text = value.get(4..value.len().saturating_sub(1)).unwrap_or(&[]);
                Base::Wide {
                    value: encode_string(text).unwrap_or(0),
                    encodable: true,
                }
            }
            0x05 => {
                let data = value.get(5..).unwrap_or(&[]);
                let encoded = encode_binary(data);
                Base::Wide {
                    value: encoded.unwrap_or(0),
                    encodable: encoded.is_some(),
                }
            }
            0x13 => Base::Wide {
                value: value
                    .first_chunk::<16>()
                    .map_or(0, |b| u128::from_le_bytes(*b)),
                encodable: true,
            },
            0x07 => Base::narrow(encode_object_id(value), true),
            0x09 => Base::narrow(le_i64(value), true),
            0x11 => Base::narrow(le_i64(value), true),
            0x12 => Base::narrow(le_i64(value), false),
            0x10 => Base::narrow(i64::from(le_i32(value)), false),
            0x08 => Base::narrow(i64::from(value.first().is_some_and(|b| *b != 0)), false),
            _ => Base::narrow(0, false),
        };
        self.cursor = Cursor::new(matches!(self.base, Base::Wide { .. }));
    }

    /// The next element from the loaded blocks: `Some(true)` a value, `Some(false)` missing,
    /// `None` when they are exhausted.
    #[inline]
    fn pull(&mut self, input: &[u8]) -> Result<Option<bool>, ColumnError> {
        match self.cursor.next(input) {
            Ok(Some(slot)) => self.apply(slot).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(error(e.offset, ColumnErrorKind::InvalidSelector)),
        }
    }

    #[inline]
    fn apply(&mut self, slot: Slot) -> Result<bool, ColumnError> {
        let Some(raw) = slot else {
            return Ok(false);
        };
        if self.ty == 0 {
            return Ok(false);
        }
        match &mut self.base {
            Base::Narrow {
                value,
                acc,
                delta_of_delta,
                scale,
            } => {
                let delta = simple8b::zigzag64(raw);
                if !*delta_of_delta && delta == 0 {
                    return Ok(true);
                }
                *value = value.wrapping_add(delta);
                let current = if *delta_of_delta {
                    *acc = acc.wrapping_add(*value);
                    *acc
                } else {
                    *value
                };
                let scale = *scale;
                self.materialize_narrow(current, scale)?;
            }
            Base::Wide { value, encodable } => {
                let delta = simple8b::zigzag128(raw);
                if delta == 0 {
                    return Ok(true);
                }
                if !*encodable {
                    let len = self.value.len().saturating_sub(5);
                    return Err(error(self.control, ColumnErrorKind::LongBinary(len)));
                }
                *value = value.wrapping_add(delta as u128);
                let current = *value;
                self.materialize_wide(current)?;
            }
        }
        Ok(true)
    }

    fn materialize_narrow(&mut self, v: i64, scale: u8) -> Result<(), ColumnError> {
        // The value keeps its type, and so its size; it is rewritten, not patched, so that no
        // length can ever disagree.
        let set = |value: &mut Vec<u8>, bytes: &[u8]| {
            value.clear();
            value.extend_from_slice(bytes);
        };
        match self.ty {
            0x01 => set(
                &mut self.value,
                &decode_double(v, scale).to_bits().to_le_bytes(),
            ),
            0x07 => decode_object_id(v, &mut self.value),
            0x09 | 0x11 | 0x12 => set(&mut self.value, &v.to_le_bytes()),
            0x08 => set(&mut self.value, &[u8::from(v != 0)]),
            0x10 => set(&mut self.value, &(v as i32).to_le_bytes()),
            ty => {
                return Err(error(
                    self.control,
                    ColumnErrorKind::Delta(raw::type_name(ty)),
                ));
            }
        }
        Ok(())
    }

    fn materialize_wide(&mut self, v: u128) -> Result<(), ColumnError> {
        let bytes = v.to_le_bytes();
        match self.ty {
            0x02 | 0x0D => {
                let size = bytes.iter().rposition(|b| *b != 0).map_or(0, |i| i + 1);
                self.value.clear();
                self.value
                    .extend_from_slice(&(size as i32 + 1).to_le_bytes());
                self.value.extend(bytes[..size].iter().rev());
                self.value.push(0);
            }
            0x05 => {
                let len = self.value.len().saturating_sub(5);
                match self.value.get_mut(5..) {
                    Some(data) if len <= 16 => data.copy_from_slice(&bytes[..len]),
                    _ => return Err(error(self.control, ColumnErrorKind::LongBinary(len))),
                }
            }
            0x13 => {
                self.value.clear();
                self.value.extend_from_slice(&bytes);
            }
            ty => {
                return Err(error(
                    self.control,
                    ColumnErrorKind::Delta(raw::type_name(ty)),
                ));
            }
        }
        Ok(())
    }

    /// Reads the control byte at `*pos` (a literal or a Simple-8b run; the caller handles 0 and
    /// interleaved starts) and returns its first element as [`Stream::pull`] does.
    fn load_control(&mut self, input: &[u8], pos: &mut usize) -> Result<bool, ColumnError> {
        let at = *pos;
        let control = *input
            .get(at)
            .ok_or(error(at, ColumnErrorKind::Unterminated))?;
        if is_literal(control) {
            let literal = |message| error(at, ColumnErrorKind::InvalidLiteral(message));
            match input.get(at + 1) {
                Some(0) => {}
                Some(_) => return Err(literal("the literal has a field name")),
                None => return Err(literal("the literal runs past the end")),
            }
            let rest = input.get(at + 2..).unwrap_or(&[]);
            let len = raw::value_len(control, rest).map_err(|e| literal(e.0))?;
            self.set_literal(control, &rest[..len], at);
            *pos = at + 2 + len;
            return Ok(true);
        }
        let scale =
            scale_index(control).ok_or(error(at, ColumnErrorKind::InvalidControl(control)))?;
        let words = (control & 0x0F) + 1;
        let end = at + 1 + 8 * usize::from(words);
        // The blocks must leave room for at least the terminating 0 byte.
        if end >= input.len() {
            return Err(error(at, ColumnErrorKind::TruncatedBlocks));
        }
        match &mut self.base {
            Base::Wide { .. } => {
                if scale != MEMORY_AS_INTEGER {
                    return Err(error(
                        at,
                        ColumnErrorKind::ScaleForType {
                            scale,
                            type_name: raw::type_name(self.ty),
                        },
                    ));
                }
            }
            Base::Narrow {
                value,
                scale: current,
                ..
            } => {
                if self.ty == 0x01 {
                    let last = f64::from_bits(le_i64(&self.value) as u64);
                    *value = encode_double(last, scale)
                        .ok_or(error(at, ColumnErrorKind::DoubleScale { scale }))?;
                    *current = scale;
                } else if scale != MEMORY_AS_INTEGER {
                    let type_name = if self.ty == 0 {
                        "missing"
                    } else {
                        raw::type_name(self.ty)
                    };
                    return Err(error(
                        at,
                        ColumnErrorKind::ScaleForType { scale, type_name },
                    ));
                }
            }
        }
        self.control = at;
        self.cursor.load(at + 1, words);
        *pos = end;
        match self.pull(input)? {
            Some(present) => Ok(present),
            // Every valid block has at least one slot.
            None => Err(error(at, ColumnErrorKind::InvalidSelector)),
        }
    }
}

/// One step of the walk that builds an interleaved object.
#[derive(Debug, Clone, Copy)]
enum Entry {
    /// Opens the root (first entry) or a sub-object named `input[key.0..key.1]`.
    Enter { key: (usize, usize), ty: u8 },
    /// The next value of stream `stream`, named `input[key.0..key.1]`.
    Scalar { key: (usize, usize), stream: usize },
    /// Closes the innermost open object; `allow_empty` when the reference has it empty.
    Exit { allow_empty: bool },
}

#[derive(Debug)]
struct Interleaved {
    entries: Vec<Entry>,
    streams: Vec<Stream>,
    root_ty: u8,
    /// (start of the element, start of the document) of every open object.
    open: Vec<(usize, usize)>,
}

enum State {
    Regular(Stream),
    Interleaved(Box<Interleaved>),
    Done,
}

/// What [`Column::step`] produced, without borrowing.
enum Produced {
    Missing,
    /// The regular stream's last value.
    Regular,
    /// The object in `Column::current`, of this type.
    Object(u8),
}

/// A BSONColumn being decoded. See the module documentation.
pub struct Column<'a> {
    input: &'a [u8],
    pos: usize,
    state: State,
    produced: u64,
    limit: u64,
    /// The interleaved object being built or just returned.
    current: Vec<u8>,
    /// The interleaved object returned before it: the base for zero deltas once interleaved
    /// mode ends (`previous_present` false when that element was missing).
    previous: Vec<u8>,
    previous_present: bool,
}

impl<'a> Column<'a> {
    /// A decoder over the column's bytes (the binary's payload, without the BSON binary header).
    pub fn new(input: &'a [u8]) -> Result<Self, ColumnError> {
        if input.is_empty() {
            return Err(error(0, ColumnErrorKind::Empty));
        }
        Ok(Column {
            input,
            pos: 0,
            state: State::Regular(Stream::new()),
            produced: 0,
            limit: DEFAULT_ELEMENT_LIMIT,
            current: Vec::new(),
            previous: Vec::new(),
            previous_present: false,
        })
    }

    /// Caps the number of elements (missing ones included); one more is
    /// [`ColumnErrorKind::TooManyElements`].
    pub fn with_limit(mut self, limit: u64) -> Self {
        self.limit = limit;
        self
    }

    /// How many elements were returned so far.
    pub fn position(&self) -> u64 {
        self.produced
    }

    /// The next element, `Ok(None)` at the end of the column. After an error the column is
    /// finished (further calls return `Ok(None)`).
    pub fn next_element(&mut self) -> Result<Option<Element<'_>>, ColumnError> {
        let produced = match self.step() {
            Ok(Some(p)) => p,
            Ok(None) => return Ok(None),
            Err(e) => {
                self.state = State::Done;
                return Err(e);
            }
        };
        self.produced += 1;
        if self.produced > self.limit {
            self.state = State::Done;
            return Err(error(
                self.pos,
                ColumnErrorKind::TooManyElements(self.limit),
            ));
        }
        Ok(Some(match produced {
            Produced::Missing => Element::Missing,
            Produced::Object(ty) => Element::Value {
                ty,
                value: &self.current,
            },
            Produced::Regular => match &self.state {
                State::Regular(stream) => Element::Value {
                    ty: stream.ty,
                    value: &stream.value,
                },
                _ => Element::Missing,
            },
        }))
    }

    /// Decodes the rest of the column to check it, returning how many elements it has.
    pub fn count(mut self) -> Result<u64, ColumnError> {
        while self.next_element()?.is_some() {}
        Ok(self.produced)
    }

    fn step(&mut self) -> Result<Option<Produced>, ColumnError> {
        let input = self.input;
        loop {
            match &mut self.state {
                State::Done => return Ok(None),
                State::Regular(stream) => {
                    if let Some(present) = stream.pull(input)? {
                        return Ok(Some(regular(present)));
                    }
                    let at = self.pos;
                    let control = *input
                        .get(at)
                        .ok_or(error(at, ColumnErrorKind::Unterminated))?;
                    if control == 0 {
                        if at + 1 != input.len() {
                            return Err(error(at + 1, ColumnErrorKind::TrailingBytes));
                        }
                        self.pos = at + 1;
                        self.state = State::Done;
                        return Ok(None);
                    }
                    if is_interleaved_start(control) {
                        self.begin_interleaved(at)?;
                        continue;
                    }
                    let present = stream.load_control(input, &mut self.pos)?;
                    return Ok(Some(regular(present)));
                }
                State::Interleaved(interleaved) => {
                    std::mem::swap(&mut self.current, &mut self.previous);
                    match build_object(input, &mut self.pos, interleaved, &mut self.current)? {
                        Some(present) => {
                            self.previous_present = present;
                            return Ok(Some(if present {
                                Produced::Object(interleaved.root_ty)
                            } else {
                                Produced::Missing
                            }));
                        }
                        None => {
                            // Interleaved mode ended: the last object is the base of what follows.
                            let root_ty = interleaved.root_ty;
                            let mut stream = Stream::new();
                            if self.previous_present {
                                stream.set_literal(root_ty, &self.previous, self.pos - 1);
                            }
                            self.state = State::Regular(stream);
                        }
                    }
                }
            }
        }
    }

    /// Reads the reference object at `at + 1` and enters interleaved mode.
    fn begin_interleaved(&mut self, at: usize) -> Result<(), ColumnError> {
        let input = self.input;
        let fail = |offset, message| error(offset, ColumnErrorKind::Interleaved(message));
        let control = input[at];
        let arrays = control != 0xF0;
        let root_ty = if control == 0xF2 { 0x04 } else { 0x03 };
        let start = at + 1;
        let rest = input.get(start..).unwrap_or(&[]);
        let len = raw::document_len(rest).map_err(|e| fail(start, e.0))?;
        let reference = &rest[..len];
        let range = |part: &[u8]| {
            let begin = part.as_ptr() as usize - input.as_ptr() as usize;
            (begin, begin + part.len())
        };

        let mut entries = vec![Entry::Enter {
            key: (start, start),
            ty: root_ty,
        }];
        let mut streams = Vec::new();
        // Explicit stack instead of recursion: a deeply nested reference cannot overflow.
        let mut stack = vec![(Elements::new(reference), len == 5)];
        while let Some((elements, allow_empty)) = stack.last_mut() {
            let allow_empty = *allow_empty;
            match elements.next() {
                None => {
                    stack.pop();
                    entries.push(Entry::Exit { allow_empty });
                }
                Some(Err(e)) => return Err(fail(start, e.0)),
                Some(Ok(element)) => {
                    let key = range(element.key);
                    let nested = element.ty == 0x03 || (arrays && element.ty == 0x04);
                    if nested {
                        entries.push(Entry::Enter {
                            key,
                            ty: element.ty,
                        });
                        stack.push((Elements::new(element.value), element.value.len() == 5));
                    } else {
                        let mut stream = Stream::new();
                        stream.set_literal(element.ty, element.value, start);
                        entries.push(Entry::Scalar {
                            key,
                            stream: streams.len(),
                        });
                        streams.push(stream);
                    }
                }
            }
        }
        if streams.is_empty() {
            return Err(fail(start, "the reference object has no scalar field"));
        }
        self.pos = start + len;
        if input.get(self.pos).is_none_or(|c| *c == 0) {
            return Err(fail(self.pos, "no object follows the reference object"));
        }
        self.previous_present = false;
        self.state = State::Interleaved(Box::new(Interleaved {
            entries,
            streams,
            root_ty,
            open: Vec::new(),
        }));
        Ok(())
    }
}

fn regular(present: bool) -> Produced {
    if present {
        Produced::Regular
    } else {
        Produced::Missing
    }
}

/// Builds the next interleaved object into `out`: `Some(true)` an object, `Some(false)` a
/// missing element (every field skipped), `None` when interleaved mode ended (its 0 byte is
/// consumed).
fn build_object(
    input: &[u8],
    pos: &mut usize,
    interleaved: &mut Interleaved,
    out: &mut Vec<u8>,
) -> Result<Option<bool>, ColumnError> {
    out.clear();
    interleaved.open.clear();
    for entry in &interleaved.entries {
        match *entry {
            Entry::Enter { key, ty } => {
                let start = out.len();
                if !interleaved.open.is_empty() {
                    out.push(ty);
                    out.extend_from_slice(&input[key.0..key.1]);
                    out.push(0);
                }
                interleaved.open.push((start, out.len()));
                out.extend_from_slice(&[0; 4]);
            }
            Entry::Scalar { key, stream } => {
                let Some(state) = interleaved.streams.get_mut(stream) else {
                    continue;
                };
                let present = match state.pull(input)? {
                    Some(present) => present,
                    None => {
                        let at = *pos;
                        let control = *input
                            .get(at)
                            .ok_or(error(at, ColumnErrorKind::Unterminated))?;
                        if control == 0 {
                            let fail = |m| error(at, ColumnErrorKind::Interleaved(m));
                            if stream != 0 {
                                return Err(fail("it ends inside an object"));
                            }
                            if interleaved.streams[1..]
                                .iter()
                                .any(|s| !s.cursor.is_exhausted())
                            {
                                return Err(fail("a stream has values left at its end"));
                            }
                            *pos = at + 1;
                            return Ok(None);
                        }
                        state.load_control(input, pos)?
                    }
                };
                if present {
                    out.push(state.ty);
                    out.extend_from_slice(&input[key.0..key.1]);
                    out.push(0);
                    out.extend_from_slice(&state.value);
                }
            }
            Entry::Exit { allow_empty } => {
                let Some((start, doc)) = interleaved.open.pop() else {
                    continue;
                };
                if out.len() == doc + 4 && !allow_empty {
                    // No field at all: the sub-object is omitted (the root: a missing element).
                    out.truncate(start);
                } else {
                    out.push(0);
                    let len = (out.len() - doc) as u32;
                    out[doc..doc + 4].copy_from_slice(&len.to_le_bytes());
                }
            }
        }
    }
    Ok(Some(!out.is_empty()))
}

#[cfg(test)]
mod tests {
    use super::*;

    type Decoded = Vec<Option<(u8, Vec<u8>)>>;

    fn decode(bytes: &[u8]) -> Result<Decoded, ColumnError> {
        let mut column = Column::new(bytes)?;
        let mut out = Vec::new();
        while let Some(element) = column.next_element()? {
            out.push(match element {
                Element::Missing => None,
                Element::Value { ty, value } => Some((ty, value.to_vec())),
            });
        }
        Ok(out)
    }

    fn int32_literal(v: i32) -> Vec<u8> {
        let mut out = vec![0x10, 0];
        out.extend_from_slice(&v.to_le_bytes());
        out
    }

    #[test]
    fn literals_then_deltas() {
        // 5, then one block of selector 14 (one 60-bit slot) holding zigzag(+3) = 6.
        let mut bytes = int32_literal(5);
        bytes.push(0x80);
        bytes.extend_from_slice(&((6u64 << 4) | 14).to_le_bytes());
        bytes.push(0);
        let got = decode(&bytes).unwrap();
        assert_eq!(
            got,
            vec![
                Some((0x10, 5i32.to_le_bytes().to_vec())),
                Some((0x10, 8i32.to_le_bytes().to_vec()))
            ]
        );
    }

    #[test]
    fn deltas_before_any_literal_are_missing() {
        let mut bytes = vec![0x80];
        bytes.extend_from_slice(&((6u64 << 4) | 14).to_le_bytes());
        bytes.push(0);
        assert_eq!(decode(&bytes).unwrap(), vec![None]);
    }

    #[test]
    fn the_end_must_be_exact() {
        let mut bytes = int32_literal(1);
        assert_eq!(
            decode(&bytes).unwrap_err().kind,
            ColumnErrorKind::Unterminated
        );
        bytes.extend_from_slice(&[0, 0]);
        assert_eq!(
            decode(&bytes).unwrap_err().kind,
            ColumnErrorKind::TrailingBytes
        );
        assert_eq!(decode(&[]).unwrap_err().kind, ColumnErrorKind::Empty);
    }

    #[test]
    fn doubles_must_fit_the_scale() {
        assert_eq!(encode_double(1.11, 2), Some(111));
        assert_eq!(encode_double(1.11, 0), None);
        assert_eq!(encode_double(-0.0, 0), None);
        assert_eq!(encode_double(f64::NAN, 1), None);
        assert_eq!(decode_double(111, 2), 1.11);
    }

    #[test]
    fn strings_reverse_into_the_low_bytes() {
        let v = encode_string(b"ab").unwrap();
        assert_eq!(v, u128::from(b'b') | (u128::from(b'a') << 8));
        assert_eq!(encode_string(b"\0a"), None);
        assert_eq!(encode_string(&[b'x'; 17]), None);
    }

    #[test]
    fn object_ids_round_trip_their_encoded_bytes() {
        let oid: [u8; 12] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12];
        let mut back = [0u8; 12];
        back[4..9].copy_from_slice(&oid[4..9]);
        decode_object_id(encode_object_id(&oid), &mut back);
        assert_eq!(back, oid);
    }

    #[test]
    fn a_run_length_bomb_stops_at_the_limit() {
        // 64 control bytes of 16 run-length blocks of 1,920 repeats each.
        let mut run = vec![0x8F];
        for _ in 0..16 {
            run.extend_from_slice(&0xFFu64.to_le_bytes());
        }
        let mut bytes = int32_literal(1);
        for _ in 0..64 {
            bytes.extend_from_slice(&run);
        }
        bytes.push(0);
        let column = Column::new(&bytes).unwrap().with_limit(1000);
        assert_eq!(
            column.count().unwrap_err().kind,
            ColumnErrorKind::TooManyElements(1000)
        );
    }
}
