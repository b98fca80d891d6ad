//! Avro binary encoding primitives, written by hand so that decoding is total.
//!
//! The envelope (and, in `orbitalis-schemas`, every protocol message) is encoded with these.
//! [`Reader`] checks every length and count against the bytes that remain **before** it
//! allocates, bounds nesting, and never panics: a hostile peer can make it fail, never crash
//! or balloon.

use crate::error::DecodeError;

/// Nesting bound for readers of nested structures (PROTOCOL.md §2.3).
pub const MAX_DEPTH: u32 = 64;

/// Appends Avro binary encodings to a byte vector.
#[derive(Debug, Default)]
pub struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    /// A writer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        Writer { buf: Vec::with_capacity(capacity) }
    }

    /// Takes the encoded bytes.
    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    /// Bytes written so far.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    /// Raw bytes, no length prefix (magic numbers, `fixed` values).
    pub fn raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// A `long` (zig-zag varint).
    pub fn long(&mut self, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        while z >= 0x80 {
            self.buf.push((z as u8) | 0x80);
            z >>= 7;
        }
        self.buf.push(z as u8);
    }

    /// An `int`.
    pub fn int(&mut self, v: i32) {
        self.long(i64::from(v));
    }

    /// A `boolean`.
    pub fn boolean(&mut self, v: bool) {
        self.buf.push(u8::from(v));
    }

    /// A `double`.
    pub fn double(&mut self, v: f64) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// A `float`.
    pub fn float(&mut self, v: f32) {
        self.buf.extend_from_slice(&v.to_le_bytes());
    }

    /// `bytes`: length then content.
    pub fn bytes(&mut self, v: &[u8]) {
        self.long(v.len() as i64);
        self.buf.extend_from_slice(v);
    }

    /// A `string`.
    pub fn string(&mut self, v: &str) {
        self.bytes(v.as_bytes());
    }

    /// An enum symbol or union branch index.
    pub fn index(&mut self, i: usize) {
        self.long(i as i64);
    }

    /// An array in one block (count, items, 0); empty arrays are the single byte 0.
    pub fn array<T>(&mut self, items: &[T], mut item: impl FnMut(&mut Self, &T)) {
        if !items.is_empty() {
            self.long(items.len() as i64);
            for it in items {
                item(self, it);
            }
        }
        self.long(0);
    }

    /// A `["null", T]` union.
    pub fn optional<T>(&mut self, v: Option<&T>, item: impl FnOnce(&mut Self, &T)) {
        match v {
            None => self.index(0),
            Some(v) => {
                self.index(1);
                item(self, v);
            }
        }
    }
}

/// The encoded size of a `long`.
pub const fn long_len(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

/// The encoded size of `bytes` or a `string` of `len` bytes.
pub const fn bytes_len(len: usize) -> usize {
    long_len(len as i64) + len
}

/// Reads Avro binary encodings from a byte slice, borrowing where it can.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: u32,
}

