//! The executor's tests: a recording runner fails at step k, and exactly the
//! steps before k are undone, in reverse; batches, signals and settling.

use super::*;
use crate::exec::runner::Recorder;

fn run(
    plan: &Plan,
    rec: &mut Recorder,
    interrupted: &dyn Fn() -> Option<i32>,
) -> Result<(), ExecError> {
    let mut applied = |_, _| Ok(());
    let mut watch = Watch {
        interrupted,
        applied: &mut applied,
        fail_at: None,
        kill_at: None,
        ask: None,
    };
    execute(plan, rec, &mut watch)
}

/// Five steps: `ip apply-N`, undone by `ip undo-N`. Step 3 runs in
/// namespace `red` and has no undo, so the plan runs as three batches:
/// steps 1-2, step 3, steps 4-5.
fn plan() -> Plan {
    let mut plan = Plan::default();
    for n in 1..=5 {
        let ns = (n == 3).then_some("red");
        let step = Step::new(Cmd::ip_in(ns, [format!("apply-{n}")]), "");
        plan.push(if n == 3 {
            step
        } else {
            step.undo(Cmd::ip([format!("undo-{n}")]))
        });
    }
    plan
}

fn applies(upto: usize) -> Vec<String> {
    (1..=upto)
        .map(|n| match n {
            3 => "ip -n red apply-3".to_string(),
            n => format!("ip apply-{n}"),
        })
        .collect()
}

#[test]
fn a_plan_that_succeeds_runs_every_step_once_in_order_in_batches() {
    let mut rec = Recorder::default();
    run(&plan(), &mut rec, &|| None).unwrap();
    assert_eq!(rec.calls, applies(5));
    assert_eq!(rec.processes, 3);
}

#[test]
fn failure_at_step_k_undoes_exactly_steps_before_k_in_reverse() {
    for k in 1..=5 {
        let mut rec = Recorder::failing_on([k]);
        let err = run(&plan(), &mut rec, &|| None).unwrap_err();
        let mut expected = applies(k);
        expected.extend(
            (1..k)
                .rev()
                .filter(|&n| n != 3)
                .map(|n| format!("ip undo-{n}")),
        );
        assert_eq!(rec.calls, expected, "failing at step {k}");
        assert_eq!((err.step, err.undone), (k, k - 1));
        assert!(err.undo_errors.is_empty());
    }
}

#[test]
fn a_failing_undo_does_not_stop_the_rollback_and_is_reported() {
    // Fail step 5 (call 5), then the undo of step 4 (call 6).
    let mut rec = Recorder::failing_on([5, 6]);
    let err = run(&plan(), &mut rec, &|| None).unwrap_err();
    assert_eq!(
        rec.calls[5..],
        ["ip undo-4", "ip undo-2", "ip undo-1"].map(String::from)
    );
    assert_eq!(err.undo_errors.len(), 1);
    let text = err.to_string();
    assert!(
        text.starts_with("step 5 of 5: `ip apply-5` failed (in a batch): injected failure"),
        "{text}"
    );
    assert!(
        text.contains("rollback incomplete") && text.contains("`ip undo-4`"),
        "{text}"
    );
}

#[test]
fn undo_runs_as_one_forced_batch_per_namespace() {
    let mut rec = Recorder::failing_on([5]);
    run(&plan(), &mut rec, &|| None).unwrap_err();
    // Three to apply, one for the three undos.
    assert_eq!(rec.processes, 4);
}

#[test]
fn a_signal_stops_before_the_next_batch_and_rolls_back() {
    let mut rec = Recorder::default();
    let calls = std::cell::Cell::new(0);
    // The signal arrives while step 3 (the second batch) runs.
    let interrupted = || {
        calls.set(calls.get() + 1);
        (calls.get() > 2).then_some(15)
    };
    let err = run(&plan(), &mut rec, &interrupted).unwrap_err();
    let mut expected = applies(3);
    expected.extend(["ip undo-2", "ip undo-1"].map(String::from));
    assert_eq!(rec.calls, expected);
    assert_eq!(
        err.to_string(),
        "interrupted by SIGTERM before step 4 of 5; undid the 3 completed step(s), nothing was changed"
    );
}

#[test]
fn the_steps_in_effect_are_told_before_each_batch_and_after_undo() {
    let mut rec = Recorder::failing_on([4]);
    let mut seen = Vec::new();
    let mut applied = |c, p| {
        seen.push((c, p));
        Ok(())
    };
    let mut watch = Watch {
        interrupted: &|| None,
        applied: &mut applied,
        fail_at: None,
        kill_at: None,
        ask: None,
    };
    execute(&plan(), &mut rec, &mut watch).unwrap_err();
    assert_eq!(seen, [(0, 2), (2, 3), (3, 5), (0, 0)]);
}

