//! Text syntax for nouns: parsing and canonical printing.
//!
//! Grammar (whitespace separates elements; none is needed next to brackets):
//! - a cell is `[a b ...]` with at least two elements, right-nested:
//!   `[a b c]` is `[a [b c]]`;
//! - an atom is decimal with optional dot grouping in threes (`10.000`),
//!   `0x` hex with optional dot grouping in fours (`0xdead.beef`), a term
//!   `%name` (lowercase letters, digits and `-`, starting with a letter; the
//!   bytes of the name as a little-endian atom; `%$` is 0), a loobean
//!   `%.y` (0) or `%.n` (1), or a cord `'text'` (its UTF-8 bytes as a
//!   little-endian atom; `\\`, `\'` and `\xx` hex byte escapes).
//!
//! Printing is canonical: cells flattened to the right, atoms in plain
//! decimal, except atoms wider than [`DECIMAL_PRINT_BITS`](crate::DECIMAL_PRINT_BITS) bits, which print
//! in `0x` hex (decimal printing takes time quadratic in the width; hex is
//! linear and parses back to the same atom). Parsing decimal takes time
//! O(M(n) log n) in the number of digits. Both directions use explicit heap stacks, so a 10^6-deep noun
//! parses and prints without native recursion.

use std::fmt;
use std::str::FromStr;

use num_bigint::BigUint;
use thiserror::Error;

use crate::{Atom, Noun};

/// Why text did not parse as a noun; `offset` is a byte offset into the input.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{message} at byte {offset}")]
pub struct ParseError {
    /// Byte offset of the problem in the input.
    pub offset: usize,
    /// What was wrong.
    pub message: String,
}

fn err<T>(offset: usize, message: impl Into<String>) -> Result<T, ParseError> {
    Err(ParseError {
        offset,
        message: message.into(),
    })
}

impl FromStr for Noun {
    type Err = ParseError;

    /// Parses the text syntax described at [`parse`].
    fn from_str(s: &str) -> Result<Noun, ParseError> {
        parse(s)
    }
}

/// Parse one noun from `text` (surrounding whitespace allowed).
///
/// A cell is `[a b ...]` with at least two elements, right-nested (`[a b c]`
/// is `[a [b c]]`). An atom is decimal, with optional dots between groups of
/// three digits (`10.000`); `0x` hex, with optional dots between groups of
/// four (`0xdead.beef`); a term `%name` (lowercase letters, digits and `-`,
/// starting with a letter: its bytes as a little-endian atom; `%$` is 0); a
/// loobean `%.y` (0) or `%.n` (1); or a cord `'text'` (its UTF-8 bytes as a
/// little-endian atom, with `\\`, `\'` and `\xx` escapes).
///
/// ```
/// use spectree_noun::{parse, Noun};
/// assert_eq!(parse("[1 [2 3]]").unwrap(), parse("[1 2 3]").unwrap());
/// assert_eq!(parse("10.000").unwrap(), Noun::atom(10_000));
/// assert_eq!(parse("'ab'").unwrap(), Noun::atom(0x6261));
/// assert!(parse("[1 2").unwrap_err().to_string().contains("byte 4"));
/// ```
///
/// # Errors
/// A [`ParseError`] naming the byte offset of the first problem.
pub fn parse(text: &str) -> Result<Noun, ParseError> {
    let bytes = text.as_bytes();
    // All parsed elements of open cells, and where each open cell starts.
    let mut items: Vec<Noun> = Vec::new();
    let mut opens: Vec<(usize, usize)> = Vec::new(); // (byte offset, index in items)
    let mut result: Option<Noun> = None;
    let mut i = 0;
    loop {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        if result.is_some() {
            return err(i, "unexpected text after the noun");
        }
        let element = match bytes[i] {
            b'[' => {
                opens.push((i, items.len()));
                i += 1;
                continue;
            }
            b']' => {
                let Some((open_at, first)) = opens.pop() else {
                    return err(i, "unmatched ']'");
                };
                i += 1;
                let count = items.len() - first;
                if count < 2 {
                    return err(open_at, "a cell needs at least two elements");
                }
                let mut acc = items.pop().expect("count >= 2");
                while items.len() > first {
                    acc = Noun::cell(items.pop().expect("above first"), acc);
                }
                acc
            }
            _ => {
                let (atom, next) = parse_atom(text, i)?;
                i = next;
                Noun::Atom(atom)
            }
        };
        if i < bytes.len() && !matches!(bytes[i], b'[' | b']') && !bytes[i].is_ascii_whitespace() {
            return err(i, "expected whitespace or a bracket after an element");
        }
        if opens.is_empty() {
            result = Some(element);
        } else {
            items.push(element);
        }
    }
    if let Some((open_at, _)) = opens.last() {
        return err(
            bytes.len(),
            format!("unclosed '[' (opened at byte {open_at})"),
        );
    }
    match result {
        Some(n) => Ok(n),
        None => err(bytes.len(), "expected a noun"),
    }
}

