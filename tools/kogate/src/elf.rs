//! Minimal read-only ELF64 little-endian relocatable-object reader.
//!
//! Only what the gate needs: the file header, section headers, one symbol
//! table and RELA entries. Every read is bounds-checked; structural problems
//! are returned as `Err(String)` so the caller can turn them into violations.

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

pub const EHDR_SIZE: usize = 64;
pub const SHDR_SIZE: usize = 64;
pub const SYM_SIZE: usize = 24;
pub const RELA_SIZE: usize = 24;

pub fn rd_u16(d: &[u8], off: usize) -> Option<u16> {
    d.get(off..off.checked_add(2)?)
        .map(|b| u16::from_le_bytes([b[0], b[1]]))
}

pub fn rd_u32(d: &[u8], off: usize) -> Option<u32> {
    d.get(off..off.checked_add(4)?)
        .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
}

pub fn rd_u64(d: &[u8], off: usize) -> Option<u64> {
    d.get(off..off.checked_add(8)?)
        .map(|b| u64::from_le_bytes(b.try_into().unwrap()))
}

/// NUL-terminated string at `off` inside `d`.
pub fn rd_cstr(d: &[u8], off: usize) -> Option<&[u8]> {
    let tail = d.get(off..)?;
    let end = tail.iter().position(|&b| b == 0)?;
    Some(&tail[..end])
}

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
    /// Reads the identification bytes and, if the file is ELF64 LE, the rest.
    /// Returns Err for files too short or without the ELF magic.
    pub fn parse(d: &[u8]) -> Result<Header, String> {
        if d.len() < 16 || &d[..4] != b"\x7fELF" {
            return Err("not an ELF file (bad magic or shorter than 16 bytes)".into());
        }
        let mut h = Header {
            class: d[4],
            data: d[5],
            ei_version: d[6],
            osabi: d[7],
            e_type: 0,
            e_machine: 0,
            e_version: 0,
            e_shoff: 0,
            e_shentsize: 0,
            e_shnum: 0,
            e_shstrndx: 0,
        };
        if h.class == ELFCLASS64 && h.data == ELFDATA2LSB {
            if d.len() < EHDR_SIZE {
                return Err(format!(
                    "truncated ELF header ({} bytes, need {EHDR_SIZE})",
                    d.len()
                ));
            }
            h.e_type = rd_u16(d, 16).unwrap();
            h.e_machine = rd_u16(d, 18).unwrap();
            h.e_version = rd_u32(d, 20).unwrap();
            h.e_shoff = rd_u64(d, 40).unwrap();
            h.e_shentsize = rd_u16(d, 58).unwrap();
            h.e_shnum = rd_u16(d, 60).unwrap();
            h.e_shstrndx = rd_u16(d, 62).unwrap();
        }
        Ok(h)
    }
}

