//! The kernel linker's view of a relocatable object: the header checked the
//! way `link_elf_obj` does (in its order, with its errors), the section
//! headers, and checked access to section contents, strings, symbols and
//! RELA entries. Decoding is the shared reader's ([`kelf`]), so a truncated
//! or corrupt file is an error, never a harness crash.

use kelf::{Header, TableError, SHDR_SIZE};
pub use kelf::{
    Rela, Shdr, Sym, EHDR_SIZE, ELFCLASS64, ELFDATA2LSB, EM_X86_64, ET_REL, EV_CURRENT,
    R_X86_64_32S, R_X86_64_64, R_X86_64_NONE, R_X86_64_PC32, R_X86_64_PLT32, SHF_ALLOC,
    SHF_EXECINSTR, SHN_ABS, SHN_COMMON, SHN_LORESERVE, SHN_UNDEF, SHN_XINDEX, SHT_NOBITS,
    SHT_PROGBITS, SHT_REL, SHT_RELA, SHT_STRTAB, SHT_SYMTAB, SHT_X86_64_UNWIND, STB_LOCAL,
    STB_WEAK, STT_FUNC, STT_SECTION,
};

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

/// A parsed relocatable object (the file bytes plus decoded tables).
pub struct ElfObj {
    pub data: Vec<u8>,
    pub shdrs: Vec<Shdr>,
    pub shstrndx: usize,
}

impl ElfObj {
    /// Decodes and checks the header the way `link_elf_obj` does, in its order.
    pub fn parse(data: Vec<u8>) -> Result<ElfObj, ElfError> {
        if data.len() < EHDR_SIZE {
            return Err(ElfError::NotElf);
        }
        let h = Header::parse(&data).map_err(|_| ElfError::NotElf)?;
        if h.class != ELFCLASS64 || h.data != ELFDATA2LSB {
            return Err(ElfError::Layout);
        }
        if u32::from(h.ei_version) != EV_CURRENT || h.e_version != EV_CURRENT {
            return Err(ElfError::Version);
        }
        if h.e_type != ET_REL {
            return Err(ElfError::NotRelocatable);
        }
        if h.e_machine != EM_X86_64 {
            return Err(ElfError::Machine);
        }
        let e_shoff = h.e_shoff as usize;
        if h.e_shnum == 0 || e_shoff == 0 || usize::from(h.e_shentsize) != SHDR_SIZE {
            return Err(ElfError::Malformed("bad section header table".into()));
        }
        let shdrs = Shdr::read_table(&data, e_shoff, usize::from(h.e_shnum)).map_err(|e| {
            ElfError::Malformed(match e {
                TableError::Overflow(_) => "section header offset overflow".into(),
                TableError::Truncated(i) => format!("section header {i} beyond end of file"),
            })
        })?;
        Ok(ElfObj {
            data,
            shdrs,
            shstrndx: usize::from(h.e_shstrndx),
        })
    }

    /// The file bytes of section `i` (PROGBITS-like sections only).
    pub fn section_bytes(&self, i: usize) -> Result<&[u8], ElfError> {
        let range = self.shdrs[i]
            .file_range()
            .ok_or_else(|| ElfError::Malformed(format!("section {i} size overflow")))?;
        self.data
            .get(range)
            .ok_or_else(|| ElfError::Malformed(format!("section {i} beyond end of file")))
    }

    /// A NUL-terminated string at `off` in string-table section `strndx`.
    pub fn str_at(&self, strndx: usize, off: u32) -> Option<&str> {
        let tab = self.section_bytes(strndx).ok()?;
        std::str::from_utf8(kelf::rd_cstr(tab, off as usize)?).ok()
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
        Ok(Sym::read_all(self.section_bytes(symtab)?))
    }

    /// Decodes the RELA entries of section `i`.
    pub fn relas(&self, i: usize) -> Result<Vec<Rela>, ElfError> {
        Ok(Rela::read_all(self.section_bytes(i)?))
    }
}

/// Name of an x86-64 relocation type without its `R_X86_64_` prefix, for
/// diagnostics.
pub fn reloc_name(t: u32) -> String {
    match kelf::reloc_type_name(t) {
        Some(n) => n.trim_start_matches("R_X86_64_").to_string(),
        None => format!("type {t}"),
    }
}
