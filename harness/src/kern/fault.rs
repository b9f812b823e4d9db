//! Allocation-failure injection, shared by malloc(9), the mbuf allocator and
//! mbuf tags.
//!
//! Only `M_NOWAIT` allocations are ever offered to the plan (an `M_WAITOK`
//! allocation cannot fail in FreeBSD, so it never fails here either). Every
//! offered allocation is counted by every rule whose filters match it; a rule
//! whose trigger fires makes that allocation return NULL.
//!
//! # Plan syntax (`NGHARNESS_FAIL` and [`FaultPlan::parse`])
//!
//! A plan is a list of rules separated by `,` or `;`. A rule is a list of
//! terms separated by `:`:
//!
//! | term | meaning |
//! |---|---|
//! | `malloc`, `mbuf`, `tag`, `all` | which allocations the rule looks at (default `all`); any other bare word `W` selects allocations offered as [`Site::Other`]`(W)` |
//! | `type=NAME` | malloc type short description (`vmstat -m` name), exact; implies `malloc` (tags count as type `mbuf_tag`) |
//! | `site=TEXT` | the calling site must contain `TEXT` (the caller's symbol through the resolver set by [`set_site_resolver`], else its hex address, or `file:line` for harness callers) |
//! | `nth=N` | fail only the N-th matching allocation |
//! | `every=N` | fail the N-th, 2N-th, 3N-th ... matching allocation |
//! | `from=N` | fail the N-th and every later matching allocation |
//! | `always` | fail every matching allocation (the default trigger) |
//! | `max=K` | stop after this rule injected K failures |
//!
//! Examples: `malloc:every=7`, `mbuf:nth=3`, `type=netgraph_ksock:nth=2`,
//! `site=ng_ksocket_rcvdata:from=1`, `mbuf:nth=1;tag:always`.

use std::fmt;
use std::panic::Location;
use std::sync::Mutex;

/// Where an allocation (or any other checked call) came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Not known (e.g. a Rust caller that did not pass its location).
    Unknown,
    /// Return address into the calling code (module text, usually).
    Addr(usize),
    /// A harness-internal Rust caller.
    Rust(&'static Location<'static>),
}

impl Caller {
    /// The calling Rust location (use in `#[track_caller]` functions).
    #[track_caller]
    pub fn here() -> Caller {
        Caller::Rust(Location::caller())
    }

    /// The raw return address, if the caller is module (or C) code.
    pub fn addr(&self) -> Option<usize> {
        match self {
            Caller::Addr(a) => Some(*a),
            _ => None,
        }
    }

    /// Text matched by `site=` rules: the resolved symbol (if a resolver is
    /// set and knows the address) followed by the hex address.
    pub fn match_text(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Caller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Caller::Unknown => write!(f, "<unknown caller>"),
            Caller::Addr(a) => match resolve(*a) {
                Some(sym) => write!(f, "{sym} ({a:#x})"),
                None => write!(f, "{a:#x}"),
            },
            Caller::Rust(l) => write!(f, "harness {}:{}", l.file(), l.line()),
        }
    }
}

/// What kind of allocation is being attempted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Site<'a> {
    /// `malloc(9)` with the malloc type of this short description.
    Malloc(&'a str),
    /// An mbuf, cluster or packet (mbuf + cluster) from the mbuf zones.
    Mbuf,
    /// `m_tag_alloc` (malloc type `mbuf_tag`).
    Tag,
    /// Any other allocation a harness part wants to make injectable
    /// (selected by the bare word `NAME` in a plan).
    Other(&'a str),
}

/// Which allocations a rule looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Class {
    All,
    Malloc,
    Mbuf,
    Tag,
    Other(String),
}

/// When a rule fires, counted over the allocations it matched (1-based).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trigger {
    Always,
    Nth(u64),
    Every(u64),
    From(u64),
}

/// One rule of a [`FaultPlan`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub class: Class,
    pub type_name: Option<String>,
    pub site: Option<String>,
    pub trigger: Trigger,
    pub max: Option<u64>,
    seen: u64,
    injected: u64,
}

impl Rule {
    /// A rule matching `class` with trigger `trigger` and no other filter.
    pub fn new(class: Class, trigger: Trigger) -> Rule {
        Rule {
            class,
            type_name: None,
            site: None,
            trigger,
            max: None,
            seen: 0,
            injected: 0,
        }
    }

    /// Restricts the rule to malloc type `name`.
    pub fn with_type(mut self, name: &str) -> Rule {
        self.type_name = Some(name.to_string());
        if self.class == Class::All {
            self.class = Class::Malloc;
        }
        self
    }

    /// Restricts the rule to callers whose description contains `text`.
    pub fn with_site(mut self, text: &str) -> Rule {
        self.site = Some(text.to_string());
        self
    }

    /// Caps the number of failures this rule injects.
    pub fn with_max(mut self, k: u64) -> Rule {
        self.max = Some(k);
        self
    }

