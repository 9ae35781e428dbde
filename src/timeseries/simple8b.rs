//! Simple-8b blocks as BSONColumn writes them.
//!
//! A block is one little-endian 64-bit word. Its low 4 bits are the *selector*, which says how
//! the other 60 bits split into slots; the first slot is the least significant. A slot whose
//! bits are all ones is a *missing* value (a skip); any other slot is a zigzag-encoded delta.
//!
//! | selector | slots × bits |
//! | --- | --- |
//! | 1–14 | 60×1, 30×2, 20×3, 15×4, 12×5, 10×6, 8×7, 7×8, 6×10, 5×12, 4×15, 3×20, 2×30, 1×60 |
//! | 7, extension 1–9 | 9, 8, 7, 6, 5, 4, 3, 2, 1 slots of 2, 3, 4, 5, 7, 10, 14, 24, 52 value bits + 4 count bits |
//! | 8, extension 1–7 | 7, 6, 5, 4, 3, 2, 1 slots of 4, 5, 7, 10, 14, 24, 52 value bits + 4 count bits, count × 4 |
//! | 8, extension 8–13 | 6, 5, 4, 3, 2, 1 slots of 4, 6, 9, 13, 23, 51 value bits + 5 count bits, count × 4 |
//! | 15 | run-length: (extension + 1) × 120 repeats of the previous value |
//!
//! Selectors 7 and 8 use 56 bits for slots, which leaves a 4-bit *extension* in bits 4–7
//! (0 keeps the plain layout). Extended slots hold a value in their high bits and a count in
//! their low bits; the value is shifted left by count × 1 (selector 7) or count × 4
//! (selector 8) bits, which lets 128-bit deltas with trailing zeros fit. The run-length block
//! repeats the last slot decoded before it — a value or a skip — or 0 when nothing was decoded
//! since the stream's last literal. Selector 0 and the unassigned extensions are invalid.

/// Bits per slot and slots per block for selectors 1–14.
const BASE_BITS: [u8; 15] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 12, 15, 20, 30, 60];
const BASE_SLOTS: [u8; 15] = [0, 60, 30, 20, 15, 12, 10, 8, 7, 6, 5, 4, 3, 2, 1];
/// Selector 7's extensions 1–9: value bits (4 count bits each, count × 1).
const SEVEN_BITS: [u8; 10] = [0, 2, 3, 4, 5, 7, 10, 14, 24, 52];
const SEVEN_SLOTS: [u8; 10] = [0, 9, 8, 7, 6, 5, 4, 3, 2, 1];
/// Selector 8's extensions 1–13: value bits (4 count bits for 1–7, 5 for 8–13, count × 4).
const EIGHT_BITS: [u8; 14] = [0, 4, 5, 7, 10, 14, 24, 52, 4, 6, 9, 13, 23, 51];
const EIGHT_SLOTS: [u8; 14] = [0, 7, 6, 5, 4, 3, 2, 1, 6, 5, 4, 3, 2, 1];

/// Repeats per unit of a run-length block's extension.
const RLE_UNIT: u32 = 120;

/// How one block's slots are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Layout {
    /// Bit where the first slot starts (4, or 8 for selectors 7 and 8).
    offset: u8,
    value_bits: u8,
    count_bits: u8,
    count_scale: u8,
    slots: u8,
}

/// What a block word says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Block {
    Slots(Layout),
    Rle(u32),
}

/// Decodes a block's selector; `None` for an invalid one.
fn block(word: u64) -> Option<Block> {
    let selector = (word & 0xF) as usize;
    let extension = ((word >> 4) & 0xF) as usize;
    let plain = |offset| {
        Some(Block::Slots(Layout {
            offset,
            value_bits: BASE_BITS[selector],
            count_bits: 0,
            count_scale: 0,
            slots: BASE_SLOTS[selector],
        }))
    };
    match selector {
        0 => None,
        15 => Some(Block::Rle((extension as u32 + 1) * RLE_UNIT)),
        7 | 8 if extension == 0 => plain(8),
        7 => (extension < SEVEN_BITS.len()).then(|| {
            Block::Slots(Layout {
                offset: 8,
                value_bits: SEVEN_BITS[extension],
                count_bits: 4,
                count_scale: 1,
                slots: SEVEN_SLOTS[extension],
            })
        }),
        8 => (extension < EIGHT_BITS.len()).then(|| {
            Block::Slots(Layout {
                offset: 8,
                value_bits: EIGHT_BITS[extension],
                count_bits: if extension >= 8 { 5 } else { 4 },
                count_scale: 4,
                slots: EIGHT_SLOTS[extension],
            })
        }),
        _ => plain(4),
    }
}

