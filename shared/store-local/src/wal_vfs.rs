//! A SQLite VFS over the default one that writes a commit's WAL frames to
//! the file in one `pwrite`, for the writer connection.
//!
//! Why: SQLite writes each frame of a commit (every page the transaction
//! dirtied) as two `write` calls, its 24-byte header and its page, and
//! neither is aligned to the OS page cache's pages, so a frame costs the
//! kernel three page-cache updates and two system calls. At some 30 frames
//! a commit this was a quarter of the writer thread's time during an alert
//! storm (docs/performance.md, 2026-12-03); one call for the whole run of
//! frames costs a third of that.
//!
//! What stays true: a commit's frames are in the file (the OS page cache,
//! as before; `synchronous` decides about the disk) before SQLite publishes
//! the commit in the WAL index and returns, so every acknowledged write
//! still survives `kill -9` and is what other connections read. SQLite
//! publishes a commit after writing its commit frame, the one whose header
//! carries the database size after the commit; the frames are gathered
//! until that frame's page is written:
//!
//! - a write that continues the previous one (starts where it ended) joins
//!   the gathered bytes; any other write, and every other call on the file
//!   (read, sync, size, truncate, file control, close), first writes the
//!   gathered bytes out;
//! - the page written right after a commit frame's header completes the
//!   commit: it is written out with everything gathered;
//! - a commit frame's header written anywhere else (SQLite rewriting the
//!   checksums of frames it overwrote in the same transaction, which it
//!   does just before publishing) goes to the file at once.
//!
//! Only files SQLite opens as a WAL are wrapped; the database file and
//! every other call go to the default VFS unchanged, so connections on the
//! two VFSes share one database (same locks, same WAL index).

use quper_core::ports::StoreError;
use rusqlite::ffi;
use std::ffi::{CStr, c_int, c_void};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicPtr, Ordering};

/// The name the writer connection opens its database with.
pub(crate) const NAME: &CStr = c"quper-wal-gather";

/// The WAL frame header's length (`WAL_FRAME_HDRSIZE` in SQLite).
const FRAME_HEADER: usize = 24;

/// At most this many bytes are gathered; a transaction larger than that
/// (a bulk import) is written in pieces of this size before its commit.
const MAX_GATHERED: usize = 8 << 20;

/// The most one write call hands the default VFS: the Unix VFS writes at
/// most 128 KiB - 1 bytes a call (`seekAndWriteFd` masks the length with
/// `0x1ffff`) and reports a longer write as a full disk.
const MAX_WRITE: usize = 124 * 1024;

/// The default VFS the wrapped files and every other call go to.
static DEFAULT: AtomicPtr<ffi::sqlite3_vfs> = AtomicPtr::new(std::ptr::null_mut());

/// Registers the VFS (once per process) and returns its name.
pub(crate) fn register() -> Result<&'static CStr, StoreError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            // SAFETY: `sqlite3_vfs_find` initialises SQLite if needed and
            // returns a VFS that lives as long as the process; the copy is
            // leaked, so it does too, as `sqlite3_vfs_register` requires.
            unsafe {
                let default = ffi::sqlite3_vfs_find(std::ptr::null());
                if default.is_null() {
                    return Err("SQLite has no default VFS".to_owned());
                }
                DEFAULT.store(default, Ordering::Release);
                let mut vfs = *default;
                vfs.zName = NAME.as_ptr();
                vfs.pNext = std::ptr::null_mut();
                vfs.szOsFile = (*default).szOsFile + INNER_OFFSET as c_int;
                vfs.xOpen = Some(open);
                let vfs = Box::leak(Box::new(vfs));
                match ffi::sqlite3_vfs_register(vfs, 0) {
                    ffi::SQLITE_OK => Ok(()),
                    code => Err(format!("registering the WAL-gathering VFS failed with code {code}")),
                }
            }
        })
        .clone()
        .map(|()| NAME)
        .map_err(StoreError::Unavailable)
}

/// A wrapped WAL file: SQLite's handle, then the default VFS's file at
/// [`INNER_OFFSET`] in the same allocation (`szOsFile` covers both).
#[repr(C)]
struct GatheringFile {
    base: ffi::sqlite3_file,
    gathered: *mut Gathered,
}

/// Where the default VFS's file starts, aligned for it.
const INNER_OFFSET: usize = std::mem::size_of::<GatheringFile>().next_multiple_of(16);

/// The bytes written but not yet handed to the file.
struct Gathered {
    inner: *mut ffi::sqlite3_file,
    bytes: Vec<u8>,
    /// The file offset of `bytes[0]`.
    start: i64,
    /// Where the last write ended (`-1`: none yet).
    next: i64,
    /// The last write was a commit frame's header: the next one, its page,
    /// completes the commit.
    commit_header_written: bool,
}