#[derive(Debug, Clone)]
pub struct Section {
    pub index: usize,
    pub name: String,
    pub sh_name: u32,
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

impl Section {
    pub fn is_alloc(&self) -> bool {
        self.flags & SHF_ALLOC != 0
    }
    pub fn is_exec(&self) -> bool {
        self.flags & SHF_EXECINSTR != 0
    }
    /// Sections the kernel linker copies into the module image.
    pub fn is_loaded(&self) -> bool {
        self.is_alloc()
            && matches!(
                self.sh_type,
                SHT_PROGBITS
                    | SHT_NOBITS
                    | SHT_INIT_ARRAY
                    | SHT_FINI_ARRAY
                    | SHT_PREINIT_ARRAY
                    | SHT_X86_64_UNWIND
            )
    }
}

#[derive(Debug, Clone)]
pub struct Symbol {
    pub index: usize,
    pub name: String,
    pub info: u8,
    pub other: u8,
    pub shndx: u16,
    pub value: u64,
    pub size: u64,
}

impl Symbol {
    pub fn bind(&self) -> u8 {
        self.info >> 4
    }
    pub fn typ(&self) -> u8 {
        self.info & 0xf
    }
    pub fn is_undef(&self) -> bool {
        self.shndx == SHN_UNDEF
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Rela {
    pub offset: u64,
    pub sym: u32,
    pub rtype: u32,
    pub addend: i64,
}

pub struct Elf<'a> {
    pub data: &'a [u8],
    pub hdr: Header,
    pub sections: Vec<Section>,
    /// Indices of all SHT_SYMTAB sections.
    pub symtabs: Vec<usize>,
    /// Symbols of the last SHT_SYMTAB (empty if there is none).
    pub symbols: Vec<Symbol>,
}

impl<'a> Elf<'a> {
    /// Parses section headers and the symbol table. The header must already be
    /// known to be ELF64 LE with a sane section-header table (checked by the
    /// caller through [`Header`]); anything out of bounds is an Err.
    pub fn parse(data: &'a [u8]) -> Result<Elf<'a>, String> {
        let hdr = Header::parse(data)?;
        if hdr.class != ELFCLASS64 || hdr.data != ELFDATA2LSB {
            return Err("not ELF64 little-endian".into());
        }
        if hdr.e_shentsize as usize != SHDR_SIZE {
            return Err(format!(
                "e_shentsize is {}, expected {SHDR_SIZE}",
                hdr.e_shentsize
            ));
        }
        if hdr.e_shoff == 0 || hdr.e_shnum == 0 {
            return Err(format!(
                "no section header table (e_shoff={:#x}, e_shnum={}; extended section numbering is not supported by the kernel linker)",
                hdr.e_shoff, hdr.e_shnum
            ));
        }
        let shoff = usize::try_from(hdr.e_shoff).map_err(|_| "e_shoff too large".to_string())?;
        let nsec = hdr.e_shnum as usize;
        let table_end = shoff
            .checked_add(nsec * SHDR_SIZE)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| {
                format!(
                    "section header table ({nsec} entries at {shoff:#x}) extends past end of file ({} bytes)",
                    data.len()
                )
            })?;
        let _ = table_end;
        let mut sections = Vec::with_capacity(nsec);
        for i in 0..nsec {
            let b = shoff + i * SHDR_SIZE;
            sections.push(Section {
                index: i,
                name: String::new(),
                sh_name: rd_u32(data, b).unwrap(),
                sh_type: rd_u32(data, b + 4).unwrap(),
                flags: rd_u64(data, b + 8).unwrap(),
                addr: rd_u64(data, b + 16).unwrap(),
                offset: rd_u64(data, b + 24).unwrap(),
                size: rd_u64(data, b + 32).unwrap(),
                link: rd_u32(data, b + 40).unwrap(),
                info: rd_u32(data, b + 44).unwrap(),
                addralign: rd_u64(data, b + 48).unwrap(),
                entsize: rd_u64(data, b + 56).unwrap(),
            });
        }
        // Every section with file contents must lie inside the file.
        for s in &sections {
            if s.sh_type == SHT_NOBITS || s.sh_type == SHT_NULL {
                continue;
            }
            let end = s.offset.checked_add(s.size);
            if end.is_none_or(|e| e > data.len() as u64) {
                return Err(format!(
                    "section {} contents (offset {:#x}, size {:#x}) extend past end of file",
                    s.index, s.offset, s.size
                ));
            }
        }
        let shstrndx = hdr.e_shstrndx as usize;
        if shstrndx == 0 || shstrndx >= nsec || sections[shstrndx].sh_type != SHT_STRTAB {
            return Err(format!(
                "e_shstrndx {} does not name a string table",
                hdr.e_shstrndx
            ));
        }
        let shstr = section_bytes(data, &sections[shstrndx]);
        for s in sections.iter_mut() {
            s.name = match rd_cstr(shstr, s.sh_name as usize) {
                Some(n) => String::from_utf8_lossy(n).into_owned(),
                None => {
                    return Err(format!(
                        "section {} name offset {} outside section-name string table",
                        s.index, s.sh_name
                    ))
                }
            };
        }
        let symtabs: Vec<usize> = sections
            .iter()
            .filter(|s| s.sh_type == SHT_SYMTAB)
            .map(|s| s.index)
            .collect();
        let mut symbols = Vec::new();
        // Like the kernel linker, use the last SHT_SYMTAB if there are several
        // (the count itself is checked by the symtab rule).
        if let Some(&st) = symtabs.last() {
            let sec = &sections[st];
            if sec.entsize != SYM_SIZE as u64 || !sec.size.is_multiple_of(SYM_SIZE as u64) {
                return Err(format!(
                    "symbol table {} has entsize {} / size {} (expected multiples of {SYM_SIZE})",
                    sec.name, sec.entsize, sec.size
                ));
            }
            let strndx = sec.link as usize;
            if strndx >= nsec || sections[strndx].sh_type != SHT_STRTAB {
                return Err(format!(
                    "symbol table {} links to section {} which is not a string table",
                    sec.name, sec.link
                ));
            }
            let strtab = section_bytes(data, &sections[strndx]);
            let bytes = section_bytes(data, sec);
            for (i, e) in bytes.chunks_exact(SYM_SIZE).enumerate() {
                let st_name = rd_u32(e, 0).unwrap();
                let name = match rd_cstr(strtab, st_name as usize) {
                    Some(n) => String::from_utf8_lossy(n).into_owned(),
                    None => {
                        return Err(format!(
                            "symbol {i} name offset {st_name} outside string table"
                        ))
                    }
                };
                symbols.push(Symbol {
                    index: i,
                    name,
                    info: e[4],
                    other: e[5],
                    shndx: rd_u16(e, 6).unwrap(),
                    value: rd_u64(e, 8).unwrap(),
                    size: rd_u64(e, 16).unwrap(),
                });
            }
        }
        Ok(Elf {
            data,
            hdr,
            sections,
            symtabs,
            symbols,
        })
    }

