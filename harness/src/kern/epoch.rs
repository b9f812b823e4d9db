//! epoch(9) and the network epoch: `_epoch_enter_preempt`,
//! `_epoch_exit_preempt`, `in_epoch`, `epoch_wait_preempt`... and the
//! epochs `net_epoch_preempt`, `global_epoch`, `global_epoch_preempt`.
//!
//! Each kernel thread (`struct thread`) has a stack of open sections: the
//! epoch and the caller's tracker. The checks are those of an INVARIANTS
//! kernel and of the netgraph and socket contracts:
//!
//! * enter and exit pair on the same thread with the same tracker, innermost
//!   first; a tracker is not reused while its section is open;
//! * nothing sleeps inside a section ([`assert_not_in_epoch`], called by
//!   every may-sleep check of the model: `_sleep`, `M_WAITOK` allocations,
//!   `NG_WAITOK` items, sleepable sx locks, `socreate`/`soclose`,
//!   `kern_kldload`, `epoch_wait_preempt`);
//! * a module method returns with the sections it opened closed.
//!
//! The model itself opens sections where FreeBSD runs in the network epoch:
//! netgraph queue threads around data and function items, callouts, and the
//! network thread around socket upcalls ([`Section`]). Which calls must run
//! inside it is checked where they are modelled (netgraph data delivery).

use std::collections::HashMap;
use std::ffi::{c_int, c_void};
use std::sync::{Mutex, OnceLock};

use crate::arena;
use crate::exports::Exports;
use crate::kern::thread::curthread;
use crate::kern::violation;

/// Size of an epoch object (opaque to modules; only its address matters).
const EPOCH_BYTES: usize = 64;

struct Epochs {
    /// (object, exported `epoch_t` variable, name)
    list: Vec<(usize, usize, &'static str)>,
}

fn epochs() -> &'static Epochs {
    static E: OnceLock<Epochs> = OnceLock::new();
    E.get_or_init(|| {
        let list = ["net_epoch_preempt", "global_epoch", "global_epoch_preempt"]
            .into_iter()
            .map(|name| {
                let obj = arena::alloc(EPOCH_BYTES, 64) as usize;
                let cell: *mut usize = arena::alloc_obj();
                // SAFETY: a fresh arena cell of pointer size.
                unsafe { *cell = obj };
                (obj, cell as usize, name)
            })
            .collect();
        Epochs { list }
    })
}

/// The network epoch object (`net_epoch_preempt`).
pub fn net_epoch() -> usize {
    epochs().list[0].0
}

fn epoch_name(e: usize) -> Option<&'static str> {
    epochs().list.iter().find(|x| x.0 == e).map(|x| x.2)
}

/// Open sections by thread: (epoch, tracker), innermost last.
type Open = HashMap<usize, Vec<(usize, usize)>>;
static OPEN: Mutex<Option<Open>> = Mutex::new(None);

fn with_open<R>(f: impl FnOnce(&mut Open) -> R) -> R {
    let mut g = OPEN.lock().unwrap_or_else(|e| e.into_inner());
    f(g.get_or_insert_with(HashMap::new))
}

fn enter(epoch: usize, et: usize, what: &str) {
    let td = curthread() as usize;
    let reused = with_open(|o| {
        o.values()
            .flat_map(|v| v.iter())
            .any(|&(_, t)| t == et && et != 0)
    });
    if reused {
        violation(format!(
            "{what}: tracker {et:#x} is already in use by an open epoch section"
        ));
        return;
    }
    with_open(|o| o.entry(td).or_default().push((epoch, et)));
}

fn exit(epoch: usize, et: usize, what: &str) {
    let td = curthread() as usize;
    let r = with_open(|o| {
        let v = o.entry(td).or_default();
        match v.iter().rposition(|&x| x == (epoch, et)) {
            Some(i) if i + 1 == v.len() => {
                v.pop();
                Ok(())
            }
            Some(i) => {
                v.remove(i);
                Err("is not the innermost open section (sections must close in reverse order)")
            }
            None => Err("was not entered by this thread"),
        }
    });
    if let Err(why) = r {
        let name = epoch_name(epoch).unwrap_or("an unknown epoch");
        violation(format!(
            "{what}: the section of {name} with tracker {et:#x} {why}"
        ));
    }
}

/// Open sections of the current thread.
pub fn depth() -> usize {
    let td = curthread() as usize;
    with_open(|o| o.get(&td).map_or(0, Vec::len))
}

/// Is the current thread inside the network epoch?
pub fn in_net_epoch() -> bool {
    let td = curthread() as usize;
    let e = net_epoch();
    with_open(|o| o.get(&td).is_some_and(|v| v.iter().any(|x| x.0 == e)))
}

/// Reports a violation if the current thread is inside an epoch section
/// (`what` may sleep or take a sleepable lock).
pub fn assert_not_in_epoch(what: &str) {
    let td = curthread() as usize;
    let open: Vec<usize> = with_open(|o| {
        o.get(&td)
            .map(|v| v.iter().map(|x| x.0).collect())
            .unwrap_or_default()
    });
    if let Some(&e) = open.last() {
        let name = epoch_name(e).unwrap_or("an epoch");
        let name = if name == "net_epoch_preempt" {
            "the network epoch"
        } else {
            name
        };
        violation(format!("{what}: sleeping inside {name}"));
    }
}