fn parse_atom(text: &str, start: usize) -> Result<(Atom, usize), ParseError> {
    let bytes = text.as_bytes();
    let end = bytes[start..]
        .iter()
        .position(|b| b.is_ascii_whitespace() || matches!(b, b'[' | b']'))
        .map_or(bytes.len(), |p| start + p);
    match bytes[start] {
        b'\'' => parse_cord(bytes, start),
        b'%' => Ok((parse_term(&text[start..end], start)?, end)),
        b'0' if bytes.get(start + 1) == Some(&b'x') => {
            Ok((parse_grouped(&text[start + 2..end], start + 2, 16, 4)?, end))
        }
        b'0'..=b'9' => Ok((parse_grouped(&text[start..end], start, 10, 3)?, end)),
        _ => {
            let c = text[start..].chars().next().unwrap_or('?');
            err(
                start,
                format!("unexpected character {c:?}; expected a noun"),
            )
        }
    }
}

/// Digits in `radix`, optionally grouped by dots into groups of `group`
/// (the first group may be shorter).
fn parse_grouped(s: &str, offset: usize, radix: u32, group: usize) -> Result<Atom, ParseError> {
    let name = if radix == 16 { "hex" } else { "decimal" };
    if s.is_empty() {
        return err(offset, format!("expected {name} digits"));
    }
    let groups: Vec<&str> = s.split('.').collect();
    let mut pos = offset;
    for (k, g) in groups.iter().enumerate() {
        if let Some(bad) = g.char_indices().find(|(_, c)| !c.is_digit(radix)) {
            return err(
                pos + bad.0,
                format!("unexpected character {:?} in a {name} atom", bad.1),
            );
        }
        let ok = if groups.len() == 1 {
            true
        } else if k == 0 {
            (1..=group).contains(&g.len())
        } else {
            g.len() == group
        };
        if !ok {
            return err(
                pos,
                format!("dots in a {name} atom must separate groups of {group} digits"),
            );
        }
        pos += g.len() + 1;
    }
    let digits: String = groups.concat();
    if radix == 10 && digits.len() > MAX_DECIMAL_DIGITS {
        return err(
            offset,
            format!(
                "a decimal atom of {} digits is longer than the {MAX_DECIMAL_DIGITS} digits \
                 text can hold (write it in hex)",
                digits.len()
            ),
        );
    }
    if digits.len() <= 15 {
        return Ok(Atom::new(
            u64::from_str_radix(&digits, radix).expect("validated digits"),
        ));
    }
    let value = if radix == 10 {
        decimal(digits.as_bytes())
    } else {
        BigUint::parse_bytes(digits.as_bytes(), radix).expect("validated digits")
    };
    Ok(Atom::from_biguint(value))
}

/// Validated decimal digits longer than this are converted by halves.
const DECIMAL_LEAF: usize = 1024;

/// Longest decimal atom text parses (about 14 Gbit): the conversion's
/// powers of ten take a 32-bit exponent.
const MAX_DECIMAL_DIGITS: usize = u32::MAX as usize;

/// The number written by `digits` (validated decimal), in time
/// O(M(n) log n) for multiplication time M: the two halves are converted
/// separately and joined by one multiplication with a power of ten, which
/// num-bigint does subquadratically (its own decimal conversion multiplies
/// by a small base per chunk: quadratic; 2,000,000 digits took 3.6 s).
/// Recursion depth is the logarithm of the length.
fn decimal(digits: &[u8]) -> BigUint {
    if digits.len() <= DECIMAL_LEAF {
        return BigUint::parse_bytes(digits, 10).expect("validated digits");
    }
    let low = digits.len() / 2;
    let (hi, lo) = digits.split_at(digits.len() - low);
    // `parse_grouped` refuses more than `MAX_DECIMAL_DIGITS` digits.
    let shift = BigUint::from(10u32).pow(u32::try_from(low).expect("at most u32::MAX digits"));
    decimal(hi) * shift + decimal(lo)
}

