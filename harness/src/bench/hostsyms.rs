//! Names for code addresses inside the harness binary itself (the calling
//! sites of allocations the harness makes on its own behalf), from the ELF
//! symbol table of `/proc/self/exe` and the load bias of the running
//! program. Only used to label the bench's "not module costs" lines.

use std::ffi::c_int;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

/// Function symbols of this executable: (start, size, name), sorted.
pub struct HostSyms {
    funcs: Vec<(u64, u64, String)>,
    bias: u64,
}

fn rd<const N: usize>(b: &[u8], off: usize) -> Option<[u8; N]> {
    b.get(off..off + N)?.try_into().ok()
}
fn u16_at(b: &[u8], off: usize) -> Option<u16> {
    rd::<2>(b, off).map(u16::from_le_bytes)
}
fn u32_at(b: &[u8], off: usize) -> Option<u32> {
    rd::<4>(b, off).map(u32::from_le_bytes)
}
fn u64_at(b: &[u8], off: usize) -> Option<u64> {
    rd::<8>(b, off).map(u64::from_le_bytes)
}

fn read_at(f: &mut File, off: u64, len: u64) -> Option<Vec<u8>> {
    let mut v = vec![0u8; usize::try_from(len).ok()?];
    f.seek(SeekFrom::Start(off)).ok()?;
    f.read_exact(&mut v).ok()?;
    Some(v)
}

unsafe extern "C" fn first_bias(
    info: *mut libc::dl_phdr_info,
    _size: usize,
    data: *mut libc::c_void,
) -> c_int {
    // SAFETY: dl_iterate_phdr passes a valid info block; `data` is the u64
    // the caller handed in.
    unsafe { *data.cast::<u64>() = (*info).dlpi_addr };
    1
}

/// The load bias of the main program (0 for a non-PIE executable).
fn load_bias() -> u64 {
    let mut bias: u64 = 0;
    // SAFETY: the callback writes one u64 through the pointer we pass and
    // stops the iteration at the first object (the main program).
    unsafe { libc::dl_iterate_phdr(Some(first_bias), (&raw mut bias).cast()) };
    bias
}

impl HostSyms {
    /// Reads the symbol table of the running executable (None if it has
    /// none, e.g. a stripped binary).
    pub fn load() -> Option<HostSyms> {
        let mut f = File::open("/proc/self/exe").ok()?;
        let eh = read_at(&mut f, 0, 64)?;
        if eh.get(..4)? != b"\x7fELF" || eh[4] != 2 {
            return None;
        }
        let shoff = u64_at(&eh, 0x28)?;
        let shentsize = u64::from(u16_at(&eh, 0x3a)?);
        let shnum = u64::from(u16_at(&eh, 0x3c)?);
        let sh = read_at(&mut f, shoff, shentsize * shnum)?;
        let sect = |i: u64| -> Option<(u32, u64, u64, u32)> {
            let o = usize::try_from(i * shentsize).ok()?;
            Some((
                u32_at(&sh, o + 4)?,
                u64_at(&sh, o + 24)?,
                u64_at(&sh, o + 32)?,
                u32_at(&sh, o + 40)?,
            ))
        };
        let (_, symoff, symsize, link) = (0..shnum)
            .filter_map(sect)
            .find(|s| s.0 == 2 /* SHT_SYMTAB */)?;
        let (_, stroff, strsize, _) = sect(u64::from(link))?;
        let syms = read_at(&mut f, symoff, symsize)?;
        let strs = read_at(&mut f, stroff, strsize)?;
        let mut funcs = Vec::new();
        for e in syms.chunks_exact(24) {
            let info = e[4];
            let value = u64_at(e, 8)?;
            let size = u64_at(e, 16)?;
            if info & 0xf != 2 /* STT_FUNC */ || value == 0 {
                continue;
            }
            let name_off = usize::try_from(u32_at(e, 0)?).ok()?;
            let Some(tail) = strs.get(name_off..) else {
                continue;
            };
            let end = tail.iter().position(|&c| c == 0).unwrap_or(tail.len());
            funcs.push((
                value,
                size,
                String::from_utf8_lossy(&tail[..end]).into_owned(),
            ));
        }
        funcs.sort_by_key(|f| f.0);
        Some(HostSyms {
            funcs,
            bias: load_bias(),
        })
    }

    /// The demangled name of the function containing `addr`.
    pub fn name(&self, addr: usize) -> Option<String> {
        let a = (addr as u64).checked_sub(self.bias)?;
        let i = self.funcs.partition_point(|f| f.0 <= a).checked_sub(1)?;
        let (start, size, name) = &self.funcs[i];
        if a >= start + size.max(&1) {
            return None;
        }
        let d = format!("{:#}", rustc_demangle::demangle(name));
        Some(d.replace("ngharness::", ""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[inline(never)]
    fn marker_function_for_hostsyms() -> usize {
        marker_function_for_hostsyms as *const () as usize
    }

    #[test]
    fn names_a_function_of_this_binary() {
        let Some(s) = HostSyms::load() else {
            eprintln!("SKIP: no symbol table in this test binary");
            return;
        };
        let a = marker_function_for_hostsyms();
        let n = s.name(a + 1).expect("symbol found");
        assert!(n.contains("marker_function_for_hostsyms"), "{n}");
        assert_eq!(s.name(0), None);
    }
}
