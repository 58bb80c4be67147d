//! The `veer` command line: parses arguments, sets up logging, binds the
//! listeners, and hands them to the library.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use veer::admin::client::{AdminClient, ClientError};
use veer::config::LogFormat;
use veer::workers::Workers;

#[derive(Parser)]
#[command(
    name = "veer",
    version,
    about = "A reverse proxy that ships new versions safely"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The admin API the client commands talk to.
    #[arg(
        long,
        global = true,
        env = "VEER_ADMIN",
        default_value = "http://127.0.0.1:9901"
    )]
    admin: String,
    /// Bearer token for the admin API.
    #[arg(long, global = true, env = "VEER_ADMIN_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve with the given config file.
    Run {
        #[arg(short, long, default_value = "veer.toml")]
        config: PathBuf,
        /// Do not watch the config file; reload only on SIGHUP or the API.
        #[arg(long)]
        no_watch: bool,
        /// Take the listening sockets (and every rollout) from the veer
        /// running on the same state_dir, which then drains and exits:
        /// a binary upgrade without refusing a connection. If this process
        /// fails to start, the running one keeps serving.
        #[arg(long)]
        upgrade: bool,
    },
    /// Validate a config file without serving.
    Check {
        #[arg(short, long, default_value = "veer.toml")]
        config: PathBuf,
    },
    /// A local canary from v1 to v2 with built-in upstreams and load.
    Demo {
        /// Percent of v2 responses that fail with 500.
        #[arg(long, default_value_t = 0.0)]
        v2_error_rate: f64,
        /// Latency added to every v2 response, e.g. "50ms".
        #[arg(long, default_value = "0ms", value_parser = humantime::parse_duration)]
        v2_latency: std::time::Duration,
        /// Hold per canary step.
        #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
        interval: std::time::Duration,
        /// Candidate weight per step, comma separated.
        #[arg(long, default_value = "5,25,50,100", value_delimiter = ',')]
        steps: Vec<u32>,
        /// Keep the proxy and the dashboard serving after the rollout ends,
        /// until Ctrl-C.
        #[arg(long)]
        keep: bool,
    },
    /// Prints completions for a shell: `veer completions bash > /etc/bash_completion.d/veer`.
    Completions { shell: clap_complete::Shell },
    /// Prints the man page (roff): `veer man > veer.1`.
    Man,
    #[command(flatten)]
    Admin(veer::admin::cli::AdminCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The demo prints its own story; its logs would only interleave.
    // `veer run` sets logging up once it has read `[proxy] log_format`.
    match cli.command {
        Command::Run { .. } => {}
        Command::Demo { .. } => init_logging("warn", LogFormat::Text),
        _ => init_logging("info", LogFormat::Text),
    }
    let admin = cli.admin;
    let token = cli.token;
    let result = match cli.command {
        Command::Run {
            config,
            no_watch,
            upgrade,
        } => run(config, !no_watch, upgrade),
        Command::Check { config } => check(config),
        Command::Demo {
            v2_error_rate,
            v2_latency,
            interval,
            steps,
            keep,
        } => demo(
            veer::demo::DemoOptions {
                v2_error_rate,
                v2_latency,
                interval,
                steps,
                clients: 4,
                live: std::io::IsTerminal::is_terminal(&std::io::stdout()),
            },
            keep,
        ),
        Command::Completions { shell } => {
            let mut cli = <Cli as clap::CommandFactory>::command();
            let mut text = Vec::new();
            clap_complete::generate(shell, &mut cli, "veer", &mut text);
            print_bytes(&text)
        }
        Command::Man => {
            let cli = <Cli as clap::CommandFactory>::command();
            let mut text = Vec::new();
            clap_mangen::Man::new(cli)
                .render(&mut text)
                .context("rendering the man page")
                .and_then(|()| print_bytes(&text))
        }
        Command::Admin(command) => client(&admin, token, command),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            // `veer drain wait` timing out is an answer scripts branch on.
            match e.downcast_ref::<ClientError>() {
                Some(ClientError::TimedOut(_)) => ExitCode::from(2),
                _ => ExitCode::FAILURE,
            }
        }
    }
}

