//! kelf: a bounds-checked reader of ELF64 little-endian relocatable objects,
//! as FreeBSD amd64 kernel modules (`.ko`) are.
//!
//! One reader serves both tools that look inside a `.ko`: the harness's
//! kernel linker (which decides, as `kldload` would, what to refuse) and the
//! kogate static gate (which reports every rule a file breaks). Each applies
//! its own policy on top; this crate only decodes. Every read is checked:
//! a truncated or corrupt file gives `None` or an error, never a panic.
//!
//! [`kernel_cflags`] gives the other half of what makes a `.ko`: the C flags
//! of a kernel module (`kmod/kernel-cflags`, also read by the modules'
//! build script), for tools and tests that compile kernel objects.

#![forbid(unsafe_code)]

/// The text of `kmod/kernel-cflags`: one flag per line, `#` comments,
/// `[group]` headers.
pub const KERNEL_CFLAGS: &str = include_str!("../../../kmod/kernel-cflags");

/// The kernel C flags of the named groups of `kmod/kernel-cflags`
/// (`target`, `kernel`, `options`, `codegen`, `warnings`), in file order.
pub fn kernel_cflags(groups: &[&str]) -> Vec<&'static str> {
    let mut group = "";
    let mut flags = Vec::new();
    for line in KERNEL_CFLAGS.lines() {
        let line = line.split('#').next().unwrap_or("").trim();
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            group = name;
        } else if !line.is_empty() && groups.contains(&group) {
            flags.push(line);
        }
    }
    flags
}

pub const ELFCLASS64: u8 = 2;
pub const ELFDATA2LSB: u8 = 1;
pub const EV_CURRENT: u32 = 1;
pub const ET_REL: u16 = 1;
pub const EM_X86_64: u16 = 62;
pub const ELFOSABI_FREEBSD: u8 = 9;

pub const SHT_NULL: u32 = 0;
pub const SHT_PROGBITS: u32 = 1;
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_STRTAB: u32 = 3;
pub const SHT_RELA: u32 = 4;
pub const SHT_NOBITS: u32 = 8;
pub const SHT_REL: u32 = 9;
pub const SHT_INIT_ARRAY: u32 = 14;
pub const SHT_FINI_ARRAY: u32 = 15;
pub const SHT_PREINIT_ARRAY: u32 = 16;
pub const SHT_SYMTAB_SHNDX: u32 = 18;
pub const SHT_X86_64_UNWIND: u32 = 0x7000_0001;

pub const SHF_WRITE: u64 = 0x1;
pub const SHF_ALLOC: u64 = 0x2;
pub const SHF_EXECINSTR: u64 = 0x4;
pub const SHF_TLS: u64 = 0x400;

pub const SHN_UNDEF: u16 = 0;
pub const SHN_LORESERVE: u16 = 0xff00;
pub const SHN_ABS: u16 = 0xfff1;
pub const SHN_COMMON: u16 = 0xfff2;
pub const SHN_XINDEX: u16 = 0xffff;

pub const STB_LOCAL: u8 = 0;
pub const STB_GLOBAL: u8 = 1;
pub const STB_WEAK: u8 = 2;

pub const STT_NOTYPE: u8 = 0;
pub const STT_OBJECT: u8 = 1;
pub const STT_FUNC: u8 = 2;
pub const STT_SECTION: u8 = 3;
pub const STT_FILE: u8 = 4;
pub const STT_COMMON: u8 = 5;
pub const STT_TLS: u8 = 6;

pub const R_X86_64_NONE: u32 = 0;
pub const R_X86_64_64: u32 = 1;
pub const R_X86_64_PC32: u32 = 2;
pub const R_X86_64_PLT32: u32 = 4;
pub const R_X86_64_32S: u32 = 11;

/// Size of the ELF64 file header.
pub const EHDR_SIZE: usize = 64;
/// Size of one ELF64 section header.
pub const SHDR_SIZE: usize = 64;
/// Size of one ELF64 symbol.
pub const SYM_SIZE: usize = 24;
/// Size of one ELF64 RELA entry.
pub const RELA_SIZE: usize = 24;

fn bytes<const N: usize>(d: &[u8], off: usize) -> Option<[u8; N]> {
    d.get(off..off.checked_add(N)?)?.try_into().ok()
}

/// Little-endian `u16` at `off`, if the file has it.
pub fn rd_u16(d: &[u8], off: usize) -> Option<u16> {
    bytes(d, off).map(u16::from_le_bytes)
}

/// Little-endian `u32` at `off`, if the file has it.
pub fn rd_u32(d: &[u8], off: usize) -> Option<u32> {
    bytes(d, off).map(u32::from_le_bytes)
}