    /// File contents of a section (empty for NOBITS).
    pub fn bytes(&self, s: &Section) -> &'a [u8] {
        section_bytes(self.data, s)
    }

    pub fn section_by_name(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// RELA entries of a SHT_RELA section (Err if its size is not a multiple of 24).
    pub fn relas(&self, s: &Section) -> Result<Vec<Rela>, String> {
        let b = self.bytes(s);
        if !b.len().is_multiple_of(RELA_SIZE) {
            return Err(format!(
                "relocation section {} size {} is not a multiple of {RELA_SIZE}",
                s.name,
                b.len()
            ));
        }
        Ok(b.chunks_exact(RELA_SIZE)
            .map(|e| {
                let info = rd_u64(e, 8).unwrap();
                Rela {
                    offset: rd_u64(e, 0).unwrap(),
                    sym: (info >> 32) as u32,
                    rtype: (info & 0xffff_ffff) as u32,
                    addend: rd_u64(e, 16).unwrap() as i64,
                }
            })
            .collect())
    }
}

fn section_bytes<'a>(data: &'a [u8], s: &Section) -> &'a [u8] {
    if s.sh_type == SHT_NOBITS || s.sh_type == SHT_NULL {
        return &[];
    }
    let start = s.offset as usize;
    let end = start.saturating_add(s.size as usize);
    data.get(start..end).unwrap_or(&[])
}

pub fn reloc_name(t: u32) -> String {
    let n = match t {
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
        _ => return format!("R_X86_64_<{t}>"),
    };
    n.to_string()
}

/// Relocation types that access thread-local storage.
pub fn is_tls_reloc(t: u32) -> bool {
    matches!(t, 16..=23 | 34..=36)
}

/// Relocation types that need a GOT or PLT built by a static/dynamic linker
/// (PLT32 is excluded: the kernel linker treats it as PC32).
pub fn is_got_reloc(t: u32) -> bool {
    matches!(t, 3 | 6 | 7 | 9 | 25..=31 | 41 | 42)
}

/// Types allowed in loaded sections of our modules.
pub fn is_allowed_reloc(t: u32) -> bool {
    matches!(t, 0 | 1 | 2 | 4 | 11)
}
