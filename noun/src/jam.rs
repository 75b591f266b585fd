//! `jam` and `cue`: Urbit's bit-level noun serialisation, bit for bit.
//!
//! Bits are written least significant first. Each noun is a tag and a body:
//! `0` then `mat(atom)` for an atom, `1 0` then head and tail for a cell, and
//! `1 1` then `mat(position)` for a back-reference to an equal noun that
//! started at bit `position`. `mat` is a self-delimiting length encoding.
//!
//! Invariants:
//! - [`jam`] chooses back-references exactly as Urbit does: a repeated cell is
//!   always a back-reference; a repeated atom is one only when the atom has
//!   more significant bits than the position it would refer to. The output is
//!   therefore identical to Urbit's.
//! - [`cue`] never panics and never reads past its input: a truncated input,
//!   a back-reference to anything but the start of an earlier complete noun,
//!   or a length field too large for the input is a [`CueError`]. Every noun
//!   it builds consumes at least two input bits and back-references share
//!   rather than copy, so memory stays linear in the input size.
//! - Both directions use explicit heap stacks (no native recursion).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use thiserror::Error;

use crate::{Atom, Cell, Noun};

/// Why bytes did not decode as a jammed noun. Offsets are bit positions.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum CueError {
    /// The input ended inside a noun.
    #[error("input ends inside a noun (needed bit {needed}, input has {available} bits)")]
    Truncated {
        /// The first bit that was needed but missing.
        needed: u64,
        /// How many bits the input has.
        available: u64,
    },
    /// A length prefix at `at` claims more than 2^64 bits.
    #[error("length prefix at bit {at} is too large")]
    LengthTooLarge {
        /// Bit position of the length prefix.
        at: u64,
    },
    /// A back-reference at `at` names a position where no earlier noun starts.
    #[error("back-reference at bit {at} names bit {}, where no earlier noun starts", target.short())]
    BadBackReference {
        /// Bit position of the back-reference.
        at: u64,
        /// The position it names.
        target: Atom,
    },
    /// A back-reference at `at` names a cell that contains it.
    #[error("back-reference at bit {at} names a cell that encloses it (bit {target})")]
    CyclicBackReference {
        /// Bit position of the back-reference.
        at: u64,
        /// The enclosing cell's position.
        target: u64,
    },
}

/// Serialise a noun to Urbit's `jam` format, as an atom.
///
/// ```
/// use spectree_noun::{jam, Noun};
/// assert_eq!(jam(&"[1 2 3]".parse::<Noun>().unwrap()), 3_426_417u64.into());
/// ```
pub fn jam(noun: &Noun) -> Atom {
    Atom::from_bytes_le(&jam_bytes(noun))
}

/// Serialise a noun to the little-endian bytes of its `jam` atom.
pub fn jam_bytes(noun: &Noun) -> Vec<u8> {
    let mut w = BitWriter::default();
    let mut atoms = AtomTable::default();
    let mut cells = CellTable::default();
    let mut stack: Vec<&Noun> = vec![noun];
    while let Some(n) = stack.pop() {
        let pos = w.len;
        let seen = match n {
            Noun::Atom(a) => atoms.first(a, pos),
            Noun::Cell(c) => cells.first(c, pos),
        };
        match (n, seen) {
            (Noun::Cell(c), None) => {
                w.push(true);
                w.push(false);
                stack.push(c.tail());
                stack.push(c.head());
            }
            (Noun::Atom(a), None) => {
                w.push(false);
                w.mat(a);
            }
            (_, Some(bak)) => {
                w.push(true);
                w.push(true);
                w.mat(&Atom::new(bak));
            }
        }
    }
    w.into_bytes()
}

fn bits_of(n: u64) -> u64 {
    u64::from(64 - n.leading_zeros())
}

/// Atoms that jam may refer back to.
///
/// Hoon's rule: a repeated atom becomes a back-reference to its first
/// position `p` exactly when it has more bits than `p`. An atom no wider than
/// its first position is therefore always written inline, and need not be
/// remembered at all: later occurrences, at larger positions, are inline too.
/// Only atoms wider than their first position enter the table, which keeps it
/// small, and a mask of the widths present skips most lookups.
#[derive(Default)]
struct AtomTable {
    small: HashMap<u64, u64, BuildMix>,
    big: HashMap<Atom, u64>,
    /// Bit `k` is set when some small atom of exactly `k` bits is stored.
    widths: u128,
}

