//! Atoms: unsigned integers of any size.
//!
//! Invariant: an [`Atom`] holds its value inline whenever it fits in a `u64`
//! and in a shared heap allocation only when it does not. Every value therefore
//! has exactly one representation, so equality and hashing can compare
//! representations directly.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;

use num_bigint::BigUint;
use num_traits::ToPrimitive;

/// An unsigned integer of arbitrary size.
///
/// Values up to `u64::MAX` are stored inline (no allocation, `clone` is a
/// copy); larger values live in a reference-counted allocation, so `clone` is
/// O(1) for every atom.
///
/// ```
/// use spectree_noun::Atom;
/// let a = Atom::new(u64::MAX).increment();
/// assert_eq!(a.as_u64(), None);
/// assert_eq!(a.bit_len(), 65);
/// assert_eq!(a.to_string(), "18446744073709551616");
/// ```
#[derive(Clone)]
pub struct Atom(Repr);

#[derive(Clone)]
enum Repr {
    Small(u64),
    Big(Arc<BigAtom>),
}

struct BigAtom {
    value: BigUint,
    /// Cached mug; 0 means "not yet computed" (a mug is never 0).
    mug: AtomicU32,
    /// Cached fingerprint; 0 means "not yet computed" (never 0).
    fingerprint: AtomicU64,
}

impl Atom {
    /// The atom 0.
    pub const ZERO: Atom = Atom(Repr::Small(0));
    /// The atom 1.
    pub const ONE: Atom = Atom(Repr::Small(1));

    /// An atom from a machine word.
    #[inline]
    pub const fn new(value: u64) -> Atom {
        Atom(Repr::Small(value))
    }

    /// An atom from a big integer, normalised to the inline form when it fits.
    pub fn from_biguint(value: BigUint) -> Atom {
        match value.to_u64() {
            Some(v) => Atom::new(v),
            None => Atom(Repr::Big(Arc::new(BigAtom {
                value,
                mug: AtomicU32::new(0),
                fingerprint: AtomicU64::new(0),
            }))),
        }
    }

    /// An atom from little-endian bytes (trailing zero bytes are insignificant).
    pub fn from_bytes_le(bytes: &[u8]) -> Atom {
        if bytes.len() <= 8 {
            let mut word = [0u8; 8];
            word[..bytes.len()].copy_from_slice(bytes);
            Atom::new(u64::from_le_bytes(word))
        } else {
            Atom::from_biguint(BigUint::from_bytes_le(bytes))
        }
    }

    /// The value as a `u64`, if it fits.
    #[inline]
    pub fn as_u64(&self) -> Option<u64> {
        match &self.0 {
            Repr::Small(v) => Some(*v),
            Repr::Big(_) => None,
        }
    }

    /// The value as a big integer.
    pub fn to_biguint(&self) -> BigUint {
        match &self.0 {
            Repr::Small(v) => BigUint::from(*v),
            Repr::Big(b) => b.value.clone(),
        }
    }

    /// Whether the atom is 0.
    #[inline]
    pub fn is_zero(&self) -> bool {
        matches!(self.0, Repr::Small(0))
    }

    /// Number of significant bits (`met 0`); 0 for the atom 0.
    #[inline]
    pub fn bit_len(&self) -> u64 {
        match &self.0 {
            Repr::Small(v) => u64::from(64 - v.leading_zeros()),
            Repr::Big(b) => b.value.bits(),
        }
    }

    /// Number of significant bytes (`met 3`); 0 for the atom 0.
    #[inline]
    pub fn byte_len(&self) -> u64 {
        self.bit_len().div_ceil(8)
    }

    /// Bit `index` of the value (bit 0 is the least significant).
    #[inline]
    pub fn bit(&self, index: u64) -> bool {
        match &self.0 {
            Repr::Small(v) => index < 64 && (v >> index) & 1 == 1,
            Repr::Big(b) => b.value.bit(index),
        }
    }

    /// The address of a big atom's shared value (an identity while the
    /// atom is alive); `None` for an inline one.
    pub(crate) fn big_addr(&self) -> Option<usize> {
        match &self.0 {
            Repr::Small(_) => None,
            Repr::Big(b) => Some(Arc::as_ptr(b) as usize),
        }
    }

    /// A big atom's fingerprint, computed once by `compute` and cached;
    /// `None` for an inline atom.
    pub(crate) fn big_fingerprint(&self, compute: impl FnOnce(&BigUint) -> u64) -> Option<u64> {
        let Repr::Big(b) = &self.0 else {
            return None;
        };
        match b.fingerprint.load(Ordering::Relaxed) {
            0 => {
                let f = compute(&b.value);
                b.fingerprint.store(f, Ordering::Relaxed);
                Some(f)
            }
            f => Some(f),
        }
    }

    /// The atom for messages: in full up to 128 bits, otherwise only its
    /// size, so an error never quotes a huge number.
    pub fn short(&self) -> String {
        if self.bit_len() <= 128 {
            self.to_string()
        } else {
            format!("(an atom of {} bits)", self.bit_len())
        }
    }

    /// The minimal little-endian bytes of the value (empty for 0).
    pub fn to_bytes_le(&self) -> Vec<u8> {
        match &self.0 {
            Repr::Small(v) => {
                let len = v.to_le_bytes().len() - (v.leading_zeros() / 8) as usize;
                v.to_le_bytes()[..len].to_vec()
            }
            Repr::Big(b) => b.value.to_bytes_le(),
        }
    }

