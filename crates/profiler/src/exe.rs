//! This process's own executable, as profiles need it: where its code is mapped, its GNU build
//! id (so tools find the matching debug file), the unwind sections for the unwinder, and the
//! function names of its symbol table. Read once from /proc/self/exe and /proc/self/maps: both
//! are readable in a read-only image as any uid, and nothing is written anywhere.

#![cfg(target_os = "linux")]

use std::ops::Range;

use object::{Object, ObjectSection, ObjectSymbol};

use crate::Error;

/// One executable mapping of the process, as pprof's `Mapping` describes it.
#[derive(Debug, Clone)]
pub(crate) struct Mapping {
    pub(crate) start: u64,
    pub(crate) limit: u64,
    pub(crate) file_offset: u64,
    pub(crate) path: String,
    pub(crate) build_id: String,
}

/// Our executable's code and unwind sections: their stated addresses (SVMAs) and their bytes,
/// which are already mapped in memory (loaded, read-only segments): no copy is made.
pub(crate) struct Sections {
    pub(crate) text: (Range<u64>, &'static [u8]),
    pub(crate) eh_frame: Option<(Range<u64>, &'static [u8])>,
    pub(crate) eh_frame_hdr: Option<(Range<u64>, &'static [u8])>,
    pub(crate) got: Option<Range<u64>>,
}

pub(crate) struct Executable {
    /// The executable mappings (r-x) of the program itself, plus the vDSO.
    pub(crate) mappings: Vec<Mapping>,
    /// Load bias: actual address minus the address stated in the file (0 unless PIE).
    pub(crate) bias: u64,
    pub(crate) sections: Sections,
    /// Functions from the symbol table, by stated address.
    functions: Vec<Function>,
}

/// A function of the symbol table: its stated address range and its linker (mangled) name.
struct Function {
    start: u64,
    end: u64,
    name: &'static str,
}

impl Executable {
    pub(crate) fn load() -> Result<Self, Error> {
        let path = std::fs::read_link("/proc/self/exe").map_err(|e| proc("/proc/self/exe", e))?;
        let path = path.to_string_lossy().into_owned();
        // The maps first: the file mapping made just below would show in them too.
        let maps =
            std::fs::read_to_string("/proc/self/maps").map_err(|e| proc("/proc/self/maps", e))?;
        // Kept mapped for the life of the process (page cache, not heap): the symbol names
        // are read from it.
        let image = FileMap::open("/proc/self/exe")?.leak();
        let file = object::File::parse(image)
            .map_err(|e| Error::Executable(format!("not an ELF file: {e}")))?;
        let text_end = file
            .section_by_name(".text")
            .map_or(u64::MAX, |t| t.address() + t.size());
        let functions = functions(&file, text_end);
        let build_id = file.build_id().ok().flatten().map(hex).unwrap_or_default();
        let mut mappings = Vec::new();
        let mut bias = None;
        for line in maps.lines() {
            let Some(m) = parse_maps_line(line) else {
                continue;
            };
            if m.path == path || m.path == "[vdso]" {
                let executable = m.perms.as_bytes().get(2) == Some(&b'x');
                if m.path == path && bias.is_none() && m.offset == 0 {
                    // The first mapping of the file starts at the first PT_LOAD (address 0 in a
                    // PIE, the link address otherwise).
                    bias = Some(m.start.wrapping_sub(first_load_vaddr(&file)));
                }
                if executable {
                    mappings.push(Mapping {
                        start: m.start,
                        limit: m.end,
                        file_offset: m.offset,
                        build_id: if m.path == path {
                            build_id.clone()
                        } else {
                            String::new()
                        },
                        path: m.path.to_owned(),
                    });
                }
            }
        }
        let bias = bias.ok_or_else(|| Error::Executable("not in /proc/self/maps".into()))?;
        // The executable first: pprof takes the first mapping for the main binary.
        mappings.sort_by_key(|m| m.path != path);
        let sections = Sections {
            text: loaded_section(&file, ".text", bias)
                .ok_or_else(|| Error::Executable("no .text section".into()))?,
            eh_frame: loaded_section(&file, ".eh_frame", bias),
            eh_frame_hdr: loaded_section(&file, ".eh_frame_hdr", bias),
            got: file
                .section_by_name(".got")
                .map(|s| s.address()..s.address() + s.size()),
        };
        Ok(Self {
            mappings,
            bias,
            sections,
            functions,
        })
    }

    /// The function containing the runtime address `addr`: its linker name and the offset of
    /// `addr` in it.
    pub(crate) fn function_at(&self, addr: u64) -> Option<(&'static str, u64)> {
        let svma = addr.wrapping_sub(self.bias);
        let i = self
            .functions
            .partition_point(|f| f.start <= svma)
            .checked_sub(1)?;
        let f = &self.functions[i];
        (svma < f.end).then_some((f.name, svma - f.start))
    }

    pub(crate) fn main_mapping(&self) -> Option<&Mapping> {
        self.mappings.iter().find(|m| m.path != "[vdso]")
    }
}

/// The symbol table's functions by address. Assembly functions without a size (musl's
/// `__clone`, for one) reach to the next symbol, and never past the end of `.text`.
fn functions(file: &object::File<'static>, text_end: u64) -> Vec<Function> {
    let mut all: Vec<(u64, u64, &'static str)> = file
        .symbols()
        .filter(|s| s.kind() == object::SymbolKind::Text && s.address() != 0)
        .filter_map(|s| Some((s.address(), s.size(), s.name().ok()?)))
        // Not ARM's mapping symbols ($x, $d) nor local labels.
        .filter(|(_, _, name)| {
            !name.is_empty() && !name.starts_with('$') && !name.starts_with(".L")
        })
        .collect();
    all.sort_by_key(|&(start, size, _)| (start, std::cmp::Reverse(size)));
    all.dedup_by_key(|&mut (start, _, _)| start);
    // A sizeless symbol inside a sized function is a label in it, not a function.
    let mut covered = 0;
    all.retain(|&(start, size, _)| {
        let keep = size > 0 || start >= covered;
        covered = covered.max(start + size);
        keep
    });
    let next_starts: Vec<u64> = all.iter().skip(1).map(|f| f.0).chain([u64::MAX]).collect();
    all.iter()
        .zip(next_starts)
        .map(|(&(start, size, name), next)| Function {
            start,
            end: if size > 0 {
                start + size
            } else {
                next.min(text_end.max(start + 1))
            },
            name,
        })
        .collect()
}

fn first_load_vaddr(file: &object::File) -> u64 {
    use object::ObjectSegment;
    file.segments().map(|s| s.address()).min().unwrap_or(0) & !0xfff
}

/// A section of a loaded segment, seen where it sits in this process's memory.
fn loaded_section(
    file: &object::File,
    name: &str,
    bias: u64,
) -> Option<(Range<u64>, &'static [u8])> {
    let s = file.section_by_name(name)?;
    if s.address() == 0 || s.size() == 0 {
        return None;
    }
    let at = s.address().wrapping_add(bias) as *const u8;
    // SAFETY: the section belongs to a PT_LOAD segment of the running executable, mapped
    // read-only (code, unwind tables) for the whole life of the process.
    let bytes = unsafe { std::slice::from_raw_parts(at, s.size() as usize) };
    Some((s.address()..s.address() + s.size(), bytes))
}

fn proc(path: &'static str, e: std::io::Error) -> Error {
    Error::Proc {
        path,
        reason: e.to_string(),
    }
}

/// A file mapped read-only for parsing (page cache, not heap), unmapped on drop; `leak`
/// keeps it mapped for good.
struct FileMap {
    ptr: *mut libc::c_void,
    len: usize,
}

impl FileMap {
    fn open(path: &'static str) -> Result<Self, Error> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(path).map_err(|e| proc(path, e))?;
        let len = file.metadata().map_err(|e| proc(path, e))?.len() as usize;
        // SAFETY: a private read-only mapping of a file we just opened; checked below.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE,
                file.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(proc(path, std::io::Error::last_os_error()));
        }
        Ok(Self { ptr, len })
    }

    /// The bytes for the rest of the process: the mapping is never unmapped.
    fn leak(self) -> &'static [u8] {
        let (ptr, len) = (self.ptr, self.len);
        std::mem::forget(self);
        // SAFETY: `ptr` maps `len` readable bytes, and with `self` forgotten nothing unmaps it.
        unsafe { std::slice::from_raw_parts(ptr as *const u8, len) }
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        // SAFETY: unmapping what `open` mapped.
        unsafe { libc::munmap(self.ptr, self.len) };
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

struct MapsLine<'a> {
    start: u64,
    end: u64,
    perms: &'a str,
    offset: u64,
    path: &'a str,
}

/// `start-end perms offset dev inode path`
fn parse_maps_line(line: &str) -> Option<MapsLine<'_>> {
    let mut fields = line.split_whitespace();
    let (start, end) = fields.next()?.split_once('-')?;
    let perms = fields.next()?;
    let offset = fields.next()?;
    let _dev = fields.next()?;
    let _inode = fields.next()?;
    let path = fields.next().unwrap_or("");
    Some(MapsLine {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        perms,
        offset: u64::from_str_radix(offset, 16).ok()?,
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_our_code_and_build_id() {
        let exe = Executable::load().unwrap();
        let main = exe.main_mapping().expect("a mapping of the executable");
        let here = finds_our_code_and_build_id as *const () as u64;
        assert!(
            (main.start..main.limit).contains(&here),
            "{here:#x} not in {main:?}"
        );
        // Debian's gcc links with --build-id; the release build asks rust-lld for one.
        assert_eq!(main.build_id.len(), 40, "{main:?}");
        assert!(!exe.sections.text.1.is_empty());
        let (name, offset) = exe.function_at(here + 1).expect("our own function");
        assert!(name.contains("finds_our_code_and_build_id"), "{name}");
        assert_eq!(offset, 1);
    }

    #[test]
    fn a_leaked_map_stays_readable() {
        let bytes = FileMap::open("/proc/self/exe").unwrap().leak();
        assert_eq!(&bytes[..4], b"\x7fELF");
    }
}
