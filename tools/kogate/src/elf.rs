//! The gate's view of a `.ko`: section and symbol names resolved, and the
//! structural problems the kernel linker would trip over returned as
//! `Err(String)` so the caller can turn them into violations. Decoding is
//! the shared reader's ([`kelf`]).

pub use kelf::*;

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
        let shdrs = Shdr::read_table(data, shoff, nsec).map_err(|_| {
            format!(
                "section header table ({nsec} entries at {shoff:#x}) extends past end of file ({} bytes)",
                data.len()
            )
        })?;
        let mut sections: Vec<Section> = shdrs
            .iter()
            .enumerate()
            .map(|(index, h)| Section {
                index,
                name: String::new(),
                sh_name: h.name,
                sh_type: h.sh_type,
                flags: h.flags,
                addr: h.addr,
                offset: h.offset,
                size: h.size,
                link: h.link,
                info: h.info,
                addralign: h.addralign,
                entsize: h.entsize,
            })
            .collect();
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
            for (i, e) in Sym::read_all(bytes).into_iter().enumerate() {
                let name = match rd_cstr(strtab, e.name as usize) {
                    Some(n) => String::from_utf8_lossy(n).into_owned(),
                    None => {
                        return Err(format!(
                            "symbol {i} name offset {} outside string table",
                            e.name
                        ))
                    }
                };
                symbols.push(Symbol {
                    index: i,
                    name,
                    info: e.info,
                    other: e.other,
                    shndx: e.shndx,
                    value: e.value,
                    size: e.size,
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
        Ok(Rela::read_all(b))
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

/// The name of relocation type `t` (`R_X86_64_<t>` when it has none).
pub fn reloc_name(t: u32) -> String {
    reloc_type_name(t).map_or_else(|| format!("R_X86_64_<{t}>"), str::to_string)
}

/// Types allowed in loaded sections of our modules.
pub fn is_allowed_reloc(t: u32) -> bool {
    matches!(t, 0 | 1 | 2 | 4 | 11)
}