impl AtomTable {
    /// The position to refer back to for `a` at `pos`, or `None` to write it
    /// inline (remembering it if a later back-reference could pay).
    fn first(&mut self, a: &Atom, pos: u64) -> Option<u64> {
        let width = a.bit_len();
        match a.as_u64() {
            Some(v) => {
                if self.widths & (1u128 << width) != 0 {
                    if let Some(&bak) = self.small.get(&v) {
                        return Some(bak);
                    }
                }
                if width > bits_of(pos) {
                    self.small.insert(v, pos);
                    self.widths |= 1u128 << width;
                }
                None
            }
            None => match self.big.get(a) {
                Some(&bak) => Some(bak),
                None => {
                    self.big.insert(a.clone(), pos);
                    None
                }
            },
        }
    }
}

/// Cells seen so far, keyed by fingerprint (the table never touches cell
/// memory to hash or rehash) and confirmed by structural equality; the
/// astronomically rare unequal cells with equal fingerprints go to `collided`.
#[derive(Default)]
struct CellTable<'n> {
    by_print: HashMap<u64, (u64, &'n Cell), BuildMix>,
    collided: HashMap<CellKey<'n>, u64, BuildMix>,
}

impl<'n> CellTable<'n> {
    /// The position of an earlier equal cell, or `None` after remembering
    /// this one at `pos`.
    fn first(&mut self, c: &'n Cell, pos: u64) -> Option<u64> {
        match self.by_print.entry(c.fingerprint()) {
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert((pos, c));
                None
            }
            std::collections::hash_map::Entry::Occupied(e) => {
                let (bak, other) = *e.get();
                if other.ptr_eq(c) || other == c {
                    return Some(bak);
                }
                match self.collided.entry(CellKey(c)) {
                    std::collections::hash_map::Entry::Occupied(e) => Some(*e.get()),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert(pos);
                        None
                    }
                }
            }
        }
    }
}

/// Deserialise a `jam` atom.
///
/// ```
/// use spectree_noun::{cue, Atom};
/// assert_eq!(cue(&Atom::new(4657)).unwrap().to_string(), "[1 2]");
/// assert!(cue(&Atom::new(0)).is_err());
/// ```
///
/// # Errors
/// A [`CueError`] if the atom is not a complete, well-formed jam.
pub fn cue(atom: &Atom) -> Result<Noun, CueError> {
    cue_bytes(&atom.to_bytes_le())
}

/// Deserialise the little-endian bytes of a `jam` atom.
///
/// # Errors
/// A [`CueError`] if the bytes are not a complete, well-formed jam.
pub fn cue_bytes(bytes: &[u8]) -> Result<Noun, CueError> {
    enum Frame {
        Head { slot: usize },
        Tail { slot: usize, head: Noun },
    }
    let r = BitReader::new(bytes);
    // Start position of every noun decoded so far, in increasing order, with
    // the noun once it is complete.
    let mut seen: Vec<(u64, Option<Noun>)> = Vec::new();
    let mut frames: Vec<Frame> = Vec::new();
    let mut pos = 0u64;
    loop {
        // Decode one item at `pos`: an atom, a back-reference, or a cell head.
        let start = pos;
        let mut done = if !r.bit(pos)? {
            let (atom, next) = r.rub(pos + 1)?;
            pos = next;
            let n = Noun::Atom(atom);
            seen.push((start, Some(n.clone())));
            n
        } else if !r.bit(pos + 1)? {
            pos += 2;
            frames.push(Frame::Head { slot: seen.len() });
            seen.push((start, None));
            continue;
        } else {
            let (target, next) = r.rub(pos + 2)?;
            pos = next;
            let bad = || CueError::BadBackReference {
                at: start,
                target: target.clone(),
            };
            let t = target.as_u64().ok_or_else(bad)?;
            let i = seen
                .binary_search_by_key(&t, |(p, _)| *p)
                .map_err(|_| bad())?;
            match &seen[i].1 {
                Some(n) => n.clone(),
                None => {
                    return Err(CueError::CyclicBackReference {
                        at: start,
                        target: t,
                    })
                }
            }
        };
        // Hand the finished noun to the enclosing cells.
        loop {
            match frames.pop() {
                None => return Ok(done),
                Some(Frame::Head { slot }) => {
                    frames.push(Frame::Tail { slot, head: done });
                    break;
                }
                Some(Frame::Tail { slot, head }) => {
                    done = Noun::Cell(Cell::new(head, done));
                    seen[slot].1 = Some(done.clone());
                }
            }
        }
    }
}