fn parse_term(s: &str, offset: usize) -> Result<Atom, ParseError> {
    match s {
        "%$" => return Ok(Atom::ZERO),
        "%.y" | "%&" => return Ok(Atom::ZERO),
        "%.n" | "%|" => return Ok(Atom::ONE),
        _ => {}
    }
    let name = &s[1..];
    let valid = name.bytes().next().is_some_and(|b| b.is_ascii_lowercase())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if !valid {
        return err(
            offset,
            format!(
                "invalid term {s:?}: expected % then a lowercase letter, then letters, digits or '-'"
            ),
        );
    }
    Ok(Atom::from_bytes_le(name.as_bytes()))
}

fn parse_cord(bytes: &[u8], start: usize) -> Result<(Atom, usize), ParseError> {
    let mut out = Vec::new();
    let mut i = start + 1;
    loop {
        match bytes.get(i) {
            None => return err(start, "unterminated cord"),
            Some(b'\'') => return Ok((Atom::from_bytes_le(&out), i + 1)),
            Some(b'\\') => {
                match bytes.get(i + 1) {
                    Some(b'\\') => {
                        out.push(b'\\');
                        i += 2;
                    }
                    Some(b'\'') => {
                        out.push(b'\'');
                        i += 2;
                    }
                    _ => {
                        let hex = bytes
                            .get(i + 1..i + 3)
                            .filter(|h| h.iter().all(u8::is_ascii_hexdigit))
                            .and_then(|h| std::str::from_utf8(h).ok())
                            .and_then(|h| u8::from_str_radix(h, 16).ok());
                        match hex {
                            Some(b) => {
                                out.push(b);
                                i += 3;
                            }
                            None => return err(
                                i,
                                "bad escape in cord: expected \\\\, \\' or \\ and two hex digits",
                            ),
                        }
                    }
                }
            }
            Some(&b) => {
                out.push(b);
                i += 1;
            }
        }
    }
}

/// The canonical text of `noun`, or `None` if it would be longer than
/// `limit` bytes. Nouns that share subtrees can be exponentially larger as
/// text than in memory (`cue` of 200 bytes can describe 2^100 leaves); this
/// stops as soon as the limit is passed.
///
/// ```
/// use spectree_noun::{to_text_within, Noun};
/// let doubled = (0..100).fold(Noun::ONE, |n, _| Noun::cell(n.clone(), n));
/// assert_eq!(to_text_within(&doubled, 1 << 20), None);
/// assert_eq!(to_text_within(&Noun::atom(42), 10).as_deref(), Some("42"));
/// ```
pub fn to_text_within(noun: &Noun, limit: usize) -> Option<String> {
    struct Bounded {
        text: String,
        limit: usize,
    }
    impl fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            if self.text.len() + s.len() > self.limit {
                return Err(fmt::Error);
            }
            self.text.push_str(s);
            Ok(())
        }
    }
    let mut out = Bounded {
        text: String::new(),
        limit,
    };
    fmt::write(&mut out, format_args!("{noun}")).ok()?;
    Some(out.text)
}

