//! `streamspace-bench [--quick] [--creations-only [--clients N] | --deletions-only | --fleet-only | --relay-only]`: the control plane (the binary beside this one: release, or debug for the smoke run) on a
//! fresh database of the Postgres at `DATABASE_URL`, driven by simulated agents and viewers
//! over the real protocol. Every figure is printed with a baseline measured in the same run
//! and their ratio; a Markdown table of all of them ends the output. `scripts/bench` builds
//! and runs it with its own Postgres.

mod api;
mod baselines;
mod commands;
mod fleet;
mod memory;
mod relay;
mod report;
mod sim_agent;
mod stats;

use std::cell::RefCell;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use streamspace_testkit::control_plane::ADMIN_PASSWORD;
use streamspace_testkit::replica_process::ReplicaProcess;
use streamspace_testkit::rfb::RfbClient;
use streamspace_testkit::{TestDatabase, free_port};

use api::Api;
use fleet::Fleet;
use memory::{rss_kib, settled_rss_kib};
use report::{Report, ms};
use stats::Latencies;

const TEMPLATE: &str = "bench";

/// How big each scenario is.
struct Sizes {
    concurrencies: Vec<usize>,
    window: Duration,
    fleet: usize,
    one_by_one: usize,
    list_calls: usize,
    streams: usize,
    relay: relay::Pattern,
}

impl Sizes {
    fn full() -> Self {
        Sizes {
            concurrencies: vec![4, 16, 64],
            window: Duration::from_secs(10),
            fleet: 10_000,
            one_by_one: 100,
            list_calls: 50,
            streams: 100,
            relay: relay::Pattern {
                per_s: 50,
                over: Duration::from_secs(10),
            },
        }
    }

    /// Every scenario, small: a smoke test that finishes in well under two minutes.
    fn quick() -> Self {
        Sizes {
            concurrencies: vec![16],
            window: Duration::from_secs(3),
            fleet: 300,
            one_by_one: 30,
            list_calls: 20,
            streams: 10,
            relay: relay::Pattern {
                per_s: 50,
                over: Duration::from_secs(3),
            },
        }
    }
}

/// `--clients N`: how many clients `--creations-only` runs (16 without it).
fn clients_flag() -> Option<usize> {
    let args: Vec<String> = std::env::args().collect();
    let at = args.iter().position(|a| a == "--clients")?;
    let n = args
        .get(at + 1)
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0);
    Some(n.unwrap_or_else(|| {
        eprintln!("--clients: expected a whole number of clients above 0");
        std::process::exit(2)
    }))
}

fn control_plane_binary() -> PathBuf {
    let exe = std::env::current_exe().expect("own path");
    let path = exe.with_file_name("streamspace-control-plane");
    assert!(
        path.exists(),
        "{} is missing: build it with the same profile (scripts/bench does)",
        path.display()
    );
    path
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores ({cpu})")
}

/// `calls` lists of every agent, one after the other: latencies and the last body's size.
async fn list_agents(api: &Api, calls: usize) -> (Latencies, usize) {
    let mut latencies = Latencies::default();
    let mut size = 0;
    for _ in 0..calls {
        let answer = api.call("GET", "/api/v1/agents", None).await;
        assert_eq!(answer.status, 200, "list agents: {}", answer.body);
        latencies.push(answer.took);
        size = answer.size;
    }
    (latencies, size)
}

fn p50_p99(l: &Latencies) -> String {
    format!("p50 {} p99 {}", ms(l.p50()), ms(l.p99()))
}

async fn commit_baseline(url: &str, clients: usize, over: Duration) -> f64 {
    let url = url.to_owned();
    actix_web::rt::task::spawn_blocking(move || {
        baselines::postgres_commits_per_s(&url, clients, over)
    })
    .await
    .expect("baseline thread")
}

/// Round trips of small messages through the relay against the same over direct TCP.
async fn relay_round_trips(admin: &Api, sizes: &Sizes, report: &mut Report) {
    println!("relay round trips");
    let mut urls = Vec::new();
    for _ in 0..sizes.streams {
        let (answer, id) = admin.create_session(TEMPLATE).await;
        let id = id.unwrap_or_else(|| panic!("create: {}", answer.body));
        admin.session_reaches(id, "running").await;
        urls.push(admin.viewer_url(id).await);
    }
    let viewers = relay::viewers(urls).await;
    let through_relay = relay::round_trips(viewers, sizes.relay).await;
    let echo = baselines::tcp_echo().await;
    let mut direct = Vec::new();
    for _ in 0..sizes.streams {
        direct.push(
            RfbClient::connect(("127.0.0.1", echo.port()))
                .await
                .expect("echo"),
        );
    }
    let direct = relay::round_trips(direct, sizes.relay).await;
    report.add(
        &format!(
            "round trip, {} streams × {} msg/s, through the relay to a simulated agent's echo",
            sizes.streams, sizes.relay.per_s
        ),
        format!(
            "{} (added p50 {}, p99 {})",
            p50_p99(&through_relay),
            ms(through_relay.p50() - direct.p50()),
            ms(through_relay.p99() - direct.p99())
        ),
        format!("{} over direct TCP to an echo server", p50_p99(&direct)),
        through_relay.p99() / direct.p99().max(1e-3),
    );
}