impl Gathered {
    /// Hands the gathered bytes to the file.
    ///
    /// # Safety
    /// `self.inner` is an open file of the default VFS.
    unsafe fn write_out(&mut self) -> c_int {
        self.commit_header_written = false;
        if self.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        let mut code = ffi::SQLITE_OK;
        let mut offset = self.start;
        for piece in self.bytes.chunks(MAX_WRITE) {
            // SAFETY: per this function's contract; a piece is at most
            // `MAX_WRITE` bytes, which fits a `c_int`.
            code = unsafe { write_inner(self.inner, piece.as_ptr().cast(), piece.len() as c_int, offset) };
            if code != ffi::SQLITE_OK {
                break;
            }
            offset += piece.len() as i64;
        }
        self.bytes.clear();
        code
    }
}

/// # Safety
/// `inner` is an open file of the default VFS; `data` holds `length` bytes.
unsafe fn write_inner(inner: *mut ffi::sqlite3_file, data: *const c_void, length: c_int, offset: i64) -> c_int {
    // SAFETY: per this function's contract; an open file has its methods.
    unsafe {
        match (*(*inner).pMethods).xWrite {
            Some(write) => write(inner, data, length, offset),
            None => ffi::SQLITE_IOERR_WRITE,
        }
    }
}

/// The state and the default VFS's file of a file this VFS opened as a WAL.
///
/// # Safety
/// `file` was opened by [`open`] with `SQLITE_OPEN_WAL` and not closed.
unsafe fn gathered<'a>(file: *mut ffi::sqlite3_file) -> &'a mut Gathered {
    // SAFETY: per this function's contract, `gathered` was set by `open`
    // and only this file's calls (one connection, one thread at a time)
    // reach it.
    unsafe { &mut *(*file.cast::<GatheringFile>()).gathered }
}

/// The default VFS's methods for the file under `file`.
///
/// # Safety
/// As [`gathered`].
unsafe fn inner<'a>(file: *mut ffi::sqlite3_file) -> (*mut ffi::sqlite3_file, &'a ffi::sqlite3_io_methods) {
    // SAFETY: per this function's contract; an open file has its methods.
    unsafe {
        let inner = gathered(file).inner;
        (inner, &*(*inner).pMethods)
    }
}

/// Writes the gathered bytes out, then returns the default VFS's file and
/// methods, for a call that must see the file as SQLite wrote it.
///
/// # Safety
/// As [`gathered`].
unsafe fn written_out<'a>(
    file: *mut ffi::sqlite3_file,
) -> Result<(*mut ffi::sqlite3_file, &'a ffi::sqlite3_io_methods), c_int> {
    // SAFETY: per this function's contract.
    unsafe {
        match gathered(file).write_out() {
            ffi::SQLITE_OK => Ok(inner(file)),
            code => Err(code),
        }
    }
}

unsafe extern "C" fn open(
    _vfs: *mut ffi::sqlite3_vfs,
    name: *const std::ffi::c_char,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let default = DEFAULT.load(Ordering::Acquire);
    // SAFETY: `register` set `DEFAULT` before this VFS could be found;
    // SQLite allocated `szOsFile` bytes at `file`, enough for the default
    // VFS's file at offset 0 (not a WAL) or at `INNER_OFFSET` (a WAL).
    unsafe {
        let Some(default_open) = (*default).xOpen else {
            return ffi::SQLITE_CANTOPEN;
        };
        if flags & ffi::SQLITE_OPEN_WAL == 0 {
            return default_open(default, name, file, flags, out_flags);
        }
        let inner = file.cast::<u8>().add(INNER_OFFSET).cast::<ffi::sqlite3_file>();
        let wrapper = file.cast::<GatheringFile>();
        (*wrapper).base.pMethods = std::ptr::null();
        (*wrapper).gathered = std::ptr::null_mut();
        let code = default_open(default, name, inner, flags, out_flags);
        if code != ffi::SQLITE_OK {
            return code;
        }
        if (*inner).pMethods.is_null() {
            return ffi::SQLITE_CANTOPEN;
        }
        (*wrapper).gathered = Box::into_raw(Box::new(Gathered {
            inner,
            bytes: Vec::new(),
            start: 0,
            next: -1,
            commit_header_written: false,
        }));
        (*wrapper).base.pMethods = &WAL_METHODS;
        ffi::SQLITE_OK
    }
}