type R<T> = Result<T, DecodeError>;

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf, pos: 0, depth: 0 }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Fails unless every byte was read.
    pub fn finish(&self) -> R<()> {
        if self.remaining() == 0 { Ok(()) } else { Err(DecodeError::malformed("trailing bytes after the datum")) }
    }

    /// `n` raw bytes.
    pub fn raw(&mut self, n: usize) -> R<&'a [u8]> {
        if n > self.remaining() {
            return Err(DecodeError::malformed("truncated"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    /// A `fixed` of `N` bytes.
    pub fn fixed<const N: usize>(&mut self) -> R<[u8; N]> {
        let s = self.raw(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    /// A `long`; at most 10 bytes, no overflow.
    pub fn long(&mut self) -> R<i64> {
        let mut z: u64 = 0;
        for i in 0..10 {
            let b = *self.buf.get(self.pos).ok_or(DecodeError::malformed("truncated varint"))?;
            self.pos += 1;
            if i == 9 && b > 1 {
                return Err(DecodeError::malformed("varint overflows 64 bits"));
            }
            z |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
            }
        }
        Err(DecodeError::malformed("varint longer than 10 bytes"))
    }

    /// An `int`, range-checked.
    pub fn int(&mut self) -> R<i32> {
        i32::try_from(self.long()?).map_err(|_| DecodeError::malformed("int out of range"))
    }

    /// A `boolean`: exactly 0 or 1.
    pub fn boolean(&mut self) -> R<bool> {
        match self.raw(1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(DecodeError::malformed("boolean byte is neither 0 nor 1")),
        }
    }

    /// A `double`.
    pub fn double(&mut self) -> R<f64> {
        Ok(f64::from_le_bytes(self.fixed::<8>()?))
    }

    /// A `float`.
    pub fn float(&mut self) -> R<f32> {
        Ok(f32::from_le_bytes(self.fixed::<4>()?))
    }

    /// A length prefix, checked against the bytes that remain.
    fn len(&mut self) -> R<usize> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::malformed("negative length"))?;
        if n > self.remaining() {
            return Err(DecodeError::malformed("length exceeds the remaining bytes"));
        }
        Ok(n)
    }

    /// `bytes`, borrowed.
    pub fn bytes(&mut self) -> R<&'a [u8]> {
        let n = self.len()?;
        self.raw(n)
    }

    /// A `string`, borrowed, UTF-8 checked.
    pub fn string(&mut self) -> R<&'a str> {
        std::str::from_utf8(self.bytes()?).map_err(|_| DecodeError::malformed("string is not UTF-8"))
    }

    /// An enum symbol or union branch index below `count`.
    pub fn index(&mut self, count: usize) -> R<usize> {
        let i = self.long()?;
        usize::try_from(i).ok().filter(|&i| i < count).ok_or(DecodeError::malformed("union or enum index out of range"))
    }

    /// A `["null", T]` union.
    pub fn optional<T>(&mut self, item: impl FnOnce(&mut Self) -> R<T>) -> R<Option<T>> {
        match self.index(2)? {
            0 => Ok(None),
            _ => item(self).map(Some),
        }
    }

    /// An array (or, with `item` reading key and value, a map) of at most `max` items.
    ///
    /// Every item of our schemas takes at least one byte, so a block count above the
    /// remaining bytes is refused before anything is allocated.
    pub fn array<T>(&mut self, max: usize, mut item: impl FnMut(&mut Self) -> R<T>) -> R<Vec<T>> {
        self.nested(|r| {
            let mut out = Vec::new();
            loop {
                let mut count = r.long()?;
                if count == 0 {
                    return Ok(out);
                }
                if count < 0 {
                    count = count.checked_neg().ok_or(DecodeError::malformed("block count out of range"))?;
                    r.long()?; // block size in bytes: unused
                }
                let count = count as u64;
                if count > r.remaining() as u64 || out.len() as u64 + count > max as u64 {
                    return Err(DecodeError::malformed("too many items"));
                }
                out.reserve(count as usize);
                for _ in 0..count {
                    out.push(item(r)?);
                }
            }
        })
    }

    /// Runs `f` one nesting level deeper, refusing beyond [`MAX_DEPTH`].
    pub fn nested<T>(&mut self, f: impl FnOnce(&mut Self) -> R<T>) -> R<T> {
        if self.depth >= MAX_DEPTH {
            return Err(DecodeError::malformed("nested deeper than 64"));
        }
        self.depth += 1;
        let out = f(self);
        self.depth -= 1;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_round_trips_at_the_edges() {
        for v in [0, 1, -1, 63, -64, 64, i64::from(i32::MAX), i64::MIN, i64::MAX] {
            let mut w = Writer::default();
            w.long(v);
            assert_eq!(w.len(), long_len(v));
            let bytes = w.into_vec();
            let mut r = Reader::new(&bytes);
            assert_eq!(r.long().unwrap(), v);
            r.finish().unwrap();
        }
    }

    #[test]
    fn overlong_and_truncated_varints_fail() {
        assert!(Reader::new(&[0x80; 11]).long().is_err());
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]).long().is_err());
        assert!(Reader::new(&[0x80]).long().is_err());
    }

    #[test]
    fn lengths_beyond_the_buffer_fail_before_allocating() {
        let mut w = Writer::default();
        w.long(i64::MAX / 2);
        let bytes = w.into_vec();
        assert!(Reader::new(&bytes).bytes().is_err());
        assert!(Reader::new(&bytes).array(usize::MAX, |r| r.long()).is_err());
    }

    #[test]
    fn nesting_is_bounded() {
        fn deep(r: &mut Reader<'_>, n: u32) -> R<()> {
            if n == 0 { Ok(()) } else { r.nested(|r| deep(r, n - 1)) }
        }
        assert!(deep(&mut Reader::new(&[]), MAX_DEPTH).is_ok());
        assert!(deep(&mut Reader::new(&[]), MAX_DEPTH + 1).is_err());
    }
}
