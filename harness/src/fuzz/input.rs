//! Reading a fuzz input as a sequence of choices.
//!
//! A target reads its input front to back: small integers choose among
//! tables of meaningful values (commands, families, options), lengths bound
//! byte strings. Every read succeeds: past the end it yields zeros and empty
//! strings, so any byte string is a valid input and a mutation anywhere
//! changes the choices from there on. The reads are deterministic, so a
//! saved input replays the same calls.

/// A fuzz input being read.
pub struct Input<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Input<'a> {
    pub fn new(data: &'a [u8]) -> Input<'a> {
        Input { data, pos: 0 }
    }

    /// True when every byte has been read.
    pub fn is_empty(&self) -> bool {
        self.pos >= self.data.len()
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.data.len().saturating_sub(self.pos)
    }

    /// The next byte (0 past the end).
    pub fn u8(&mut self) -> u8 {
        let b = self.data.get(self.pos).copied().unwrap_or(0);
        self.pos += 1;
        b
    }

    pub fn bool(&mut self) -> bool {
        self.u8() & 1 != 0
    }

    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }

    /// A number below `n` (`n` > 0), from one byte (two when `n` > 256).
    pub fn below(&mut self, n: usize) -> usize {
        if n <= 1 {
            let _ = self.u8();
            return 0;
        }
        if n <= 256 {
            usize::from(self.u8()) % n
        } else {
            usize::from(self.u16()) % n
        }
    }

    /// One of `table`.
    pub fn pick<T: Copy>(&mut self, table: &[T]) -> T {
        table[self.below(table.len())]
    }

    /// Up to `n` bytes (fewer at the end of the input).
    pub fn bytes(&mut self, n: usize) -> &'a [u8] {
        let start = self.pos.min(self.data.len());
        let end = start.saturating_add(n).min(self.data.len());
        self.pos = end;
        &self.data[start..end]
    }

    /// A byte string of a length read first (one byte, at most `max`).
    pub fn short_bytes(&mut self, max: usize) -> &'a [u8] {
        let n = self.below(max.min(255) + 1);
        self.bytes(n)
    }

    /// A length: mostly small, sometimes large, up to `max`.
    pub fn len(&mut self, max: usize) -> usize {
        match self.u8() {
            0..=191 => usize::from(self.u8()).min(max),
            192..=239 => usize::from(self.u16()).min(max),
            240..=247 => max,
            _ => max.saturating_add(1).min(usize::from(self.u16()) * 16),
        }
    }

    /// A byte string of a length chosen by [`Input::len`]; past the end of
    /// the input it is filled with a repeating pattern.
    pub fn payload(&mut self, max: usize) -> Vec<u8> {
        let n = self.len(max);
        let mut v = self.bytes(n).to_vec();
        let fill = v.len();
        v.extend((fill..n).map(|i| (i % 251) as u8));
        v
    }

    /// A C string of at most `max` characters, printable or not.
    pub fn name(&mut self, max: usize) -> String {
        let raw = self.short_bytes(max);
        raw.iter()
            .map(|&b| if b == 0 { '0' } else { char::from(b) })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_past_the_end_are_zero() {
        let mut i = Input::new(&[1, 2]);
        assert_eq!(i.u8(), 1);
        assert_eq!(i.u16(), 2);
        assert!(i.is_empty());
        assert_eq!(i.u32(), 0);
        assert_eq!(i.bytes(5), &[] as &[u8]);
        assert_eq!(i.payload(4).len(), 0);
    }

    #[test]
    fn choices_stay_in_range() {
        let data: Vec<u8> = (0..=255).collect();
        let mut i = Input::new(&data);
        for n in [1usize, 2, 3, 255, 256, 257, 1000] {
            assert!(i.below(n) < n);
        }
        assert_eq!(i.pick(&[7, 8, 9]) / 7, 1);
        let mut j = Input::new(&[3, b'a', b'b', b'c', b'd']);
        assert_eq!(j.short_bytes(10), b"abc");
    }
}
