//! Kernel-instance storage: the state of one running kernel (its event
//! loop, sockets, netgraph core...), shared by every OS thread that runs
//! that kernel.
//!
//! A kernel instance starts on the first OS thread that touches kernel
//! state, and that thread keeps it for its lifetime; so independent unit
//! tests, each on its own thread, still get independent kernels. The
//! threads of the SMP model (`kern::smp`: virtual CPUs running netgraph
//! workers, the network and timer threads, system calls of client
//! processes) join the instance of the thread that started them.
//!
//! [`kernel_local!`] declares such state like `thread_local!` does, with the
//! same `NAME.with(|v| ...)` access. Sharing is sound because the threads of
//! one instance never run at the same time: the SMP scheduler hands one run
//! token from thread to thread through a mutex, and a thread only touches
//! kernel state while it holds the token.
//!
//! While a `with` closure runs, the thread is "inside the model": the SMP
//! scheduler never switches threads there (a switch inside a `RefCell`
//! borrow would let another thread see the state half-updated).

use std::any::Any;
use std::cell::{Cell, OnceCell, RefCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// Most kernel-local variables one harness may declare.
const MAX_LOCALS: usize = 64;

/// The state of one kernel instance.
pub struct Instance {
    id: u64,
    slots: [OnceCell<Box<dyn Any>>; MAX_LOCALS],
    /// The SMP machine of this instance, once started (`kern::smp`).
    pub(crate) smp: OnceCell<Arc<crate::kern::smp::Machine>>,
}

// SAFETY: the threads sharing an instance run one at a time (module
// documentation): the run token is handed over through a mutex, which orders
// every access of one thread before the next thread's.
unsafe impl Sync for Instance {}
// SAFETY: as above.
unsafe impl Send for Instance {}

impl Instance {
    fn new() -> Instance {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Instance {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            slots: std::array::from_fn(|_| OnceCell::new()),
            smp: OnceCell::new(),
        }
    }

    /// A number identifying the instance in the process.
    pub fn id(&self) -> u64 {
        self.id
    }
}

thread_local! {
    static CURRENT: RefCell<Option<Arc<Instance>>> = const { RefCell::new(None) };
    static DEPTH: Cell<u32> = const { Cell::new(0) };
}

/// The kernel instance of this OS thread (started on first use).
pub fn current() -> Arc<Instance> {
    let (inst, fresh) = CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        match &*c {
            Some(i) => (i.clone(), false),
            None => {
                let i = Arc::new(Instance::new());
                *c = Some(i.clone());
                (i, true)
            }
        }
    });
    if fresh {
        crate::kern::smp::instance_started(&inst);
    }
    inst
}

/// The kernel instance of this OS thread, if it has one (never starts one;
/// `None` also while the thread is exiting).
pub fn try_current() -> Option<Arc<Instance>> {
    CURRENT
        .try_with(|c| c.try_borrow().ok().and_then(|c| c.clone()))
        .ok()
        .flatten()
}

/// Makes this OS thread run kernel instance `inst` (threads of the SMP
/// model, before they touch any state).
pub(crate) fn adopt(inst: Arc<Instance>) {
    CURRENT.with(|c| *c.borrow_mut() = Some(inst));
}

/// True while this thread is inside a [`KernelLocal::with`] closure.
pub fn in_model() -> bool {
    DEPTH.try_with(Cell::get).unwrap_or(0) > 0
}

/// Runs `f` counted as "inside the model" (no thread switch in it).
pub fn inside<R>(f: impl FnOnce() -> R) -> R {
    struct Guard;
    impl Drop for Guard {
        fn drop(&mut self) {
            let _ = DEPTH.try_with(|d| d.set(d.get() - 1));
        }
    }
    let _ = DEPTH.try_with(|d| d.set(d.get() + 1));
    let _g = Guard;
    f()
}

/// A variable with one value per kernel instance; see [`kernel_local!`].
pub struct KernelLocal<T: 'static> {
    init: fn() -> T,
    slot: AtomicUsize,
}

static NEXT_SLOT: AtomicUsize = AtomicUsize::new(0);

impl<T: 'static> KernelLocal<T> {
    #[doc(hidden)]
    pub const fn new(init: fn() -> T) -> KernelLocal<T> {
        KernelLocal {
            init,
            slot: AtomicUsize::new(usize::MAX),
        }
    }

    fn index(&self) -> usize {
        let s = self.slot.load(Ordering::Acquire);
        if s != usize::MAX {
            return s;
        }
        let n = NEXT_SLOT.fetch_add(1, Ordering::AcqRel);
        assert!(n < MAX_LOCALS, "harness: too many kernel_local! variables");
        match self
            .slot
            .compare_exchange(usize::MAX, n, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => n,
            Err(other) => other,
        }
    }

    /// Runs `f` on this instance's value (created on first use).
    pub fn with<R>(&'static self, f: impl FnOnce(&T) -> R) -> R {
        let inst = current();
        let slot = &inst.slots[self.index()];
        let any = slot.get_or_init(|| Box::new((self.init)()));
        let v = any
            .downcast_ref::<T>()
            .expect("harness: kernel-local slot of another type");
        inside(|| f(v))
    }
}

/// Declares kernel-instance variables (see the module documentation):
///
/// ```text
/// kernel_local! {
///     static STATE: RefCell<State> = RefCell::new(State::new());
/// }
/// ```
///
/// Also for tests: state that kernel callbacks write and the test reads is
/// the kernel's, whichever of its threads runs the callback.
#[macro_export]
macro_rules! kernel_local {
    ($($(#[$m:meta])* $vis:vis static $name:ident : $t:ty = $init:expr;)+) => {
        $(
            $(#[$m])*
            $vis static $name: $crate::kern::klocal::KernelLocal<$t> =
                $crate::kern::klocal::KernelLocal::new({
                    fn init() -> $t {
                        $init
                    }
                    init
                });
        )+
    };
}
pub use kernel_local;