#[test]
fn fail_at_k_fails_step_k_unrun_and_splits_its_batch() {
    for k in 1..=5 {
        let mut rec = Recorder::default();
        let mut applied = |_, _| Ok(());
        let mut watch = Watch {
            interrupted: &|| None,
            applied: &mut applied,
            fail_at: Some(k),
            kill_at: None,
            ask: None,
        };
        let err = execute(&plan(), &mut rec, &mut watch).unwrap_err();
        assert_eq!((err.step, err.undone), (k, k - 1));
        assert_eq!(rec.calls[..k - 1], applies(k - 1), "fail at {k}");
        assert!(err.to_string().contains("injected failure"));
    }
}

#[test]
fn a_batch_that_dies_unnamed_undoes_its_steps_tolerantly() {
    let mut plan = Plan::default();
    for n in 1..=3 {
        plan.push(
            Step::new(Cmd::ip([format!("apply-{n}")]), "").undo(Cmd::ip([format!("undo-{n}")])),
        );
    }
    // None of the steps surely ran: every undo is tried, and their
    // failures (nothing to undo) are not errors.
    let mut rec = Recorder::failing_on([1, 2, 3]);
    let errors = rollback(&plan, 0, 3, &mut rec, &mut |_, _| Ok(()));
    assert_eq!(rec.calls, ["ip undo-3", "ip undo-2", "ip undo-1"]);
    assert!(errors.is_empty());
    // With step 1 certain, its undo's failure is reported.
    let mut rec = Recorder::failing_on([3]);
    let errors = rollback(&plan, 1, 3, &mut rec, &mut |_, _| Ok(()));
    assert_eq!(rec.calls, ["ip undo-3", "ip undo-2", "ip undo-1"]);
    assert_eq!(errors.len(), 1);
}

#[test]
fn the_error_names_the_failed_command_and_the_rollback() {
    let mut rec = Recorder::failing_on([2]);
    let err = run(&plan(), &mut rec, &|| None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "step 2 of 5: `ip apply-2` failed (in a batch): injected failure; \
         undid the 1 completed step(s), nothing was changed"
    );
}

#[test]
fn what_vanishes_asynchronously_is_waited_for_at_the_end_and_before_undo() {
    let mut plan = Plan::default();
    let mut del =
        Step::new(Cmd::ip(["netns", "del", "red"]), "").undo(Cmd::ip(["netns", "add", "red"]));
    del.settle = vec!["nv-red".into()];
    plan.push(del);
    plan.push(Step::new(Cmd::sysctl("k", "1"), ""));
    let mut rec = Recorder::default();
    run(&plan, &mut rec, &|| None).unwrap();
    assert_eq!(
        rec.calls,
        ["ip netns del red", "sysctl -w k=1", "ip -j link show"]
    );
    let mut rec = Recorder::failing_on([2]);
    run(&plan, &mut rec, &|| None).unwrap_err();
    assert_eq!(
        rec.calls,
        [
            "ip netns del red",
            "sysctl -w k=1",
            "ip -j link show",
            "ip netns add red"
        ]
    );
}

#[test]
fn a_single_command_runs_without_a_batch() {
    let mut plan = Plan::default();
    plan.push(Step::new(Cmd::ip(["link", "add", "x"]), ""));
    let mut rec = Recorder::failing_on([1]);
    let err = run(&plan, &mut rec, &|| None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "step 1 of 1: `ip link add x` failed (exit status 2): injected failure; \
         undid the 0 completed step(s), nothing was changed"
    );
}

/// Three tables, each a step restored by one process, undone one by one.
fn restores() -> Plan {
    use crate::plan::cmd::Tool;
    let mut plan = Plan::default();
    for table in ["nat", "filter", "raw"] {
        let text = |verb: &str| format!("*{table}\n-{verb} X -j ACCEPT\nCOMMIT\n");
        plan.push(
            Step::new(Cmd::restore(Tool::IptablesRestore, text("A")), "")
                .undo(Cmd::restore(Tool::IptablesRestore, text("D"))),
        );
    }
    plan
}

#[test]
fn tables_restore_in_one_process_and_a_failing_one_undoes_those_before_it() {
    let mut rec = Recorder::default();
    run(&restores(), &mut rec, &|| None).unwrap();
    assert_eq!(rec.processes, 1);
    assert_eq!(rec.calls.len(), 3);
    // The filter table fails: nat took effect and is undone, alone; raw
    // never ran.
    let mut rec = Recorder::failing_on([2]);
    let err = run(&restores(), &mut rec, &|| None).unwrap_err();
    assert_eq!((err.step, err.undone), (2, 1));
    assert_eq!(rec.calls.len(), 3);
    assert!(rec.calls[2].contains("*nat\n-D X -j ACCEPT\nCOMMIT"));
    assert!(
        err.to_string().contains("line 1 failed: injected failure"),
        "{err}"
    );
    // Undo never joins restores: each is tried even when one fails.
    let mut rec = Recorder::failing_on([2]);
    let plan = restores();
    let mut applied = |_, _| Ok(());
    let errors = rollback(&plan, 3, 3, &mut rec, &mut applied);
    assert_eq!(rec.processes, 3);
    assert_eq!(errors.len(), 1);
}