#[derive(Default)]
struct BitWriter {
    words: Vec<u64>,
    len: u64,
}

impl BitWriter {
    fn push(&mut self, bit: bool) {
        self.bits(u64::from(bit), 1);
    }

    /// Append the low `n` bits of `value` (`n <= 64`).
    fn bits(&mut self, value: u64, n: u32) {
        if n == 0 {
            return;
        }
        let value = if n == 64 {
            value
        } else {
            value & ((1u64 << n) - 1)
        };
        let off = (self.len % 64) as u32;
        if off == 0 {
            self.words.push(value);
        } else {
            *self.words.last_mut().expect("off > 0") |= value << off;
            if off + n > 64 {
                self.words.push(value >> (64 - off));
            }
        }
        self.len += u64::from(n);
    }

    fn zeros(&mut self, mut n: u64) {
        while n > 0 {
            let k = n.min(64) as u32;
            self.bits(0, k);
            n -= u64::from(k);
        }
    }

    /// Append the `bit_len` significant bits of `atom`.
    fn atom(&mut self, atom: &Atom, bit_len: u64) {
        match atom.as_big() {
            None => self.bits(atom.as_u64().expect("small"), bit_len as u32),
            Some(big) => {
                let mut left = bit_len;
                for digit in big.iter_u64_digits() {
                    let k = left.min(64) as u32;
                    self.bits(digit, k);
                    left -= u64::from(k);
                }
            }
        }
    }

    /// Urbit's `mat`: a self-delimiting encoding of an atom.
    fn mat(&mut self, a: &Atom) {
        if a.is_zero() {
            self.push(true);
            return;
        }
        let b = a.bit_len();
        let c = u64::from(64 - b.leading_zeros());
        self.zeros(c);
        self.push(true);
        self.bits(b, (c - 1) as u32);
        self.atom(a, b);
    }

    fn into_bytes(self) -> Vec<u8> {
        let mut bytes: Vec<u8> = self.words.iter().flat_map(|w| w.to_le_bytes()).collect();
        while bytes.last() == Some(&0) {
            bytes.pop();
        }
        bytes
    }
}

struct BitReader<'a> {
    bytes: &'a [u8],
    len: u64,
}