/// Reports sections a module method left open: the thread had `before`
/// open sections when `what` was called. The extra ones are closed.
pub fn check_left(what: &str, before: usize) {
    let td = curthread() as usize;
    let extra: Vec<(usize, usize)> = with_open(|o| {
        let v = o.entry(td).or_default();
        if v.len() > before {
            v.split_off(before)
        } else {
            Vec::new()
        }
    });
    for (e, et) in extra {
        violation(format!(
            "{what} returned inside a section of {} it entered (tracker {et:#x}; \
             NET_EPOCH_EXIT missing)",
            epoch_name(e).unwrap_or("an epoch")
        ));
    }
}

/// Reports (and closes) every section the current thread has open (end
/// of a scenario step or of a thread's work).
pub fn check_none(context: &str) {
    check_left(context, 0);
}

/// A section of the network epoch the model opens (queue threads, callouts,
/// upcalls): entered on creation, left on drop.
pub struct Section {
    et: Box<u64>,
}

impl Section {
    /// Enters the network epoch on the current thread.
    pub fn net() -> Section {
        let et = Box::new(0u64);
        enter(net_epoch(), &*et as *const u64 as usize, "NET_EPOCH_ENTER");
        Section { et }
    }
}

impl Drop for Section {
    fn drop(&mut self) {
        exit(
            net_epoch(),
            &*self.et as *const u64 as usize,
            "NET_EPOCH_EXIT",
        );
    }
}

/// Runs `f` inside the network epoch unless the thread already is.
pub fn in_net<R>(f: impl FnOnce() -> R) -> R {
    let _s = (!in_net_epoch()).then(Section::net);
    f()
}

/// Runs `f` outside the network epoch: the current thread's open sections
/// are set aside meanwhile (a queue thread around a message item).
pub fn outside<R>(f: impl FnOnce() -> R) -> R {
    let td = curthread() as usize;
    let saved = with_open(|o| o.remove(&td)).unwrap_or_default();
    let r = f();
    with_open(|o| {
        let v = o.entry(td).or_default();
        let inner = std::mem::replace(v, saved);
        v.extend(inner);
    });
    r
}

// ---- exported kernel functions -------------------------------------------

fn known(epoch: *mut c_void, what: &str) -> bool {
    if epoch_name(epoch as usize).is_some() {
        return true;
    }
    violation(format!("{what}: {epoch:p} is not an epoch"));
    false
}

unsafe extern "C" fn k_epoch_enter_preempt(epoch: *mut c_void, et: *mut c_void) {
    if !known(epoch, "epoch_enter_preempt") {
        return;
    }
    if et.is_null() {
        violation("epoch_enter_preempt: NULL tracker");
        return;
    }
    enter(epoch as usize, et as usize, "epoch_enter_preempt");
}

unsafe extern "C" fn k_epoch_exit_preempt(epoch: *mut c_void, et: *mut c_void) {
    if !known(epoch, "epoch_exit_preempt") {
        return;
    }
    exit(epoch as usize, et as usize, "epoch_exit_preempt");
}

unsafe extern "C" fn k_epoch_enter(epoch: *mut c_void) {
    if known(epoch, "epoch_enter") {
        enter(epoch as usize, 0, "epoch_enter");
    }
}

unsafe extern "C" fn k_epoch_exit(epoch: *mut c_void) {
    if known(epoch, "epoch_exit") {
        exit(epoch as usize, 0, "epoch_exit");
    }
}

unsafe extern "C" fn k_in_epoch(epoch: *mut c_void) -> c_int {
    let td = curthread() as usize;
    let e = epoch as usize;
    c_int::from(with_open(|o| {
        o.get(&td).is_some_and(|v| v.iter().any(|x| x.0 == e))
    }))
}

unsafe extern "C" fn k_in_epoch_verbose(epoch: *mut c_void, _dump: c_int) -> c_int {
    // SAFETY: same contract.
    unsafe { k_in_epoch(epoch) }
}

unsafe extern "C" fn k_epoch_wait_preempt(epoch: *mut c_void) {
    if known(epoch, "epoch_wait_preempt") {
        crate::kern::lock::assert_may_sleep("epoch_wait_preempt");
    }
}

/// Exports the epoch functions and the epoch variables.
pub fn register(ex: &mut Exports) {
    ex.func(
        "_epoch_enter_preempt",
        k_epoch_enter_preempt as *const () as usize,
    );
    ex.func(
        "_epoch_exit_preempt",
        k_epoch_exit_preempt as *const () as usize,
    );
    ex.func("epoch_enter", k_epoch_enter as *const () as usize);
    ex.func("epoch_exit", k_epoch_exit as *const () as usize);
    ex.func("in_epoch", k_in_epoch as *const () as usize);
    ex.func("in_epoch_verbose", k_in_epoch_verbose as *const () as usize);
    ex.func(
        "epoch_wait_preempt",
        k_epoch_wait_preempt as *const () as usize,
    );
    ex.func("epoch_wait", k_epoch_wait_preempt as *const () as usize);
    for &(_, cell, name) in &epochs().list {
        ex.data(name, cell);
    }
}
