//! A bounds-checked reader for ELF64 little-endian relocatable objects.
//!
//! Only what the kernel linker needs: the header, section headers, the symbol
//! table with its strings, section names and RELA entries. Every access is
//! checked, so a truncated or corrupt file is an error, never a harness crash.

pub const ELFCLASS64: u8 = 2;
pub const ELFDATA2LSB: u8 = 1;
pub const EV_CURRENT: u32 = 1;
pub const ET_REL: u16 = 1;
pub const EM_X86_64: u16 = 62;

pub const SHT_PROGBITS: u32 = 1;
pub const SHT_SYMTAB: u32 = 2;
pub const SHT_STRTAB: u32 = 3;
pub const SHT_RELA: u32 = 4;
pub const SHT_NOBITS: u32 = 8;
pub const SHT_REL: u32 = 9;
pub const SHT_X86_64_UNWIND: u32 = 0x7000_0001;

pub const SHF_ALLOC: u64 = 0x2;
pub const SHF_EXECINSTR: u64 = 0x4;

pub const SHN_UNDEF: u16 = 0;
pub const SHN_LORESERVE: u16 = 0xff00;
pub const SHN_ABS: u16 = 0xfff1;
pub const SHN_COMMON: u16 = 0xfff2;
pub const SHN_XINDEX: u16 = 0xffff;

pub const STB_LOCAL: u8 = 0;
pub const STB_WEAK: u8 = 2;

pub const STT_FUNC: u8 = 2;
pub const STT_SECTION: u8 = 3;

pub const R_X86_64_NONE: u32 = 0;
pub const R_X86_64_64: u32 = 1;
pub const R_X86_64_PC32: u32 = 2;
pub const R_X86_64_PLT32: u32 = 4;
pub const R_X86_64_32S: u32 = 11;

const EHDR_SIZE: usize = 64;
const SHDR_SIZE: usize = 64;
const SYM_SIZE: usize = 24;
const RELA_SIZE: usize = 24;

/// Why a file could not be parsed, with FreeBSD's wording where it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ElfError {
    /// Not an ELF file or truncated header (the kernel returns ENOEXEC silently).
    NotElf,
    /// "Unsupported file layout" (class or data encoding).
    Layout,
    /// "Unsupported file version".
    Version,
    /// Not ET_REL: the object linker refuses it (ENOSYS; "unsupported file type").
    NotRelocatable,
    /// "Unsupported machine".
    Machine,
    /// Malformed section headers or tables.
    Malformed(String),
}

#[derive(Clone, Copy, Debug, Default)]
#[allow(dead_code)] // every header field is decoded, not all are used
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

#[derive(Clone, Copy, Debug, Default)]
#[allow(dead_code)] // every symbol field is decoded, not all are used
pub struct Sym {
    pub name: u32,
    pub info: u8,
    pub other: u8,
    pub shndx: u16,
    pub value: u64,
    pub size: u64,
}

