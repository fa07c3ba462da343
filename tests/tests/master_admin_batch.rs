//! `gatehouse-admin batch`: many changes in one transaction with one acknowledgement, all or
//! none, through the real binaries.

use gatehouse_tests::admin::{run_admin_on, status, Admin};

#[test]
fn a_batch_is_applied_whole_or_not_at_all() {
    let admin = Admin::start();
    let socket = &admin.files.socket;
    let before = status(&admin.files).sequence;
    let good = "# a new team\n\
                class add ops\n\
                user add carol --class ops\n\
                user add dave\n\
                \n\
                route add --user carol 'SSH:*->carol@web*' --window \"Mon-Fri 08:00-18:00\"\n\
                user lock dave\n";
    let run = run_admin_on(socket, &["batch", "-"], good);
    assert_eq!(run.code, 0, "{run:?}");
    assert_eq!(
        run.stdout.trim(),
        format!("ok (sequence {}) (5 changes)", before + 5)
    );
    let report = status(&admin.files);
    assert_eq!(
        (report.users, report.locked_users, report.routes),
        (2, 1, 1)
    );

    // The third change is refused: nothing of the batch is applied, and the message names it.
    let bad = "user add erin\nuser add frank --class ops\nuser add carol\nuser add gina\n";
    let run = run_admin_on(socket, &["batch", "-"], bad);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr
            .contains("change 3 of the batch: user `carol` already exists"),
        "{}",
        run.stderr
    );
    assert_eq!(status(&admin.files).sequence, before + 5);
    assert_eq!(status(&admin.files).users, 2);

    // A line that is not a plain change is a usage error before anything is sent.
    let run = run_admin_on(socket, &["batch", "-"], "user add x\nuser passwd x\n");
    assert_eq!(run.code, 2, "{run:?}");
    assert!(
        run.stderr.contains("-:2: only commands that change"),
        "{}",
        run.stderr
    );
    assert_eq!(status(&admin.files).users, 2);
}