fn demo(options: veer::demo::DemoOptions, keep: bool) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let until = async move {
        if keep {
            let _ = tokio::signal::ctrl_c().await;
        }
    };
    // On a terminal, lines starting with '\r' are the live status line,
    // redrawn in place; elsewhere only plain lines are printed.
    let live = options.live;
    let clear = if live { "\r\x1b[2K" } else { "" };
    let print = move |line: String| {
        use std::io::Write;
        match line.strip_prefix('\r') {
            Some(status) if live => print!("{clear}{status}"),
            Some(_) => {}
            None => println!("{clear}{line}"),
        }
        let _ = std::io::stdout().flush();
    };
    let outcome = runtime.block_on(veer::demo::run_and_keep(options, print, until))?;
    print!("{clear}");
    match outcome {
        veer::demo::Outcome::Promoted => println!("promoted: v2 serves 100%"),
        veer::demo::Outcome::RolledBack => println!("rolled back: v1 serves 100%"),
    }
    Ok(())
}

fn check(path: PathBuf) -> anyhow::Result<()> {
    let config = veer::config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    veer::tls::preflight(&config)?;
    println!(
        "{}: ok ({} listeners, {} pools, {} routes)",
        path.display(),
        config.listeners.len(),
        config.pools.len(),
        config.routes.len()
    );
    Ok(())
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) is fine.
fn print_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    match std::io::stdout().write_all(bytes) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(()),
    }
}

/// Logs to stderr, filtered by `VEER_LOG`: text (colour only on a
/// terminal, so a file or journald gets no escape codes) or JSON lines.
fn init_logging(default_level: &str, format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VEER_LOG")
        .unwrap_or_else(|_| default_level.into());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
}

fn run(path: PathBuf, watch: bool, upgrade: bool) -> anyhow::Result<()> {
    let config = veer::config::load(&path).map_err(|e| anyhow::anyhow!("{e}"))?;
    init_logging("info", config.proxy.log_format);
    let config = Arc::new(config);
    veer::tls::preflight(&config)?;
    let token = match &config.admin.token_env {
        None => None,
        Some(var) => match std::env::var(var) {
            Ok(t) if !t.is_empty() => Some(t),
            _ => anyhow::bail!(
                "[admin] token_env = {var:?}, but the environment variable {var} is empty or not set"
            ),
        },
    };
    // Each connection is a file descriptor: use what the hard limit allows.
    if let Some(limit) = veer::proxy::accept::raise_open_files() {
        tracing::debug!(limit, "open-file limit raised");
    }
    // Every worker is a current-thread runtime (no work stealing, no
    // cross-thread wakeups); this one is worker 0, see `veer::workers`.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let workers = Workers::start(config.proxy.workers).context("starting the workers")?;
    let state_dir = &config.proxy.state_dir;
    let (listeners, admin, upgrades) = match upgrade {
        // Everything that can fail happens before `take`: until then the
        // running veer serves as if nothing happened.
        true => {
            let mut taking = veer::app::upgrade::connect(state_dir)?;
            let pid = taking.pid;
            let source = veer::app::Source::Upgrade(&mut taking);
            let (listeners, admin) = veer::app::acquire(&config, source)?;
            taking.commit()?;
            tracing::info!(pid, "upgrade: took the listening sockets over");
            let upgrades = veer::app::upgrade::bind(state_dir);
            (listeners, admin, upgrades)
        }
        false => {
            // Refuses to start beside a veer running on this state_dir.
            let upgrades = veer::app::upgrade::bind(state_dir);
            if let Err(e @ veer::app::upgrade::UpgradeError::Running(_)) = upgrades {
                return Err(e.into());
            }
            let source = match veer::app::Activated::from_env()? {
                Some(activated) => veer::app::Source::Activated(activated),
                None => veer::app::Source::Bind,
            };
            let (listeners, admin) = veer::app::acquire(&config, source)?;
            (listeners, admin, upgrades)
        }
    };
    let upgrades = upgrades
        .inspect_err(
            |e| tracing::warn!(error = %e, "binary upgrades cannot take over from this process"),
        )
        .ok();
    let served = runtime.block_on(async move {
        let listeners = listeners
            .into_iter()
            .map(tokio::net::TcpListener::from_std)
            .collect::<std::io::Result<Vec<_>>>()
            .context("registering the listeners")?;
        let admin =
            tokio::net::TcpListener::from_std(admin).context("registering [admin] listen")?;
        let reload = Arc::new(tokio::sync::Notify::new());
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("installing the SIGHUP handler")?;
        let on_hup = reload.clone();
        tokio::spawn(async move {
            while hup.recv().await.is_some() {
                tracing::info!("SIGHUP: reloading the config");
                on_hup.notify_one();
            }
        });
        let mut options = veer::app::Options::new(config, listeners);
        options.admin = Some(admin);
        options.token = token;
        options.bind = Some(Arc::new(bind));
        options.workers = workers;
        options.upgrades = upgrades;
        // Under systemd (`Type=notify`): READY, RELOADING, STOPPING. After
        // an upgrade this process is the service's main process now.
        options.lifecycle = Some(Arc::new(move |stage| {
            use sd_notify::NotifyState;
            let state = match stage {
                veer::app::Stage::Ready => NotifyState::Ready,
                veer::app::Stage::Reloading => NotifyState::Reloading,
                veer::app::Stage::Stopping => NotifyState::Stopping,
            };
            let pid = NotifyState::MainPid(std::process::id());
            let _ = match (stage, upgrade) {
                (veer::app::Stage::Ready, true) => sd_notify::notify(&[pid, state]),
                _ => sd_notify::notify(&[state]),
            };
        }));
        options.hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty());
        veer::app::run(options, reload, watch, shutdown_signal()).await;
        Ok(())
    });
    // An upgrade request still waiting for its `take` does not hold the
    // exit up.
    runtime.shutdown_timeout(std::time::Duration::from_secs(1));
    served
}