impl Sym {
    pub fn bind(&self) -> u8 {
        self.info >> 4
    }
    pub fn typ(&self) -> u8 {
        self.info & 0xf
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Rela {
    pub offset: u64,
    pub sym: u32,
    pub rtype: u32,
    pub addend: i64,
}

fn rd_u16(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..off + 2)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}
fn rd_u32(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off + 4)
        .map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
}
fn rd_u64(d: &[u8], off: usize) -> Option<u64> {
    d.get(off..off + 8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
}

/// A parsed relocatable object (the file bytes plus decoded tables).
pub struct ElfObj {
    pub data: Vec<u8>,
    pub shdrs: Vec<Shdr>,
    pub shstrndx: usize,
}

impl ElfObj {
    /// Decodes and checks the header the way `link_elf_obj` does, in its order.
    pub fn parse(data: Vec<u8>) -> Result<ElfObj, ElfError> {
        if data.len() < EHDR_SIZE || &data[0..4] != b"\x7fELF" {
            return Err(ElfError::NotElf);
        }
        if data[4] != ELFCLASS64 || data[5] != ELFDATA2LSB {
            return Err(ElfError::Layout);
        }
        let e_version = rd_u32(&data, 20).ok_or(ElfError::NotElf)?;
        if u32::from(data[6]) != EV_CURRENT || e_version != EV_CURRENT {
            return Err(ElfError::Version);
        }
        let e_type = rd_u16(&data, 16).ok_or(ElfError::NotElf)?;
        if e_type != ET_REL {
            return Err(ElfError::NotRelocatable);
        }
        let e_machine = rd_u16(&data, 18).ok_or(ElfError::NotElf)?;
        if e_machine != EM_X86_64 {
            return Err(ElfError::Machine);
        }
        let e_shoff = rd_u64(&data, 40).ok_or(ElfError::NotElf)? as usize;
        let e_shentsize = rd_u16(&data, 58).ok_or(ElfError::NotElf)? as usize;
        let e_shnum = rd_u16(&data, 60).ok_or(ElfError::NotElf)? as usize;
        let e_shstrndx = rd_u16(&data, 62).ok_or(ElfError::NotElf)? as usize;
        if e_shnum == 0 || e_shoff == 0 || e_shentsize != SHDR_SIZE {
            return Err(ElfError::Malformed("bad section header table".into()));
        }
        let mut shdrs = Vec::with_capacity(e_shnum);
        for i in 0..e_shnum {
            let o = e_shoff
                .checked_add(i * SHDR_SIZE)
                .ok_or_else(|| ElfError::Malformed("section header offset overflow".into()))?;
            let bad = || ElfError::Malformed(format!("section header {i} beyond end of file"));
            shdrs.push(Shdr {
                name: rd_u32(&data, o).ok_or_else(bad)?,
                sh_type: rd_u32(&data, o + 4).ok_or_else(bad)?,
                flags: rd_u64(&data, o + 8).ok_or_else(bad)?,
                addr: rd_u64(&data, o + 16).ok_or_else(bad)?,
                offset: rd_u64(&data, o + 24).ok_or_else(bad)?,
                size: rd_u64(&data, o + 32).ok_or_else(bad)?,
                link: rd_u32(&data, o + 40).ok_or_else(bad)?,
                info: rd_u32(&data, o + 44).ok_or_else(bad)?,
                addralign: rd_u64(&data, o + 48).ok_or_else(bad)?,
                entsize: rd_u64(&data, o + 56).ok_or_else(bad)?,
            });
        }
        Ok(ElfObj {
            data,
            shdrs,
            shstrndx: e_shstrndx,
        })
    }

    /// The file bytes of section `i` (PROGBITS-like sections only).
    pub fn section_bytes(&self, i: usize) -> Result<&[u8], ElfError> {
        let s = &self.shdrs[i];
        let start = s.offset as usize;
        let end = start
            .checked_add(s.size as usize)
            .ok_or_else(|| ElfError::Malformed(format!("section {i} size overflow")))?;
        self.data
            .get(start..end)
            .ok_or_else(|| ElfError::Malformed(format!("section {i} beyond end of file")))
    }

    /// A NUL-terminated string at `off` in string-table section `strndx`.
    pub fn str_at(&self, strndx: usize, off: u32) -> Option<&str> {
        let tab = self.section_bytes(strndx).ok()?;
        let rest = tab.get(off as usize..)?;
        let end = rest.iter().position(|&b| b == 0)?;
        std::str::from_utf8(&rest[..end]).ok()
    }

    /// The name of section `i`, if the file has a section-name table.
    pub fn section_name(&self, i: usize) -> Option<&str> {
        let shstr = self.shstrndx;
        if shstr == 0 || shstr >= self.shdrs.len() || self.shdrs[shstr].sh_type != SHT_STRTAB {
            return None;
        }
        if self.shdrs[i].name == 0 {
            return None;
        }
        self.str_at(shstr, self.shdrs[i].name)
    }

    /// Decodes the symbol table in section `symtab`.
    pub fn symbols(&self, symtab: usize) -> Result<Vec<Sym>, ElfError> {
        let b = self.section_bytes(symtab)?;
        let n = b.len() / SYM_SIZE;
        let mut v = Vec::with_capacity(n);
        for i in 0..n {
            let o = i * SYM_SIZE;
            v.push(Sym {
                name: rd_u32(b, o).unwrap_or(0),
                info: b[o + 4],
                other: b[o + 5],
                shndx: rd_u16(b, o + 6).unwrap_or(0),
                value: rd_u64(b, o + 8).unwrap_or(0),
                size: rd_u64(b, o + 16).unwrap_or(0),
            });
        }
        Ok(v)
    }

    /// Decodes the RELA entries of section `i`.
    pub fn relas(&self, i: usize) -> Result<Vec<Rela>, ElfError> {
        let b = self.section_bytes(i)?;
        let n = b.len() / RELA_SIZE;
        let mut v = Vec::with_capacity(n);
        for k in 0..n {
            let o = k * RELA_SIZE;
            let info = rd_u64(b, o + 8).unwrap_or(0);
            v.push(Rela {
                offset: rd_u64(b, o).unwrap_or(0),
                sym: (info >> 32) as u32,
                rtype: (info & 0xffff_ffff) as u32,
                addend: rd_u64(b, o + 16).unwrap_or(0) as i64,
            });
        }
        Ok(v)
    }
}

/// Name of an x86-64 relocation type, for diagnostics.
pub fn reloc_name(t: u32) -> String {
    match t {
        0 => "NONE".into(),
        1 => "64".into(),
        2 => "PC32".into(),
        3 => "GOT32".into(),
        4 => "PLT32".into(),
        5 => "COPY".into(),
        6 => "GLOB_DAT".into(),
        7 => "JUMP_SLOT".into(),
        8 => "RELATIVE".into(),
        9 => "GOTPCREL".into(),
        10 => "32".into(),
        11 => "32S".into(),
        12 => "16".into(),
        13 => "PC16".into(),
        14 => "8".into(),
        15 => "PC8".into(),
        24 => "PC64".into(),
        41 => "GOTPCRELX".into(),
        42 => "REX_GOTPCRELX".into(),
        _ => format!("type {t}"),
    }
}
