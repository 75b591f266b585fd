//! Urbit's 31-bit `mug` hash, bit-for-bit.
//!
//! A mug is MurmurHash3 (x86, 32-bit) of a byte string, folded to 31 bits as
//! `(h >> 31) ^ (h & 0x7fff_ffff)`. A zero result retries with the next seed,
//! up to eight seeds, then falls back to a fixed constant; so a mug is never 0.
//! - An atom hashes its minimal little-endian bytes (none for 0) with seed
//!   `0xcafebabe`, fallback `0x7fff`.
//! - A cell hashes the mug of its head as 4 little-endian bytes followed by
//!   the minimal little-endian bytes of the mug of its tail, with seed
//!   `0xdeadbeef`, fallback `0xfffe`.
//!
//! Use [`Noun::mug`](crate::Noun::mug), which caches cell mugs.

/// MurmurHash3 x86_32 of `data` with `seed`.
pub fn murmur3_32(data: &[u8], seed: u32) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
        h = h.rotate_left(13).wrapping_mul(5).wrapping_add(0xe654_6b64);
    }
    let rest = blocks.remainder();
    if !rest.is_empty() {
        let mut k = 0u32;
        for (i, b) in rest.iter().enumerate() {
            k |= u32::from(*b) << (8 * i);
        }
        k = k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
        h ^= k;
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}

fn mum(data: &[u8], seed: u32, fallback: u32) -> u32 {
    for i in 0..8 {
        let h = murmur3_32(data, seed.wrapping_add(i));
        let folded = (h >> 31) ^ (h & 0x7fff_ffff);
        if folded != 0 {
            return folded;
        }
    }
    fallback
}

/// Mug of an atom given its minimal little-endian bytes.
pub(crate) fn mug_atom_bytes(bytes: &[u8]) -> u32 {
    mum(bytes, 0xcafe_babe, 0x7fff)
}

/// Mug of a cell from the mugs of its head and tail.
pub(crate) fn mug_both(head: u32, tail: u32) -> u32 {
    let mut buf = [0u8; 8];
    buf[..4].copy_from_slice(&head.to_le_bytes());
    buf[4..].copy_from_slice(&tail.to_le_bytes());
    let len = 4 + (32 - tail.leading_zeros()).div_ceil(8) as usize;
    mum(&buf[..len], 0xdead_beef, 0xfffe)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Atom, Noun};

    fn cord(s: &str) -> Noun {
        Noun::Atom(Atom::from_bytes_le(s.as_bytes()))
    }

    // Published values: urbit/vere pkg/noun/retrieve_tests.c and hoon's
    // tests/sys/hoon/set.hoon (see docs/decisions.md).
    #[test]
    fn published_atom_mugs() {
        assert_eq!(Noun::atom(0).mug(), 0x79ff_04e8);
        assert_eq!(Noun::atom(1).mug(), 0x715c_2a60);
        assert_eq!(Noun::atom(2).mug(), 0x718b_9468);
        assert_eq!(Noun::atom(3).mug(), 1_923_673_882);
        assert_eq!(
            Noun::atom(u64::from(Noun::atom(1).mug())).mug(),
            1_405_103_437
        );
        assert_eq!(cord("Hello, world!").mug(), 0x4d44_1035);
        assert_eq!(cord(&"x".repeat(28)).mug(), 0x64df_da5c);
        let words = |w: [u32; 4]| {
            let bytes: Vec<u8> = w.iter().flat_map(|x| x.to_le_bytes()).collect();
            Noun::Atom(Atom::from_bytes_le(&bytes))
        };
        assert_eq!(words([0, 0, 0, 1]).mug(), 0x519b_d45c);
        assert_eq!(words([0, 1, 0, 1]).mug(), 0x540e_b8a9);
        assert_eq!(words([1, 1, 0, 1]).mug(), 0x319d_28f9);
        assert_eq!(words([0, 0, 0, 0xffff]).mug(), 0x5230_a260);
    }

    #[test]
    fn published_cell_mugs() {
        let n = |s: &str| s.parse::<Noun>().unwrap();
        assert_eq!(n("[0 0]").mug(), 0x192f_5588);
        assert_eq!(n("[1 1]").mug(), 0x6b32_ec46);
        assert_eq!(n("[2 2]").mug(), 0x02ef_fe10);
        assert_eq!(n("[2 3]").mug(), 0x0bae_48a7);
        assert_eq!(n("[1 2 3]").mug(), 0x3a81_1aec);
        assert_eq!(n("[0 0x1.0000.0000]").mug(), 0x07ce_fb7f);
        assert_eq!(
            n("[0xffff.ffff.ffff.ffff.ffff.ffff.ffff.ffff 1]").mug(),
            0x2aa0_6bfc
        );
    }

    #[test]
    fn published_murmur3() {
        assert_eq!(murmur3_32(b"Hello, world!", 1234), 0xfaf6_cdb3);
        assert_eq!(murmur3_32(b"Hello, world!", 4321), 0xbf50_5788);
        assert_eq!(murmur3_32(b"", 1234), 0x0f2c_c00b);
        assert_eq!(murmur3_32(&[0xff; 16], 0xcafe_babe), 0x566f_7173);
    }

    #[test]
    fn mug_is_never_zero_and_fits_31_bits() {
        for i in 0..10_000u64 {
            let m = Noun::atom(i).mug();
            assert!(m != 0 && m < (1 << 31));
        }
    }
}