impl<'a> BitReader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let top = bytes.iter().rposition(|&b| b != 0);
        let bytes = &bytes[..top.map_or(0, |t| t + 1)];
        let len = match bytes.last() {
            Some(&b) => (bytes.len() as u64 - 1) * 8 + u64::from(8 - b.leading_zeros()),
            None => 0,
        };
        BitReader { bytes, len }
    }

    fn truncated(&self, needed: u64) -> CueError {
        CueError::Truncated {
            needed,
            available: self.len,
        }
    }

    fn bit(&self, i: u64) -> Result<bool, CueError> {
        if i >= self.len {
            return Err(self.truncated(i));
        }
        Ok((self.bytes[(i / 8) as usize] >> (i % 8)) & 1 == 1)
    }

    /// Up to 64 bits starting at `i`; bits past the end read as 0.
    fn window(&self, i: u64) -> u64 {
        let byte = (i / 8) as usize;
        let mut buf = [0u8; 16];
        if byte < self.bytes.len() {
            let avail = (self.bytes.len() - byte).min(16);
            buf[..avail].copy_from_slice(&self.bytes[byte..byte + avail]);
        }
        let wide = u128::from_le_bytes(buf);
        (wide >> (i % 8)) as u64
    }

    /// `n` bits starting at `i` (`n <= 64`), all within the input.
    fn bits(&self, i: u64, n: u64) -> Result<u64, CueError> {
        if n == 0 {
            return Ok(0);
        }
        let end = i.checked_add(n).ok_or_else(|| self.truncated(u64::MAX))?;
        if end > self.len {
            return Err(self.truncated(self.len));
        }
        let w = self.window(i);
        Ok(if n == 64 { w } else { w & ((1u64 << n) - 1) })
    }

    /// An atom of `n` bits starting at `i`, all within the input.
    fn atom(&self, i: u64, n: u64) -> Result<Atom, CueError> {
        if n <= 64 {
            return Ok(Atom::new(self.bits(i, n)?));
        }
        let end = i.checked_add(n).ok_or_else(|| self.truncated(u64::MAX))?;
        if end > self.len {
            return Err(self.truncated(self.len));
        }
        let mut out = Vec::with_capacity(n.div_ceil(8) as usize);
        let mut k = 0;
        while k < n {
            let take = (n - k).min(8);
            out.push(self.bits(i + k, take)? as u8);
            k += take;
        }
        Ok(Atom::from_bytes_le(&out))
    }

    /// Urbit's `rub`: decode a `mat` at `i`; returns the atom and the position
    /// after it.
    fn rub(&self, i: u64) -> Result<(Atom, u64), CueError> {
        // Count the zeros of the length-of-length prefix.
        let mut c = 0u64;
        loop {
            if i + c >= self.len {
                return Err(self.truncated(i + c));
            }
            let w = self.window(i + c);
            if w != 0 {
                c += u64::from(w.trailing_zeros());
                break;
            }
            c += 64;
        }
        if i + c >= self.len {
            return Err(self.truncated(i + c));
        }
        if c == 0 {
            return Ok((Atom::ZERO, i + 1));
        }
        if c > 64 {
            return Err(CueError::LengthTooLarge { at: i });
        }
        let d = i + c + 1;
        let len = (1u64 << (c - 1)) | self.bits(d, c - 1)?;
        let at = d + c - 1;
        let atom = self.atom(at, len)?;
        Ok((atom, at + len))
    }
}

/// A cell keyed by value: hashed by fingerprint (mugs cycle on regular
/// shapes, which would make lookups quadratic), compared by structure.
struct CellKey<'a>(&'a Cell);

impl Hash for CellKey<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.0.fingerprint());
    }
}

impl PartialEq for CellKey<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0.ptr_eq(other.0) || Noun::Cell(self.0.clone()) == Noun::Cell(other.0.clone())
    }
}

impl Eq for CellKey<'_> {}

/// A fast hasher for integer keys: multiplicative mixing while writing, and
/// SplitMix64's finaliser at the end, so keys that differ only in high bits
/// (multiples of 2^32, say) still spread over buckets.
#[derive(Default)]
struct Mix(u64);