    fn matches(&self, site: &Site, site_text: Option<&str>) -> bool {
        let class_ok = match (&self.class, site) {
            (Class::All, Site::Other(_)) => false,
            (Class::All, _) => true,
            (Class::Malloc, Site::Malloc(_)) => true,
            // A tag is a malloc(9) allocation of type mbuf_tag in FreeBSD.
            (Class::Malloc, Site::Tag) => self.type_name.as_deref() == Some(TAG_TYPE),
            (Class::Mbuf, Site::Mbuf) => true,
            (Class::Tag, Site::Tag) => true,
            (Class::Other(w), Site::Other(n)) => w == n,
            _ => false,
        };
        if !class_ok {
            return false;
        }
        if let Some(t) = &self.type_name {
            let name = match site {
                Site::Malloc(n) => *n,
                Site::Tag => TAG_TYPE,
                _ => return false,
            };
            if name != t {
                return false;
            }
        }
        match (&self.site, site_text) {
            (None, _) => true,
            (Some(pat), Some(text)) => text.contains(pat.as_str()),
            (Some(_), None) => false,
        }
    }

    fn fires(&self) -> bool {
        if let Some(k) = self.max {
            if self.injected >= k {
                return false;
            }
        }
        let n = self.seen;
        match self.trigger {
            Trigger::Always => true,
            Trigger::Nth(k) => n == k,
            Trigger::Every(k) => k != 0 && n.is_multiple_of(k),
            Trigger::From(k) => n >= k,
        }
    }
}

/// Malloc type short description of mbuf tags (`MBUF_TAG_MEM_NAME`).
pub const TAG_TYPE: &str = "mbuf_tag";

/// A failure-injection plan: a list of rules.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FaultPlan {
    pub rules: Vec<Rule>,
}

impl FaultPlan {
    /// The empty plan: nothing fails.
    pub fn none() -> FaultPlan {
        FaultPlan::default()
    }

    /// A plan with the single rule `rule`.
    pub fn rule(rule: Rule) -> FaultPlan {
        FaultPlan { rules: vec![rule] }
    }

    /// Adds a rule.
    pub fn and(mut self, rule: Rule) -> FaultPlan {
        self.rules.push(rule);
        self
    }

    /// Parses the `NGHARNESS_FAIL` syntax (see the module documentation).
    pub fn parse(text: &str) -> Result<FaultPlan, String> {
        let mut plan = FaultPlan::none();
        for rule_text in text
            .split([',', ';'])
            .map(str::trim)
            .filter(|r| !r.is_empty())
        {
            let mut rule = Rule::new(Class::All, Trigger::Always);
            let mut class_given = false;
            for term in rule_text
                .split(':')
                .map(str::trim)
                .filter(|t| !t.is_empty())
            {
                let num = |v: &str| -> Result<u64, String> {
                    v.parse::<u64>()
                        .map_err(|_| format!("fault plan: bad number {v:?} in {term:?}"))
                };
                match term.split_once('=') {
                    Some(("type", v)) => rule.type_name = Some(v.to_string()),
                    Some(("site", v)) => rule.site = Some(v.to_string()),
                    Some(("nth", v)) => rule.trigger = Trigger::Nth(num(v)?),
                    Some(("every", v)) => {
                        let k = num(v)?;
                        if k == 0 {
                            return Err(format!("fault plan: every=0 in {rule_text:?}"));
                        }
                        rule.trigger = Trigger::Every(k);
                    }
                    Some(("from", v)) => rule.trigger = Trigger::From(num(v)?),
                    Some(("max", v)) => rule.max = Some(num(v)?),
                    Some((k, _)) => {
                        return Err(format!("fault plan: unknown key {k:?} in {rule_text:?}"))
                    }
                    None if term == "always" => rule.trigger = Trigger::Always,
                    None => {
                        if class_given {
                            return Err(format!("fault plan: two selectors in {rule_text:?}"));
                        }
                        class_given = true;
                        rule.class = match term {
                            "malloc" => Class::Malloc,
                            "mbuf" => Class::Mbuf,
                            "tag" => Class::Tag,
                            "all" | "any" => Class::All,
                            w => Class::Other(w.to_string()),
                        };
                    }
                }
            }
            if rule.type_name.is_some() && rule.class == Class::All {
                rule.class = Class::Malloc;
            }
            plan.rules.push(rule);
        }
        Ok(plan)
    }
}

impl std::str::FromStr for FaultPlan {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultPlan::parse(s)
    }
}

/// Counters of the failure-injection machinery.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultCounters {
    /// `M_NOWAIT` allocations offered to the plan.
    pub considered: u64,
    /// Failures injected.
    pub injected: u64,
    /// ... of which malloc(9) allocations.
    pub malloc: u64,
    /// ... of which mbufs, clusters and packets.
    pub mbuf: u64,
    /// ... of which mbuf tags.
    pub tag: u64,
    /// ... of which other (harness) allocations.
    pub other: u64,
}