/// Binds a listener a reload added.
fn bind(spec: &veer::config::ListenerSpec) -> std::io::Result<std::net::TcpListener> {
    let listener = std::net::TcpListener::bind(spec.listen)?;
    listener.set_nonblocking(true)?;
    Ok(listener)
}

fn client(
    admin: &str,
    token: Option<String>,
    command: veer::admin::cli::AdminCommand,
) -> anyhow::Result<()> {
    let client = AdminClient::new(admin, token)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    if let veer::admin::cli::AdminCommand::Status {
        watch: true, every, ..
    } = command
    {
        runtime.block_on(watch(&client, admin, every));
        return Ok(());
    }
    let out = runtime.block_on(veer::admin::cli::execute(&client, command))?;
    print!("{out}");
    Ok(())
}

/// `veer status --watch` until Ctrl-C: on a terminal the table is
/// redrawn in place under a header with the time; elsewhere each table
/// that differs from the last is printed.
async fn watch(client: &AdminClient, admin: &str, every: std::time::Duration) {
    use std::io::Write;
    let live = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let mut last = String::new();
    let show = |table: String| {
        let mut out = std::io::stdout().lock();
        let _ = match live {
            true => {
                let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now());
                let header = format!("veer status · {admin} · every {every:?} · {now}");
                write!(out, "\x1b[H\x1b[2J{header}\n\n{table}")
            }
            false if table != last => writeln!(out, "{table}"),
            false => Ok(()),
        };
        let _ = out.flush();
        last = table;
    };
    tokio::select! {
        () = veer::admin::cli::watch(client, every, show) => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// Resolves on the first SIGTERM or SIGINT; a second one exits at once,
/// without waiting for the graceful shutdown the first one started.
async fn shutdown_signal() {
    next_signal().await;
    tokio::spawn(async {
        next_signal().await;
        eprintln!("second signal: exiting now");
        std::process::exit(1);
    });
}

async fn next_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).expect("installing SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("installing SIGINT handler");
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