impl Hasher for Mix {
    fn finish(&self) -> u64 {
        crate::noun::mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.write_u64(u64::from(n));
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0.rotate_left(5) ^ n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type BuildMix = BuildHasherDefault<Mix>;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noun::tests::{deep_left, deep_list};

    fn n(s: &str) -> Noun {
        s.parse().unwrap()
    }

    fn bytes_atom(b: &[u8]) -> Atom {
        Atom::from_bytes_le(b)
    }

    // Published pairs: urbit/vere pkg/noun/serial_tests.c and the Hoon
    // reference docs (stdlib 2p, serialization).
    #[test]
    fn published_jams() {
        let cases: &[(&str, u64)] = &[
            ("0", 2),
            ("1", 12),
            ("2", 72),
            ("[0 0]", 41),
            ("[0 1]", 201),
            ("[1 0]", 177),
            ("7", 248),
            ("[1 1]", 817),
            ("[1 2]", 4657),
            ("[2 3]", 53537),
            ("[0 19]", 39689),
            ("[1 1 1]", 52337),
            ("[1 2 3]", 3_426_417),
            ("[[1 2] 3]", 3_426_501),
            ("[0 1 2]", 74521),
            ("[[1 2] [1 2] 1 2]", 4_951_820_485),
            ("[[0 0] [[0 0] 1 1] 1 1]", 5_604_715_869_605),
        ];
        for &(text, jammed) in cases {
            assert_eq!(jam(&n(text)), Atom::new(jammed), "jam {text}");
            assert_eq!(cue(&Atom::new(jammed)).unwrap(), n(text), "cue {jammed}");
        }
        assert_eq!(
            jam(&n("%fast")),
            bytes_atom(&[0xc0, 0x37, 0x0b, 0x9b, 0xa3, 0x03])
        );
        assert_eq!(
            jam(&n("%full")),
            bytes_atom(&[0xc0, 0x37, 0xab, 0x63, 0x63, 0x03])
        );
    }

    #[test]
    fn big_atoms_and_atom_backrefs() {
        let big = n("0x1.0000.0000.0000.0000.0000");
        let x = Noun::tuple([big.clone(), big.clone(), Noun::atom(5), Noun::atom(5)]);
        let j = jam(&x);
        assert_eq!(cue(&j).unwrap(), x);
        // The second big atom is a back-reference: shorter than writing it.
        let inline = jam(&Noun::tuple([
            big.clone(),
            n("0x1.0000.0000.0000.0000.0001"),
        ]));
        assert!(j.bit_len() < inline.bit_len() + 10);
    }

    #[test]
    fn hostile_inputs_are_errors() {
        assert!(matches!(cue(&Atom::ZERO), Err(CueError::Truncated { .. })));
        // A cell tag with nothing after it.
        assert!(matches!(
            cue(&Atom::new(0b01)),
            Err(CueError::Truncated { .. })
        ));
        // A back-reference to position 0 while the cell at 0 is still open: `[<0> ...]`.
        // bits: 1 0 (cell) 1 1 (backref) 1 (mat 0)
        let cyclic = Atom::new(0b1_11_01);
        assert!(matches!(
            cue(&cyclic),
            Err(CueError::CyclicBackReference { .. })
        ));
        // `[0 <backref 3>]`: bits 1 0 | 0 1 | 1 1 then mat(3) = 0 0 1 0 1 1;
        // no noun starts at bit 3.
        let bad = Atom::new(3385);
        assert_eq!(
            cue(&bad),
            Err(CueError::BadBackReference {
                at: 4,
                target: Atom::new(3)
            })
        );
        // A message never quotes a huge target in full.
        let huge_target = CueError::BadBackReference {
            at: 4,
            target: Atom::from_biguint(num_bigint::BigUint::from(1u8) << 400_000u32),
        };
        assert!(huge_target.to_string().len() < 200, "{huge_target}");
        // An enormous claimed length in a short input.
        let mut huge = vec![0u8; 9];
        huge.push(0x01);
        assert!(cue_bytes(&huge).is_err());
        // All-ones, all-zeros and random garbage never panic.
        for len in 0..64 {
            let _ = cue_bytes(&vec![0xff; len]);
            let _ = cue_bytes(&vec![0x00; len]);
            let _ = cue_bytes(
                &(0..len as u8)
                    .map(|b| b.wrapping_mul(37))
                    .collect::<Vec<_>>(),
            );
        }
    }

    #[test]
    fn atoms_differing_in_high_bits_do_not_collide() {
        // Multiples of 2^32 once all hashed to one bucket.
        let n = Noun::list((1..=200_000u64).map(|j| Noun::atom(j << 32)));
        let start = std::time::Instant::now();
        let j = jam_bytes(&n);
        assert_eq!(cue_bytes(&j).unwrap(), n);
        // Generous bound: quadratic behaviour took minutes here.
        assert!(start.elapsed() < std::time::Duration::from_secs(20));
    }

    #[test]
    fn million_deep_round_trip() {
        for x in [deep_list(1_000_000), deep_left(1_000_000)] {
            let j = jam_bytes(&x);
            assert_eq!(cue_bytes(&j).unwrap(), x);
        }
    }
}