/// Little-endian `u64` at `off`, if the file has it.
pub fn rd_u64(d: &[u8], off: usize) -> Option<u64> {
    bytes(d, off).map(u64::from_le_bytes)
}

/// The NUL-terminated string at `off` inside `d` (without the NUL).
pub fn rd_cstr(d: &[u8], off: usize) -> Option<&[u8]> {
    let tail = d.get(off..)?;
    let end = tail.iter().position(|&b| b == 0)?;
    tail.get(..end)
}

/// The ELF file header, as far as it could be decoded.
#[derive(Debug, Clone)]
pub struct Header {
    pub class: u8,
    pub data: u8,
    pub ei_version: u8,
    pub osabi: u8,
    pub e_type: u16,
    pub e_machine: u16,
    pub e_version: u32,
    pub e_shoff: u64,
    pub e_shentsize: u16,
    pub e_shnum: u16,
    pub e_shstrndx: u16,
}

impl Header {
    /// Reads the identification bytes and, if the file is ELF64 LE, the rest
    /// (the other fields stay 0 otherwise). Err for files too short or
    /// without the ELF magic, and for a truncated ELF64 LE header.
    pub fn parse(d: &[u8]) -> Result<Header, String> {
        let ident: [u8; 16] = match bytes(d, 0) {
            Some(i) if i[..4] == *b"\x7fELF" => i,
            _ => return Err("not an ELF file (bad magic or shorter than 16 bytes)".into()),
        };
        let mut h = Header {
            class: ident[4],
            data: ident[5],
            ei_version: ident[6],
            osabi: ident[7],
            e_type: 0,
            e_machine: 0,
            e_version: 0,
            e_shoff: 0,
            e_shentsize: 0,
            e_shnum: 0,
            e_shstrndx: 0,
        };
        if h.class == ELFCLASS64 && h.data == ELFDATA2LSB {
            let truncated =
                || format!("truncated ELF header ({} bytes, need {EHDR_SIZE})", d.len());
            let hdr: [u8; EHDR_SIZE] = bytes(d, 0).ok_or_else(truncated)?;
            let u16_at = |o: usize| rd_u16(&hdr, o).unwrap_or(0);
            h.e_type = u16_at(16);
            h.e_machine = u16_at(18);
            h.e_version = rd_u32(&hdr, 20).unwrap_or(0);
            h.e_shoff = rd_u64(&hdr, 40).unwrap_or(0);
            h.e_shentsize = u16_at(58);
            h.e_shnum = u16_at(60);
            h.e_shstrndx = u16_at(62);
        }
        Ok(h)
    }
}

/// One section header, as stored.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shdr {
    pub name: u32,
    pub sh_type: u32,
    pub flags: u64,
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
    pub link: u32,
    pub info: u32,
    pub addralign: u64,
    pub entsize: u64,
}

/// Why the section header table could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TableError {
    /// The offset of header `.0` does not fit in the address space.
    Overflow(usize),
    /// Header `.0` lies (partly) beyond the end of the file.
    Truncated(usize),
}

impl Shdr {
    /// The section header at file offset `off`.
    pub fn read(d: &[u8], off: usize) -> Option<Shdr> {
        let b: [u8; SHDR_SIZE] = bytes(d, off)?;
        let (u32_at, u64_at) = (
            |o: usize| rd_u32(&b, o).unwrap_or(0),
            |o: usize| rd_u64(&b, o).unwrap_or(0),
        );
        Some(Shdr {
            name: u32_at(0),
            sh_type: u32_at(4),
            flags: u64_at(8),
            addr: u64_at(16),
            offset: u64_at(24),
            size: u64_at(32),
            link: u32_at(40),
            info: u32_at(44),
            addralign: u64_at(48),
            entsize: u64_at(56),
        })
    }

    /// The `count` section headers of the table at `shoff`.
    pub fn read_table(d: &[u8], shoff: usize, count: usize) -> Result<Vec<Shdr>, TableError> {
        let mut v = Vec::with_capacity(count.min(d.len() / SHDR_SIZE + 1));
        for i in 0..count {
            let off = i
                .checked_mul(SHDR_SIZE)
                .and_then(|o| o.checked_add(shoff))
                .ok_or(TableError::Overflow(i))?;
            v.push(Shdr::read(d, off).ok_or(TableError::Truncated(i))?);
        }
        Ok(v)
    }

    /// The file range of the section's contents (`None` if it overflows).
    pub fn file_range(&self) -> Option<std::ops::Range<usize>> {
        let start = usize::try_from(self.offset).ok()?;
        let end = start.checked_add(usize::try_from(self.size).ok()?)?;
        Some(start..end)
    }
}