static WAL_METHODS: ffi::sqlite3_io_methods = ffi::sqlite3_io_methods {
    iVersion: 3,
    xClose: Some(close),
    xRead: Some(read),
    xWrite: Some(write),
    xTruncate: Some(truncate),
    xSync: Some(sync),
    xFileSize: Some(file_size),
    xLock: Some(lock),
    xUnlock: Some(unlock),
    xCheckReservedLock: Some(check_reserved_lock),
    xFileControl: Some(file_control),
    xSectorSize: Some(sector_size),
    xDeviceCharacteristics: Some(device_characteristics),
    xShmMap: Some(shm_map),
    xShmLock: Some(shm_lock),
    xShmBarrier: Some(shm_barrier),
    xShmUnmap: Some(shm_unmap),
    xFetch: Some(fetch),
    xUnfetch: Some(unfetch),
};

unsafe extern "C" fn write(file: *mut ffi::sqlite3_file, data: *const c_void, amount: c_int, offset: i64) -> c_int {
    let Ok(length) = usize::try_from(amount) else {
        return ffi::SQLITE_IOERR_WRITE;
    };
    // SAFETY: SQLite calls this on a file `open` wrapped, with `amount`
    // readable bytes at `data`.
    unsafe {
        let gathered = gathered(file);
        let bytes = std::slice::from_raw_parts(data.cast::<u8>(), length);
        let continues = offset == gathered.next;
        let completes_commit = gathered.commit_header_written && continues;
        // Bytes 4..8 of a frame header: the database size after a commit,
        // zero in every other frame.
        let commit_header = length == FRAME_HEADER && bytes[4..8] != [0; 4];
        if !continues || gathered.bytes.len() + length > MAX_GATHERED {
            let code = gathered.write_out();
            if code != ffi::SQLITE_OK {
                return code;
            }
        }
        gathered.next = offset + i64::from(amount);
        if commit_header && !continues {
            // A checksum rewrite: nothing else is written before SQLite
            // publishes the commit. (Were it a commit frame after a gap,
            // its page continues it and goes out on its own.)
            gathered.commit_header_written = true;
            return write_inner(gathered.inner, data, amount, offset);
        }
        if gathered.bytes.is_empty() {
            gathered.start = offset;
        }
        gathered.bytes.extend_from_slice(bytes);
        if completes_commit {
            return gathered.write_out();
        }
        gathered.commit_header_written = commit_header;
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: SQLite calls this once, on a file `open` wrapped; nothing
    // uses the state afterwards.
    unsafe {
        let wrapper = file.cast::<GatheringFile>();
        let written = gathered(file).write_out();
        let (inner, methods) = inner(file);
        let closed = match methods.xClose {
            Some(close) => close(inner),
            None => ffi::SQLITE_OK,
        };
        drop(Box::from_raw((*wrapper).gathered));
        (*wrapper).gathered = std::ptr::null_mut();
        (*wrapper).base.pMethods = std::ptr::null();
        if written != ffi::SQLITE_OK { written } else { closed }
    }
}

/// Methods that must see the file as written: the gathered bytes go out
/// first, then the default VFS's method runs.
macro_rules! after_writing_out {
    ($name:ident, $method:ident, $missing:expr, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: SQLite calls this on a file `open` wrapped.
            unsafe {
                match written_out(file) {
                    Ok((inner, methods)) => match methods.$method {
                        Some(method) => method(inner $(, $arg)*),
                        None => $missing,
                    },
                    Err(code) => code,
                }
            }
        }
    };
}

/// Methods that do not read or write the file's bytes: straight to the
/// default VFS.
macro_rules! passed_through {
    ($name:ident, $method:ident, $returns:ty, $missing:expr, ($($arg:ident: $ty:ty),*)) => {
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> $returns {
            // SAFETY: SQLite calls this on a file `open` wrapped.
            unsafe {
                let (inner, methods) = inner(file);
                match methods.$method {
                    Some(method) => method(inner $(, $arg)*),
                    None => $missing,
                }
            }
        }
    };
}