impl fmt::Display for Noun {
    /// Canonical text: cells flattened to the right, atoms in plain decimal
    /// (in `0x` hex past [`DECIMAL_PRINT_BITS`](crate::DECIMAL_PRINT_BITS)).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        enum Task<'a> {
            Noun(&'a Noun),
            /// Continue the right spine of an open cell with this tail.
            Rest(&'a Noun),
        }
        let mut stack = vec![Task::Noun(self)];
        while let Some(task) = stack.pop() {
            match task {
                Task::Noun(Noun::Atom(a)) => write!(f, "{a}")?,
                Task::Noun(Noun::Cell(c)) => {
                    f.write_str("[")?;
                    stack.push(Task::Rest(c.tail()));
                    stack.push(Task::Noun(c.head()));
                }
                Task::Rest(Noun::Cell(c)) => {
                    f.write_str(" ")?;
                    stack.push(Task::Rest(c.tail()));
                    stack.push(Task::Noun(c.head()));
                }
                Task::Rest(Noun::Atom(a)) => write!(f, " {a}]")?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::noun::tests::{deep_left, deep_list};
    use crate::DECIMAL_PRINT_BITS;

    fn p(s: &str) -> Noun {
        parse(s).unwrap()
    }

    /// Long decimals, converted by halves, agree with num-bigint's own
    /// conversion (leading zeros, odd lengths, lengths around the leaf).
    #[test]
    fn long_decimals_agree_with_num_bigint() {
        let mut x = 0x2545_f491_4f6c_dd1du64;
        for len in [1023usize, 1024, 1025, 2049, 4096, 10_007] {
            let digits: String = (0..len)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    if i < 3 {
                        '0'
                    } else {
                        char::from(b'0' + (x % 10) as u8)
                    }
                })
                .collect();
            let expected = BigUint::parse_bytes(digits.as_bytes(), 10).unwrap();
            assert_eq!(decimal(digits.as_bytes()), expected, "{len} digits");
            assert_eq!(p(&digits), Noun::Atom(Atom::from_biguint(expected)));
        }
    }

    /// Atoms past the decimal printing bound print in hex and read back.
    #[test]
    fn huge_atoms_print_in_hex_and_round_trip() {
        let at_bound = Atom::from_biguint((BigUint::from(1u32) << (DECIMAL_PRINT_BITS - 1)) + 7u32);
        let text = at_bound.to_string();
        assert!(text.starts_with(|c: char| c.is_ascii_digit()) && !text.starts_with("0x"));
        assert_eq!(p(&text), Noun::Atom(at_bound));
        let past = Atom::from_biguint((BigUint::from(1u32) << DECIMAL_PRINT_BITS) + 7u32);
        let text = past.to_string();
        assert!(text.starts_with("0x1000"), "{}", &text[..10]);
        assert_eq!(p(&text), Noun::Atom(past));
    }

    #[test]
    fn atoms() {
        assert_eq!(p("0"), Noun::atom(0));
        assert_eq!(p("1.000.000"), Noun::atom(1_000_000));
        assert_eq!(p("0xdead.beef"), Noun::atom(0xdead_beef));
        assert_eq!(p("0xff"), Noun::atom(255));
        assert_eq!(p("%foo"), Noun::atom(0x6f6f66));
        assert_eq!(p("%$"), Noun::ZERO);
        assert_eq!(p("%.n"), Noun::ONE);
        assert_eq!(p("'it\\'s'"), Noun::Atom(Atom::from_bytes_le(b"it's")));
        assert_eq!(p("'\\0a'"), Noun::atom(10));
        assert_eq!(p("''"), Noun::ZERO);
        assert_eq!(
            p("18446744073709551616").to_string(),
            "18446744073709551616"
        );
        assert_eq!(
            p("0x1.0000.0000.0000.0000").to_string(),
            "18446744073709551616"
        );
    }

    #[test]
    fn cells_and_canonical_printing() {
        assert_eq!(p("[1 2 3]"), p("[1 [2 3]]"));
        assert_eq!(p("[1 [2 3]]").to_string(), "[1 2 3]");
        assert_eq!(p(" [[1 2] 3] ").to_string(), "[[1 2] 3]");
        assert_eq!(p("[[1 2][3 4]]").to_string(), "[[1 2] 3 4]");
        assert_eq!(p("[%a 'b' 0x3]").to_string(), "[97 98 3]");
    }

    #[test]
    fn errors_name_the_position() {
        let cases = [
            ("[1 2", 4),
            ("[1]", 0),
            ("]", 0),
            ("1 2", 2),
            ("[1 x]", 3),
            ("1.00", 2),
            ("1.0000", 2),
            ("0x", 2),
            ("%Foo", 0),
            ("'abc", 0),
            ("", 0),
            ("12a", 2),
            ("[1 2]3", 5),
            ("'\\+f'", 1),
        ];
        for (text, offset) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.offset, offset, "{text:?}: {e}");
        }
    }

    #[test]
    fn million_deep_round_trip() {
        for n in [deep_list(1_000_000), deep_left(1_000_000)] {
            let text = n.to_string();
            assert_eq!(parse(&text).unwrap(), n);
        }
    }
}
