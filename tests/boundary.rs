//! The boundary's shapes are written once, in Rust: `js/src/generated/boundary.ts`
//! is generated from the operation, result and data types with ts-rs, and
//! this test fails when the committed file differs from what the types
//! generate now (run `DURQ_BLESS=1 cargo test --test boundary` to rewrite
//! it), or when `docs/boundary.md` lists other operations than [`Op`].
#![cfg(not(target_family = "wasm"))]

use durq::{
    alarm, batch, effect, lease, model, op, queue, queues, run, schedule, search, transfer,
};
use std::collections::BTreeSet;
use std::path::PathBuf;
use ts_rs::{Config, TS};

const HEADER: &str = "\
// Generated from the Rust types of the durq core by tests/boundary.rs (ts-rs):
// do not edit. `DURQ_BLESS=1 cargo test --test boundary` rewrites it after a
// change to the types; the test fails while this file is out of date.
//
// An operation crosses as `{ op, args }` (`Op`), a batch of them as one
// `core.apply(now, JSON.stringify(ops))`; the answer is one `Outcome` per
// operation. Integers are numbers (times are ms below 2^48).
/* eslint-disable */

";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The whole generated file.
fn render() -> String {
    let cfg = Config::new().with_large_int("number");
    let mut out = String::from(HEADER);
    macro_rules! decl {
        ($($t:ty),* $(,)?) => {$(
            if let Some(docs) = <$t as TS>::docs() {
                out.push_str(&docs);
            }
            out.push_str("export ");
            out.push_str(&<$t as TS>::decl(&cfg));
            out.push_str("\n\n");
        )*};
    }
    decl!(
        // Operations.
        op::Op,
        model::NewRun,
        model::Backoff,
        queue::EnqueueManyOp,
        lease::ClaimOp,
        lease::HeartbeatOp,
        lease::SaveStepOp,
        lease::ProgressOp,
        lease::LogOp,
        lease::CompleteOp,
        lease::FailOp,
        model::RunError,
        queue::IdOp,
        queue::PurgeOp,
        queue::ExpireLeasesOfOp,
        batch::EnqueueBatchOp,
        batch::BatchIdOp,
        batch::ReconcileOp,
        transfer::ImportOp,
        transfer::OnConflict,
        effect::PutEffectOp,
        effect::DeleteEffectsOp,
        alarm::SetAlarmOp,
        alarm::DeleteAlarmOp,
        alarm::AlarmDoneOp,
        alarm::AlarmFailedOp,
        schedule::ScheduleOp,
        schedule::CatchUp,
        schedule::ScheduleIdOp,
        schedule::FireSchedulesOp,
        queues::QueueOp,
        // Outcomes and results.
        op::Outcome,
        op::ErrorBody,
        op::OpResult,
        op::Done,
        run::Enqueued,
        lease::Claimed,
        model::ClaimedRun,
        lease::Expired,
        lease::Renewed,
        lease::Completed,
        lease::Failed,
        queue::Cancelled,
        queue::RunDeleted,
        queue::Retriggered,
        queue::Purged,
        queue::LeasesExpired,
        batch::EnqueuedBatch,
        batch::CancelledBatch,
        batch::CancelledRun,
        batch::Reconciled,
        batch::Member,
        transfer::Imported,
        search::IndexChange,
        effect::Deleted,
        alarm::AlarmResult,
        alarm::AlarmSet,
        alarm::AlarmDeleted,
        alarm::FailOutcome,
        schedule::ScheduleSet,
        schedule::ScheduleDeleted,
        schedule::FiredSchedules,
        schedule::FiredSlot,
        schedule::StoppedSchedule,
        queues::QueuePaused,
        model::FinishedBatch,
        // Data read back.
        model::Status,
        model::Run,
        model::RunFilter,
        model::RunPage,
        model::SearchSyntax,
        model::RunOrder,
        model::BatchState,
        model::BatchCounts,
        batch::Batch,
        batch::BatchFilter,
        batch::BatchPage,
        effect::StoredEffect,
        schedule::read::Schedule,
        schedule::read::ScheduleFilter,
        schedule::read::SchedulePage,
        queues::QueueInfo,
    );
    out.truncate(out.trim_end().len());
    out.push('\n');
    out
}

/// The operation names of the generated `Op` union.
fn op_names(generated: &str) -> BTreeSet<String> {
    let start = generated.find("export type Op =").expect("Op is declared");
    let decl = &generated[start..generated[start..].find(";\n").unwrap() + start];
    decl.match_indices("\"op\": \"")
        .map(|(i, m)| {
            let rest = &decl[i + m.len()..];
            rest[..rest.find('"').unwrap()].to_owned()
        })
        .collect()
}

#[test]
fn the_typescript_declarations_match_the_rust_types() {
    let path = root().join("js/src/generated/boundary.ts");
    let want = render();
    if std::env::var_os("DURQ_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, &want).unwrap();
    }
    let have = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        have == want,
        "{} is out of date with the Rust types: run `DURQ_BLESS=1 cargo test --test boundary` and commit it",
        path.display()
    );
    assert!(op_names(&want).len() >= 27, "{:?}", op_names(&want));
}

#[test]
fn docs_boundary_md_lists_exactly_the_operations() {
    let md = std::fs::read_to_string(root().join("docs/boundary.md")).unwrap();
    // The rows of the operations table: "| `name` | fields | result |".
    let table = md
        .split_once("| op | fields | ok result |")
        .expect("docs/boundary.md has the operations table")
        .1;
    let listed: BTreeSet<String> = table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .filter_map(|l| l.strip_prefix("| `")?.split('`').next().map(str::to_owned))
        .collect();
    assert_eq!(listed, op_names(&render()), "docs/boundary.md vs src/op.rs");
}