    /// The value plus one.
    #[inline]
    pub fn increment(&self) -> Atom {
        match &self.0 {
            Repr::Small(v) => match v.checked_add(1) {
                Some(w) => Atom::new(w),
                None => Atom::from_biguint(BigUint::from(*v) + 1u32),
            },
            Repr::Big(b) => Atom::from_biguint(&b.value + 1u32),
        }
    }

    /// Urbit's 31-bit mug of this atom (cached for big atoms).
    pub fn mug(&self) -> u32 {
        match &self.0 {
            Repr::Small(v) => {
                let bytes = v.to_le_bytes();
                let len = 8 - (v.leading_zeros() / 8) as usize;
                crate::mug::mug_atom_bytes(&bytes[..len])
            }
            Repr::Big(b) => {
                let cached = b.mug.load(Ordering::Relaxed);
                if cached != 0 {
                    return cached;
                }
                let m = crate::mug::mug_atom_bytes(&b.value.to_bytes_le());
                b.mug.store(m, Ordering::Relaxed);
                m
            }
        }
    }

    /// The big-integer value, if the atom does not fit in a `u64`.
    pub(crate) fn as_big(&self) -> Option<&BigUint> {
        match &self.0 {
            Repr::Small(_) => None,
            Repr::Big(b) => Some(&b.value),
        }
    }
}

impl Default for Atom {
    fn default() -> Self {
        Atom::ZERO
    }
}

impl PartialEq for Atom {
    #[inline]
    fn eq(&self, other: &Atom) -> bool {
        match (&self.0, &other.0) {
            (Repr::Small(a), Repr::Small(b)) => a == b,
            (Repr::Big(a), Repr::Big(b)) => {
                if Arc::ptr_eq(a, b) {
                    return true;
                }
                let (fa, fb) = (
                    a.fingerprint.load(Ordering::Relaxed),
                    b.fingerprint.load(Ordering::Relaxed),
                );
                if fa != 0 && fb != 0 && fa != fb {
                    return false;
                }
                a.value == b.value
            }
            _ => false,
        }
    }
}

impl Eq for Atom {}

impl Hash for Atom {
    fn hash<H: Hasher>(&self, state: &mut H) {
        match &self.0 {
            Repr::Small(v) => v.hash(state),
            Repr::Big(b) => b.value.hash(state),
        }
    }
}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Atom) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Atom {
    fn cmp(&self, other: &Atom) -> std::cmp::Ordering {
        match (&self.0, &other.0) {
            (Repr::Small(a), Repr::Small(b)) => a.cmp(b),
            (Repr::Small(_), Repr::Big(_)) => std::cmp::Ordering::Less,
            (Repr::Big(_), Repr::Small(_)) => std::cmp::Ordering::Greater,
            (Repr::Big(a), Repr::Big(b)) => a.value.cmp(&b.value),
        }
    }
}

impl From<u64> for Atom {
    fn from(v: u64) -> Atom {
        Atom::new(v)
    }
}

impl From<BigUint> for Atom {
    fn from(v: BigUint) -> Atom {
        Atom::from_biguint(v)
    }
}

/// Widest atom [`Atom`]'s `Display` writes in decimal (about 315,000
/// digits, a few hundredths of a second); wider ones are written as `0x`
/// hex, which takes linear time (decimal printing is quadratic: 10^7 digits
/// would take seconds) and parses back to the same atom.
pub const DECIMAL_PRINT_BITS: u64 = 1 << 20;

impl fmt::Display for Atom {
    /// Decimal, or `0x` hex for atoms wider than [`DECIMAL_PRINT_BITS`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Small(v) => write!(f, "{v}"),
            Repr::Big(b) if b.value.bits() > DECIMAL_PRINT_BITS => write!(f, "0x{:x}", b.value),
            Repr::Big(b) => write!(f, "{}", b.value),
        }
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl fmt::LowerHex for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Repr::Small(v) => fmt::LowerHex::fmt(v, f),
            Repr::Big(b) => fmt::LowerHex::fmt(&b.value, f),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_to_inline_form() {
        let big = BigUint::from(u64::MAX);
        assert!(Atom::from_biguint(big).as_u64().is_some());
        let past = Atom::new(u64::MAX).increment();
        assert_eq!(past.as_u64(), None);
        assert_eq!(past, Atom::from_bytes_le(&[0, 0, 0, 0, 0, 0, 0, 0, 1]));
        assert_eq!(past.increment().to_string(), "18446744073709551617");
    }

    #[test]
    fn bytes_are_minimal() {
        assert!(Atom::ZERO.to_bytes_le().is_empty());
        assert_eq!(Atom::new(0x1234).to_bytes_le(), vec![0x34, 0x12]);
        assert_eq!(Atom::from_bytes_le(&[1, 0, 0]), Atom::ONE);
        assert_eq!(Atom::new(255).bit_len(), 8);
        assert_eq!(Atom::new(256).byte_len(), 2);
    }

    #[test]
    fn ordering_is_numeric() {
        let big = Atom::new(u64::MAX).increment();
        assert!(Atom::new(u64::MAX) < big);
        assert!(big < big.increment());
    }
}