#[actix_web::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let sizes = if quick { Sizes::quick() } else { Sizes::full() };
    let run_started = Instant::now();
    let db = TestDatabase::create();
    let port = free_port();
    let control_plane = ReplicaProcess::spawn(&control_plane_binary(), &db, port, &[]);
    // Before any request: the first login alone (its password hash) holds 19 MiB for seconds.
    let idle_rss = rss_kib(control_plane.pid());
    let base = format!("http://127.0.0.1:{port}");
    let admin = Api::login(&base, "admin", ADMIN_PASSWORD).await;
    admin.template(TEMPLATE).await;
    let mut report = Report::default();
    println!(
        "StreamSpace benchmark{}: {}, control plane {} (release), Postgres at DATABASE_URL",
        if quick { " (quick)" } else { "" },
        machine(),
        control_plane_binary().display()
    );

    // Baselines on empty tables.
    let (empty_list, _) = list_agents(&admin, sizes.list_calls).await;

    // A few agents take the sessions.
    let few = fleet::register(&admin, "few", 8, 8).await;
    let (few_fleet, _) = Fleet::connect(&admin, &few).await;
    assert_eq!(few_fleet.linked, 8, "the first agents did not link");
    let made = Rc::new(RefCell::new(Vec::new()));
    let one_by_one_few =
        commands::create_one_at_a_time(&admin, TEMPLATE, sizes.one_by_one, &made).await;

    if std::env::args().any(|a| a == "--creations-only") {
        // For a profiler attached to the control plane: one long run of the hottest path.
        println!("control plane pid {}", control_plane.pid());
        let clients = clients_flag().unwrap_or(16);
        let run =
            commands::create_for(&admin, TEMPLATE, clients, Duration::from_secs(20), &made).await;
        println!("{:.0} creations/s ({})", run.per_s, p50_p99(&run.latencies));
        return;
    }

    if std::env::args().any(|a| a == "--deletions-only") {
        // The same for deletions: sessions made first (16 clients, 10 s), then all deleted.
        println!("control plane pid {}", control_plane.pid());
        commands::create_for(&admin, TEMPLATE, 16, Duration::from_secs(10), &made).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let sessions = made.take();
        let deleted = commands::delete_all(&admin, 16, sessions).await;
        println!(
            "{:.0} deletions/s ({}, {} errors)",
            deleted.per_s,
            p50_p99(&deleted.latencies),
            deleted.errors
        );
        return;
    }

    if std::env::args().any(|a| a == "--relay-only") {
        // The round trips alone, with only the few agents online.
        println!("control plane pid {}", control_plane.pid());
        relay_round_trips(&admin, &sizes, &mut report).await;
        println!("\n{}", report.markdown());
        return;
    }

    let fleet_only = std::env::args().any(|a| a == "--fleet-only");
    println!("session commands");
    for &clients in sizes.concurrencies.iter().filter(|_| !fleet_only) {
        let active = made.borrow().len();
        let commits = commit_baseline(db.url(), clients, sizes.window).await;
        let run = commands::create_for(&admin, TEMPLATE, clients, sizes.window, &made).await;
        report.add(
            &format!("session creations/s, {clients} clients, {active} sessions already active"),
            format!(
                "{:.0}/s ({}, {} errors)",
                run.per_s,
                p50_p99(&run.latencies),
                run.errors
            ),
            format!("{commits:.0} single-row Postgres commits/s, {clients} connections"),
            run.per_s / commits,
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let sessions = made.take();
    let commits = commit_baseline(db.url(), 16, sizes.window).await;
    let deleted = commands::delete_all(&admin, 16, sessions).await;
    report.add(
        "session deletions/s, 16 clients",
        format!(
            "{:.0}/s ({}, {} errors)",
            deleted.per_s,
            p50_p99(&deleted.latencies),
            deleted.errors
        ),
        format!("{commits:.0} single-row Postgres commits/s, 16 connections"),
        deleted.per_s / commits,
    );

    println!("a fleet of {} agents", sizes.fleet);
    let registering = Instant::now();
    let agents = fleet::register(&admin, "agent", sizes.fleet, 16).await;
    println!(
        "  registered in {:.1} s",
        registering.elapsed().as_secs_f64()
    );
    let health = baselines::health_checks_at_once(&base, sizes.fleet).await;
    let (fleet, storm) = Fleet::connect(&admin, &agents).await;
    report.add(
        &format!(
            "{} agents connecting at once, until the last is welcomed",
            sizes.fleet
        ),
        format!("{:.2} s ({} linked)", storm.as_secs_f64(), fleet.linked),
        format!(
            "{:.2} s for as many fresh connections to GET /healthz",
            health.as_secs_f64()
        ),
        storm.as_secs_f64() / health.as_secs_f64(),
    );
    let fleet_rss = settled_rss_kib(control_plane.pid()).await;
    let per_link = fleet_rss.saturating_sub(idle_rss) as f64 / sizes.fleet as f64;
    report.add(
        &format!("control-plane RSS with {} idle agents", sizes.fleet),
        format!("{} MiB ({per_link:.1} KiB per link)", fleet_rss / 1024),
        format!(
            "{} MiB with none, before its first request",
            idle_rss / 1024
        ),
        fleet_rss as f64 / idle_rss.max(1) as f64,
    );
    let one_by_one_many =
        commands::create_one_at_a_time(&admin, TEMPLATE, sizes.one_by_one, &made).await;
    report.add(
        &format!(
            "POST /api/v1/sessions one at a time, {} agents online",
            sizes.fleet + 8
        ),
        p50_p99(&one_by_one_many),
        format!("{} with 8 agents online", p50_p99(&one_by_one_few)),
        one_by_one_many.p99() / one_by_one_few.p99(),
    );
    let (list, size) = list_agents(&admin, sizes.list_calls).await;
    report.add(
        &format!("GET /api/v1/agents with {} agents", sizes.fleet + 8),
        format!("{} ({} KiB)", p50_p99(&list), size / 1024),
        format!("{} with none", p50_p99(&empty_list)),
        list.p99() / empty_list.p99(),
    );
    // A restart, as a rolling update makes one: SIGTERM (agents are told to link again), then
    // a new process on the same port and database; every agent links again by itself.
    let before = fleet.welcomes();
    let old = control_plane;
    actix_web::rt::task::spawn_blocking(move || old.terminate())
        .await
        .expect("terminate");
    let restarted = Instant::now();
    let control_plane = ReplicaProcess::start(&control_plane_binary(), &db, port, &[]);
    let mut ready = None;
    while ready.is_none() {
        if control_plane.ready() {
            ready = Some(restarted.elapsed());
        } else {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    let relinked = fleet
        .welcomed(before + fleet.linked, Duration::from_secs(120))
        .await
        .map(|at| at - restarted);
    let ready = ready.unwrap_or_default();
    report.add(
        &format!(
            "control-plane restart with {} agents, until every one is linked again",
            fleet.linked
        ),
        relinked.map_or("not in 120 s".into(), |t| {
            format!("{:.2} s after the new process started", t.as_secs_f64())
        }),
        format!("{:.2} s for it to answer /readyz", ready.as_secs_f64()),
        relinked.map_or(f64::NAN, |t| t.as_secs_f64() / ready.as_secs_f64()),
    );
    let left = fleet.linked;
    fleet.stop();
    drop(fleet);
    // Once the control plane has recorded every departure (and so let go of each link).
    fleet::departed(&admin, left, Duration::from_secs(60)).await;
    let left_rss = settled_rss_kib(control_plane.pid()).await;
    report.add(
        "control-plane RSS after those agents left",
        format!("{} MiB", left_rss / 1024),
        format!("{} MiB before they came", idle_rss / 1024),
        left_rss as f64 / idle_rss.max(1) as f64,
    );
    // The same fleet once more: what the first left behind is reused, not added to.
    let (again, _) = Fleet::connect(&admin, &agents).await;
    let relinked = again.linked;
    again.stop();
    drop(again);
    fleet::departed(&admin, left, Duration::from_secs(60)).await;
    let again_rss = settled_rss_kib(control_plane.pid()).await;
    report.add(
        &format!("control-plane RSS after {relinked} agents came and left once more"),
        format!("{} MiB", again_rss / 1024),
        format!("{} MiB after the first time", left_rss / 1024),
        again_rss as f64 / left_rss.max(1) as f64,
    );

    relay_round_trips(&admin, &sizes, &mut report).await;
    drop(few_fleet);

    println!("\n{}", report.markdown());
    // The test command runs this as a smoke test: it must have measured every figure.
    let unmeasured: Vec<&str> = report
        .rows()
        .iter()
        .filter(|row| !(row.ratio.is_finite() && row.ratio > 0.0))
        .map(|row| row.what.as_str())
        .collect();
    assert!(unmeasured.is_empty(), "not measured: {unmeasured:?}");
    println!(
        "{} figures in {:.0} s",
        report.rows().len(),
        run_started.elapsed().as_secs_f64()
    );
    drop(control_plane);
}
