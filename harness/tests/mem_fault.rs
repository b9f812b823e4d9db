//! Failure injection: plan syntax, M_NOWAIT failures at the planned point,
//! M_WAITOK never failing, type / class / site filters, counters.

mod mem_util;

use std::ffi::c_int;

use fbsd_sys::{MT_DATA, M_NOWAIT, M_PKTHDR, M_WAITOK};
use mem_util::*;
use ngharness::kern::fault::{self, Class, FaultPlan, Rule, Site, Trigger};
use ngharness::kern::malloc::{self, abi};
use ngharness::kern::mbuf as kmbuf;

const NOWAIT: c_int = M_NOWAIT as c_int;
const WAITOK: c_int = M_WAITOK as c_int;

#[test]
fn plan_syntax() {
    let _g = serial();
    let p = FaultPlan::parse("malloc:every=7").unwrap();
    assert_eq!(p.rules, vec![Rule::new(Class::Malloc, Trigger::Every(7))]);
    let p = FaultPlan::parse("mbuf:nth=3").unwrap();
    assert_eq!(p.rules, vec![Rule::new(Class::Mbuf, Trigger::Nth(3))]);
    let p = FaultPlan::parse("type=netgraph_ksock:nth=2").unwrap();
    assert_eq!(
        p.rules,
        vec![Rule::new(Class::Malloc, Trigger::Nth(2)).with_type("netgraph_ksock")]
    );
    let p =
        FaultPlan::parse(" site=ng_ksocket_rcvdata:from=2 ; tag:always:max=1 , ngitem").unwrap();
    assert_eq!(
        p.rules,
        vec![
            Rule::new(Class::All, Trigger::From(2)).with_site("ng_ksocket_rcvdata"),
            Rule::new(Class::Tag, Trigger::Always).with_max(1),
            Rule::new(Class::Other("ngitem".into()), Trigger::Always),
        ]
    );
    assert_eq!(FaultPlan::parse("").unwrap(), FaultPlan::none());
    for bad in [
        "malloc:every=0",
        "malloc:nth=x",
        "malloc:mbuf",
        "colour=red",
    ] {
        assert!(FaultPlan::parse(bad).is_err(), "{bad:?} must be rejected");
    }
    expect_clean();
}

#[test]
fn nowait_malloc_fails_at_the_planned_point_only() {
    let _g = serial();
    let ty = malloc::harness_type("temp");
    fault::configure(FaultPlan::parse("malloc:nth=3").unwrap());
    let mut got = Vec::new();
    // SAFETY: plain malloc(9) calls.
    unsafe {
        for _ in 0..5 {
            got.push(abi::malloc(16, ty, NOWAIT));
        }
        // M_WAITOK is never offered to the plan and never fails.
        fault::configure(FaultPlan::parse("all:always").unwrap());
        let w = abi::malloc(16, ty, WAITOK);
        assert!(!w.is_null());
        abi::free(w, ty);
        assert_eq!(fault::counters().considered, 0);
        let n = abi::malloc(16, ty, NOWAIT);
        assert!(n.is_null());
        for p in &got {
            abi::free(*p, ty);
        }
    }
    let nulls: Vec<bool> = got.iter().map(|p| p.is_null()).collect();
    assert_eq!(nulls, [false, false, true, false, false]);
    assert_eq!(fault::injected(), 1);
    expect_clean();
}

#[test]
fn every_and_type_filters() {
    let _g = serial();
    let temp = malloc::harness_type("temp");
    let ng = malloc::harness_type("netgraph");
    fault::configure(FaultPlan::parse("type=netgraph:every=2").unwrap());
    let mut pattern = Vec::new();
    // SAFETY: plain malloc(9) calls.
    unsafe {
        for i in 0..6 {
            let ty = if i % 2 == 0 { temp } else { ng };
            let p = abi::malloc(8, ty, NOWAIT);
            pattern.push((i % 2 == 1, p.is_null()));
            abi::free(p, ty);
        }
    }
    // netgraph allocations #1, #2, #3 -> the 2nd fails; temp never.
    assert_eq!(
        pattern,
        [
            (false, false),
            (true, false),
            (false, false),
            (true, true),
            (false, false),
            (true, false)
        ]
    );
    let c = fault::counters();
    assert_eq!((c.considered, c.injected, c.malloc), (6, 1, 1));
    assert_eq!(fault::injections().len(), 1);
    assert!(fault::injections()[0].contains("malloc(netgraph)"));
    expect_clean();
}