/// One slot: a zigzag-encoded delta, or missing.
pub(crate) type Slot = Option<u128>;

/// The value of slot `index` of `word`. `wide` selects 128-bit arithmetic for the extended
/// shift; 64-bit streams shift modulo 64 and truncate, as the format's reference does.
#[inline]
fn slot(word: u64, layout: Layout, index: u8, wide: bool) -> Slot {
    let width = u32::from(layout.value_bits) + u32::from(layout.count_bits);
    let mask = (1u64 << width) - 1;
    let raw = (word >> (u32::from(layout.offset) + u32::from(index) * width)) & mask;
    if raw == mask {
        return None;
    }
    if layout.count_bits == 0 {
        return Some(u128::from(raw));
    }
    let count = raw & ((1u64 << layout.count_bits) - 1);
    let value = raw >> layout.count_bits;
    let shift = (count * u64::from(layout.count_scale)) as u32;
    Some(if wide {
        u128::from(value) << shift
    } else {
        u128::from(value.wrapping_shl(shift))
    })
}

/// The position inside the blocks of one control byte.
#[derive(Debug, Clone)]
enum Current {
    Empty,
    Slots { word: u64, layout: Layout, next: u8 },
    Rle { left: u32 },
}

/// A failure inside a block, at the word's byte offset in the column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct InvalidBlock {
    pub offset: usize,
}

/// Walks the blocks of successive control bytes of one stream, slot by slot.
#[derive(Debug, Clone)]
pub(crate) struct Cursor {
    /// Offset of the next unread word.
    next_word: usize,
    words_left: u8,
    current: Current,
    /// The last slot decoded, which a run-length block repeats.
    last: Slot,
    wide: bool,
}

impl Cursor {
    /// A cursor with nothing loaded; a run-length block at its start repeats 0.
    pub(crate) fn new(wide: bool) -> Self {
        Cursor {
            next_word: 0,
            words_left: 0,
            current: Current::Empty,
            last: Some(0),
            wide,
        }
    }

    /// Loads the `words` blocks that start at `offset` (the caller checked they lie within the
    /// column). The previous value carries over: a run-length block may continue a run of the
    /// previous control byte.
    pub(crate) fn load(&mut self, offset: usize, words: u8) {
        self.next_word = offset;
        self.words_left = words;
        self.current = Current::Empty;
    }

    /// Whether the loaded blocks have no slot left.
    pub(crate) fn is_exhausted(&self) -> bool {
        self.words_left == 0
            && match self.current {
                Current::Empty => true,
                Current::Slots { layout, next, .. } => next >= layout.slots,
                Current::Rle { left } => left == 0,
            }
    }

    /// The next slot, `Ok(None)` when the loaded blocks are exhausted.
    #[inline]
    pub(crate) fn next(&mut self, input: &[u8]) -> Result<Option<Slot>, InvalidBlock> {
        loop {
            match &mut self.current {
                Current::Slots { word, layout, next } if *next < layout.slots => {
                    let value = slot(*word, *layout, *next, self.wide);
                    *next += 1;
                    self.last = value;
                    return Ok(Some(value));
                }
                Current::Rle { left } if *left > 0 => {
                    *left -= 1;
                    return Ok(Some(self.last));
                }
                _ => {}
            }
            if self.words_left == 0 {
                self.current = Current::Empty;
                return Ok(None);
            }
            let offset = self.next_word;
            let bytes = input
                .get(offset..)
                .and_then(|rest| rest.first_chunk::<8>())
                .ok_or(InvalidBlock { offset })?;
            let word = u64::from_le_bytes(*bytes);
            self.next_word += 8;
            self.words_left -= 1;
            self.current = match block(word).ok_or(InvalidBlock { offset })? {
                Block::Slots(layout) => Current::Slots {
                    word,
                    layout,
                    next: 0,
                },
                Block::Rle(left) => Current::Rle { left },
            };
        }
    }
}