after_writing_out!(read, xRead, ffi::SQLITE_IOERR_READ, (buffer: *mut c_void, amount: c_int, offset: i64));
after_writing_out!(truncate, xTruncate, ffi::SQLITE_IOERR_TRUNCATE, (size: i64));
after_writing_out!(sync, xSync, ffi::SQLITE_IOERR_FSYNC, (flags: c_int));
after_writing_out!(file_size, xFileSize, ffi::SQLITE_IOERR_FSTAT, (size: *mut i64));
after_writing_out!(file_control, xFileControl, ffi::SQLITE_NOTFOUND, (op: c_int, argument: *mut c_void));
after_writing_out!(fetch, xFetch, ffi::SQLITE_OK, (offset: i64, amount: c_int, pointer: *mut *mut c_void));
passed_through!(lock, xLock, c_int, ffi::SQLITE_OK, (level: c_int));
passed_through!(unlock, xUnlock, c_int, ffi::SQLITE_OK, (level: c_int));
passed_through!(check_reserved_lock, xCheckReservedLock, c_int, ffi::SQLITE_OK, (reserved: *mut c_int));
passed_through!(sector_size, xSectorSize, c_int, 4096, ());
passed_through!(device_characteristics, xDeviceCharacteristics, c_int, 0, ());
passed_through!(shm_map, xShmMap, c_int, ffi::SQLITE_IOERR_SHMMAP, (region: c_int, size: c_int, extend: c_int, pointer: *mut *mut c_void));
passed_through!(shm_lock, xShmLock, c_int, ffi::SQLITE_IOERR_SHMLOCK, (offset: c_int, count: c_int, flags: c_int));
passed_through!(shm_unmap, xShmUnmap, c_int, ffi::SQLITE_OK, (delete: c_int));
passed_through!(unfetch, xUnfetch, c_int, ffi::SQLITE_OK, (offset: i64, pointer: *mut c_void));

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: SQLite calls this on a file `open` wrapped.
    unsafe {
        let (inner, methods) = inner(file);
        if let Some(barrier) = methods.xShmBarrier {
            barrier(inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rusqlite::{Connection, OpenFlags};
    use std::path::Path;

    fn writer(path: &Path) -> Connection {
        let connection = Connection::open_with_flags_and_vfs(path, OpenFlags::default(), register().expect("register"))
            .expect("open");
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT NOT NULL);",
            )
            .expect("configure");
        connection
    }

    /// What a restart after `kill -9` finds: the database and WAL files as
    /// they are now, copied through the page cache and opened anew (SQLite
    /// rebuilds the WAL index from the WAL, checking every frame's
    /// checksum, so a commit frame not fully in the file is lost).
    fn after_a_crash(path: &Path, copy: &Path) -> (i64, i64) {
        for suffix in ["", "-wal"] {
            let from = format!("{}{suffix}", path.display());
            let to = format!("{}{suffix}", copy.display());
            std::fs::copy(from, to).expect("copy");
        }
        let _ = std::fs::remove_file(format!("{}-shm", copy.display()));
        rows_and_length(&Connection::open(copy).expect("open copy"))
    }

    /// The rows of `t` and the sum of their values' lengths.
    fn rows_and_length(connection: &Connection) -> (i64, i64) {
        connection
            .query_row("SELECT count(*), coalesce(sum(length(v)), 0) FROM t", [], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .expect("count")
    }

    #[test]
    fn every_commit_is_in_the_files_when_it_returns() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("db");
        let copy = dir.path().join("copy");
        let connection = writer(&path);
        // A tiny page cache: large transactions spill pages into the WAL
        // before their commit and write some of them again, which makes
        // SQLite overwrite frames and rewrite their checksums.
        connection.execute_batch("PRAGMA cache_size = 8;").expect("cache size");
        let reader = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY).expect("reader");
        let (mut rows, mut length) = (0_i64, 0_i64);
        for round in 0..60_i64 {
            let transaction = connection.unchecked_transaction().expect("begin");
            // Every third round a large transaction that also rewrites
            // every row it wrote earlier in the same transaction.
            let count = if round % 3 == 0 { 400 } else { 1 + round % 5 };
            for passes in 0..(if round % 3 == 0 { 2 } else { 1 }) {
                for index in 0..count {
                    let key = round * 1_000 + index;
                    let value = "x".repeat(usize::try_from(100 + (index * 37 + passes) % 900).expect("length"));
                    transaction
                        .execute("INSERT OR REPLACE INTO t (k, v) VALUES (?1, ?2)", (key, &value))
                        .expect("insert");
                    if passes == 1 || round % 3 != 0 {
                        rows += 1;
                        length += i64::try_from(value.len()).expect("length");
                    }
                }
            }
            transaction.commit().expect("commit");
            assert_eq!(
                rows_and_length(&reader),
                (rows, length),
                "another connection after round {round}"
            );
            assert_eq!(
                after_a_crash(&path, &copy),
                (rows, length),
                "after a crash in round {round}"
            );
        }
    }

    #[test]
    fn a_rolled_back_transaction_leaves_the_committed_ones_readable() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("db");
        let copy = dir.path().join("copy");
        let connection = writer(&path);
        connection.execute_batch("PRAGMA cache_size = 8;").expect("cache size");
        connection
            .execute("INSERT INTO t (k, v) VALUES (1, 'kept')", [])
            .expect("insert");
        {
            // Spills frames into the WAL, then rolls back.
            let transaction = connection.unchecked_transaction().expect("begin");
            for key in 2..600 {
                transaction
                    .execute("INSERT INTO t (k, v) VALUES (?1, ?2)", (key, "y".repeat(500)))
                    .expect("insert");
            }
            transaction.rollback().expect("rollback");
        }
        connection
            .execute("INSERT INTO t (k, v) VALUES (2, 'after')", [])
            .expect("insert");
        assert_eq!(after_a_crash(&path, &copy), (2, 9));
    }
}