/// One symbol-table entry, as stored.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sym {
    pub name: u32,
    pub info: u8,
    pub other: u8,
    pub shndx: u16,
    pub value: u64,
    pub size: u64,
}

impl Sym {
    /// Decodes one 24-byte entry.
    pub fn read(e: &[u8]) -> Option<Sym> {
        let b: [u8; SYM_SIZE] = bytes(e, 0)?;
        Some(Sym {
            name: rd_u32(&b, 0).unwrap_or(0),
            info: b[4],
            other: b[5],
            shndx: rd_u16(&b, 6).unwrap_or(0),
            value: rd_u64(&b, 8).unwrap_or(0),
            size: rd_u64(&b, 16).unwrap_or(0),
        })
    }

    /// Every whole entry of a symbol-table section's contents.
    pub fn read_all(table: &[u8]) -> Vec<Sym> {
        table.chunks_exact(SYM_SIZE).filter_map(Sym::read).collect()
    }

    /// `ELF64_ST_BIND`.
    pub fn bind(&self) -> u8 {
        self.info >> 4
    }

    /// `ELF64_ST_TYPE`.
    pub fn typ(&self) -> u8 {
        self.info & 0xf
    }
}

/// One RELA entry.
#[derive(Clone, Copy, Debug)]
pub struct Rela {
    pub offset: u64,
    pub sym: u32,
    pub rtype: u32,
    pub addend: i64,
}

impl Rela {
    /// Decodes one 24-byte entry.
    pub fn read(e: &[u8]) -> Option<Rela> {
        let b: [u8; RELA_SIZE] = bytes(e, 0)?;
        let info = rd_u64(&b, 8).unwrap_or(0);
        Some(Rela {
            offset: rd_u64(&b, 0).unwrap_or(0),
            sym: (info >> 32) as u32,
            rtype: (info & 0xffff_ffff) as u32,
            addend: rd_u64(&b, 16).unwrap_or(0) as i64,
        })
    }

    /// Every whole entry of a RELA section's contents.
    pub fn read_all(table: &[u8]) -> Vec<Rela> {
        table
            .chunks_exact(RELA_SIZE)
            .filter_map(Rela::read)
            .collect()
    }
}

/// The name of an x86-64 relocation type (`R_X86_64_PC32`), if it has one.
pub fn reloc_type_name(t: u32) -> Option<&'static str> {
    Some(match t {
        0 => "R_X86_64_NONE",
        1 => "R_X86_64_64",
        2 => "R_X86_64_PC32",
        3 => "R_X86_64_GOT32",
        4 => "R_X86_64_PLT32",
        5 => "R_X86_64_COPY",
        6 => "R_X86_64_GLOB_DAT",
        7 => "R_X86_64_JUMP_SLOT",
        8 => "R_X86_64_RELATIVE",
        9 => "R_X86_64_GOTPCREL",
        10 => "R_X86_64_32",
        11 => "R_X86_64_32S",
        12 => "R_X86_64_16",
        13 => "R_X86_64_PC16",
        14 => "R_X86_64_8",
        15 => "R_X86_64_PC8",
        16 => "R_X86_64_DTPMOD64",
        17 => "R_X86_64_DTPOFF64",
        18 => "R_X86_64_TPOFF64",
        19 => "R_X86_64_TLSGD",
        20 => "R_X86_64_TLSLD",
        21 => "R_X86_64_DTPOFF32",
        22 => "R_X86_64_GOTTPOFF",
        23 => "R_X86_64_TPOFF32",
        24 => "R_X86_64_PC64",
        25 => "R_X86_64_GOTOFF64",
        26 => "R_X86_64_GOTPC32",
        27 => "R_X86_64_GOT64",
        28 => "R_X86_64_GOTPCREL64",
        29 => "R_X86_64_GOTPC64",
        30 => "R_X86_64_GOTPLT64",
        31 => "R_X86_64_PLTOFF64",
        32 => "R_X86_64_SIZE32",
        33 => "R_X86_64_SIZE64",
        34 => "R_X86_64_GOTPC32_TLSDESC",
        35 => "R_X86_64_TLSDESC_CALL",
        36 => "R_X86_64_TLSDESC",
        37 => "R_X86_64_IRELATIVE",
        38 => "R_X86_64_RELATIVE64",
        41 => "R_X86_64_GOTPCRELX",
        42 => "R_X86_64_REX_GOTPCRELX",
        _ => return None,
    })
}

/// Relocation types that access thread-local storage.
pub fn is_tls_reloc(t: u32) -> bool {
    matches!(t, 16..=23 | 34..=36)
}