struct State {
    plan: FaultPlan,
    configured: bool,
    counters: FaultCounters,
    log: Vec<String>,
}

static STATE: Mutex<State> = Mutex::new(State {
    plan: FaultPlan { rules: Vec::new() },
    configured: false,
    counters: FaultCounters {
        considered: 0,
        injected: 0,
        malloc: 0,
        mbuf: 0,
        tag: 0,
        other: 0,
    },
    log: Vec::new(),
});

/// Maps a code address to a symbol description.
pub type SiteResolver = fn(usize) -> Option<String>;

static RESOLVER: Mutex<Option<SiteResolver>> = Mutex::new(None);

fn state() -> std::sync::MutexGuard<'static, State> {
    STATE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Environment variable holding the default plan.
pub const ENV: &str = "NGHARNESS_FAIL";

/// Installs `plan` (replacing any plan, including one from the environment)
/// and resets the counters.
pub fn configure(plan: FaultPlan) {
    let mut s = state();
    s.plan = plan;
    s.configured = true;
    s.counters = FaultCounters::default();
    s.log.clear();
}

/// Removes every rule: nothing fails any more. Counters are reset.
pub fn clear() {
    configure(FaultPlan::none());
}

/// Loads the plan from `NGHARNESS_FAIL` (an unset or empty variable is the
/// empty plan). Returns the parse error for a malformed plan.
pub fn init_from_env() -> Result<(), String> {
    let text = std::env::var(ENV).unwrap_or_default();
    let plan = FaultPlan::parse(&text).map_err(|e| format!("{ENV}={text:?}: {e}"))?;
    configure(plan);
    Ok(())
}

fn ensure_configured(s: &mut State) {
    if !s.configured {
        let text = std::env::var(ENV).unwrap_or_default();
        match FaultPlan::parse(&text) {
            Ok(p) => s.plan = p,
            Err(e) => panic!("harness: bad {ENV}={text:?}: {e}"),
        }
        s.configured = true;
    }
}

/// Should this `M_NOWAIT` allocation fail? (Caller unknown: rules with a
/// `site=` filter never match.)
pub fn should_fail(site: &Site) -> bool {
    should_fail_at(site, Caller::Unknown)
}

/// Should this `M_NOWAIT` allocation, made from `caller`, fail?
pub fn should_fail_at(site: &Site, caller: Caller) -> bool {
    // The site text may need the resolver (which may be slow or take other
    // locks): compute it outside our lock, and only if some rule needs it.
    let needs_site = {
        let mut s = state();
        ensure_configured(&mut s);
        s.plan.rules.iter().any(|r| r.site.is_some())
    };
    let text = match caller {
        Caller::Unknown => None,
        c if needs_site => Some(c.match_text()),
        _ => None,
    };
    let mut s = state();
    s.counters.considered += 1;
    let mut fail = false;
    for r in s.plan.rules.iter_mut() {
        if !r.matches(site, text.as_deref()) {
            continue;
        }
        r.seen += 1;
        if r.fires() {
            r.injected += 1;
            fail = true;
        }
    }
    if fail {
        s.counters.injected += 1;
        match site {
            Site::Malloc(_) => s.counters.malloc += 1,
            Site::Mbuf => s.counters.mbuf += 1,
            Site::Tag => s.counters.tag += 1,
            Site::Other(_) => s.counters.other += 1,
        }
        let n = s.counters.considered;
        let what = match site {
            Site::Malloc(t) => format!("malloc({t})"),
            Site::Mbuf => "mbuf".to_string(),
            Site::Tag => "m_tag_alloc".to_string(),
            Site::Other(w) => w.to_string(),
        };
        drop(s);
        let msg = format!("injected failure #{n}: {what} M_NOWAIT from {caller}");
        eprintln!("harness: fault: {msg}");
        state().log.push(msg);
    }
    fail
}

/// Counters since the last [`configure`].
pub fn counters() -> FaultCounters {
    state().counters
}

/// Number of failures injected since the last [`configure`].
pub fn injected() -> u64 {
    state().counters.injected
}

/// One line per injected failure since the last [`configure`].
pub fn injections() -> Vec<String> {
    state().log.clone()
}

/// Sets the function that maps a code address to a symbol description
/// (typically `module:symbol+0xoff`, provided by the loader).
pub fn set_site_resolver(f: SiteResolver) {
    *RESOLVER.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
}

/// Removes the resolver set by [`set_site_resolver`].
pub fn clear_site_resolver() {
    *RESOLVER.lock().unwrap_or_else(|e| e.into_inner()) = None;
}

/// Resolves `addr` through the registered resolver.
pub fn resolve(addr: usize) -> Option<String> {
    let f = *RESOLVER.lock().unwrap_or_else(|e| e.into_inner());
    f.and_then(|f| f(addr))
}