#[test]
fn mbuf_class_counts_only_mbuf_allocations() {
    let _g = serial();
    fault::configure(FaultPlan::parse("mbuf:nth=2").unwrap());
    let ty = malloc::harness_type("temp");
    // SAFETY: mbuf and malloc calls as a module makes them.
    unsafe {
        let a = kmbuf::abi::m_get2(10, NOWAIT, MT_DATA as i16, M_PKTHDR as c_int);
        let x = abi::malloc(8, ty, NOWAIT);
        let b = kmbuf::abi::m_get2(10, NOWAIT, MT_DATA as i16, M_PKTHDR as c_int);
        let c = kmbuf::abi::m_get2(10, WAITOK, MT_DATA as i16, M_PKTHDR as c_int);
        assert!(!a.is_null() && !x.is_null() && b.is_null() && !c.is_null());
        kmbuf::abi::m_freem(a);
        kmbuf::abi::m_freem(c);
        abi::free(x, ty);
    }
    assert_eq!(fault::counters().mbuf, 1);
    expect_clean();
}

fn resolver(addr: usize) -> Option<String> {
    (addr != 0).then(|| format!("ng_fake_rcvdata+{:#x}", addr & 0xf))
}

#[test]
fn site_filter_uses_the_resolver() {
    let _g = serial();
    let ty = malloc::harness_type("temp");
    fault::configure(FaultPlan::parse("site=ng_fake_rcvdata:always").unwrap());
    // SAFETY: plain malloc(9) calls.
    unsafe {
        let p = abi::malloc(8, ty, NOWAIT);
        assert!(
            !p.is_null(),
            "no resolver: the address does not contain the symbol name"
        );
        abi::free(p, ty);
        fault::set_site_resolver(resolver);
        let q = abi::malloc(8, ty, NOWAIT);
        assert!(q.is_null(), "resolved caller matches");
        fault::clear_site_resolver();
    }
    // Harness callers match on their file name.
    fault::configure(FaultPlan::parse("site=mem_fault.rs:nth=1").unwrap());
    assert!(malloc::kmalloc(8, ty, NOWAIT).is_null());
    assert!(!fault::should_fail(&Site::Other("x")));
    expect_clean();
}

#[test]
fn other_sites_for_harness_parts() {
    let _g = serial();
    fault::configure(FaultPlan::parse("ngitem:nth=2").unwrap());
    assert!(!fault::should_fail(&Site::Other("ngitem")));
    assert!(!fault::should_fail(&Site::Mbuf));
    assert!(fault::should_fail(&Site::Other("ngitem")));
    assert!(!fault::should_fail(&Site::Other("ngitem")));
    // `all` does not include other parts' private sites.
    fault::configure(FaultPlan::parse("all").unwrap());
    assert!(!fault::should_fail(&Site::Other("ngitem")));
    assert!(fault::should_fail(&Site::Malloc("temp")));
    assert_eq!(fault::counters().other, 0);
    expect_clean();
}

#[test]
fn plan_from_environment() {
    let _g = serial();
    std::env::set_var(fault::ENV, "tag:nth=1");
    let r = fault::init_from_env();
    std::env::remove_var(fault::ENV);
    r.unwrap();
    assert!(fault::should_fail(&Site::Tag));
    assert!(!fault::should_fail(&Site::Tag));
    std::env::set_var(fault::ENV, "malloc:every=x");
    let r = fault::init_from_env();
    std::env::remove_var(fault::ENV);
    assert!(r.unwrap_err().contains("bad number"));
    fault::clear();
    expect_clean();
}