/// Zigzag decoding: 0, 1, 2, 3 … → 0, −1, 1, −2 …
#[inline]
pub(crate) fn zigzag64(raw: u128) -> i64 {
    let v = raw as u64;
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

#[inline]
pub(crate) fn zigzag128(raw: u128) -> i128 {
    ((raw >> 1) as i128) ^ -((raw & 1) as i128)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots(words: &[u64], wide: bool) -> Result<Vec<Slot>, InvalidBlock> {
        let bytes: Vec<u8> = words.iter().flat_map(|w| w.to_le_bytes()).collect();
        let mut cursor = Cursor::new(wide);
        cursor.load(0, words.len() as u8);
        let mut out = Vec::new();
        while let Some(s) = cursor.next(&bytes)? {
            out.push(s);
        }
        assert!(cursor.is_exhausted());
        Ok(out)
    }

    #[test]
    fn every_base_selector_has_its_slot_count() {
        for selector in 1..=14u64 {
            let extension_nibble = if selector == 7 || selector == 8 { 8 } else { 4 };
            // All-zero slots: every slot decodes as 0.
            let got = slots(&[selector], false).unwrap();
            assert_eq!(
                got.len(),
                BASE_SLOTS[selector as usize] as usize,
                "{selector}"
            );
            assert!(got.iter().all(|s| *s == Some(0)));
            // All-ones slots: every slot is missing.
            let ones = (!0u64 >> extension_nibble) << extension_nibble;
            let got = slots(&[ones | selector], false).unwrap();
            assert!(got.iter().all(|s| s.is_none()), "{selector}");
        }
    }

    #[test]
    fn extended_slots_shift_their_value() {
        // Selector 8, extension 8: 6 slots of 4 value + 5 count bits; first slot value 1,
        // count 3 → 1 << 12; the others 0.
        let first = (1u64 << 5) | 3;
        let word = (first << 8) | (8 << 4) | 8;
        let got = slots(&[word], true).unwrap();
        assert_eq!(got.len(), 6);
        assert_eq!(got[0], Some(1 << 12));
        // Selector 7, extension 1: 9 slots of 2 + 4 bits, count × 1.
        let first = (3u64 << 4) | 14;
        let word = (first << 8) | (1 << 4) | 7;
        let got = slots(&[word], false).unwrap();
        assert_eq!(got.len(), 9);
        assert_eq!(got[0], Some(3 << 14));
    }

    #[test]
    fn run_length_repeats_the_previous_slot() {
        // Selector 14 (one 60-bit slot) holding 6, then 2 × 120 repeats.
        let got = slots(&[(6 << 4) | 14, (1 << 4) | 15], false).unwrap();
        assert_eq!(got.len(), 241);
        assert!(got.iter().all(|s| *s == Some(6)));
        // At the start, the previous value is 0.
        let got = slots(&[15], false).unwrap();
        assert_eq!(got, vec![Some(0); 120]);
    }

    #[test]
    fn invalid_selectors_are_rejected() {
        for word in [0x00u64, 0xA7, 0xB7, 0xC7, 0xD7, 0xE7, 0xF7, 0xE8, 0xF8] {
            assert_eq!(
                slots(&[word], false),
                Err(InvalidBlock { offset: 0 }),
                "{word:#x}"
            );
        }
    }

    #[test]
    fn zigzag_round_trips() {
        assert_eq!(zigzag64(0), 0);
        assert_eq!(zigzag64(1), -1);
        assert_eq!(zigzag64(2), 1);
        assert_eq!(zigzag128(3), -2);
        assert_eq!(zigzag128(u128::MAX - 1), i128::MAX);
    }
}