/// Relocation types that need a GOT or PLT built by a static or dynamic
/// linker (PLT32 is not one: a kernel linker treats it as PC32).
pub fn is_got_reloc(t: u32) -> bool {
    matches!(t, 3 | 6 | 7 | 9 | 25..=31 | 41 | 42)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ehdr() -> Vec<u8> {
        let mut d = vec![0u8; EHDR_SIZE];
        d[..4].copy_from_slice(b"\x7fELF");
        d[4] = ELFCLASS64;
        d[5] = ELFDATA2LSB;
        d[6] = 1;
        d[7] = ELFOSABI_FREEBSD;
        d[16..18].copy_from_slice(&ET_REL.to_le_bytes());
        d[18..20].copy_from_slice(&EM_X86_64.to_le_bytes());
        d[40..48].copy_from_slice(&64u64.to_le_bytes());
        d[58..60].copy_from_slice(&64u16.to_le_bytes());
        d[60..62].copy_from_slice(&2u16.to_le_bytes());
        d
    }

    #[test]
    fn kernel_cflags_by_group() {
        let all = kernel_cflags(&["target", "kernel", "options", "codegen", "warnings"]);
        assert_eq!(all[0], "--target=x86_64-unknown-freebsd15.0");
        for f in [
            "-mcmodel=kernel",
            "-mno-red-zone",
            "-msoft-float",
            "-D_KERNEL",
            "-Werror",
        ] {
            assert!(all.contains(&f), "{f} missing from kmod/kernel-cflags");
        }
        let codegen = kernel_cflags(&["codegen"]);
        assert!(codegen.contains(&"-mno-sse") && !codegen.contains(&"-D_KERNEL"));
        let opts = kernel_cflags(&["options"]);
        assert_eq!(opts, ["-include", "opt_global.h"]);
    }

    #[test]
    fn header_fields_and_truncation() {
        let d = ehdr();
        let h = Header::parse(&d).unwrap();
        assert_eq!((h.e_type, h.e_machine, h.osabi), (ET_REL, EM_X86_64, 9));
        assert_eq!((h.e_shoff, h.e_shentsize, h.e_shnum), (64, 64, 2));
        assert!(Header::parse(&d[..40]).unwrap_err().contains("truncated"));
        assert!(Header::parse(b"\x7fELG0123456789ab").is_err());
        assert!(Header::parse(&d[..10]).is_err());
        let mut d32 = d.clone();
        d32[4] = 1;
        assert_eq!(Header::parse(&d32[..20]).unwrap().e_type, 0);
    }

    #[test]
    fn section_table_reports_the_first_missing_header() {
        let mut d = ehdr();
        d.extend_from_slice(&[0u8; SHDR_SIZE]);
        d[64 + 4..64 + 8].copy_from_slice(&SHT_STRTAB.to_le_bytes());
        let t = Shdr::read_table(&d, 64, 1).unwrap();
        assert_eq!(t[0].sh_type, SHT_STRTAB);
        let first_missing = |shoff, n| Shdr::read_table(&d, shoff, n).map(|t| t.len());
        assert_eq!(first_missing(64, 2), Err(TableError::Truncated(1)));
        assert_eq!(
            first_missing(usize::MAX - 10, 2),
            Err(TableError::Truncated(0))
        );
        assert_eq!(
            first_missing(128, usize::MAX / 32),
            Err(TableError::Truncated(0))
        );
    }

    #[test]
    fn symbols_relas_and_strings() {
        let mut e = [0u8; SYM_SIZE + RELA_SIZE + 5];
        e[0..4].copy_from_slice(&7u32.to_le_bytes());
        e[4] = (STB_GLOBAL << 4) | STT_FUNC;
        e[6..8].copy_from_slice(&3u16.to_le_bytes());
        let s = Sym::read_all(&e[..SYM_SIZE + 5]);
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].name, s[0].bind(), s[0].typ(), s[0].shndx),
            (7, 1, 2, 3)
        );
        let r = &mut e[SYM_SIZE..SYM_SIZE + RELA_SIZE];
        r[8..16].copy_from_slice(&((5u64 << 32) | 2).to_le_bytes());
        r[16..24].copy_from_slice(&(-4i64).to_le_bytes());
        let r = Rela::read(r).unwrap();
        assert_eq!((r.sym, r.rtype, r.addend), (5, R_X86_64_PC32, -4));
        assert_eq!(rd_cstr(b"ab\0cd", 0), Some(&b"ab"[..]));
        assert_eq!(rd_cstr(b"ab\0cd", 3), None);
        assert_eq!(rd_u32(b"abc", 0), None);
        assert_eq!(rd_u16(b"abc", usize::MAX), None);
        assert_eq!(reloc_type_name(2), Some("R_X86_64_PC32"));
        assert_eq!(reloc_type_name(39), None);
        assert!(is_tls_reloc(19) && is_got_reloc(9) && !is_got_reloc(4));
    }
}
