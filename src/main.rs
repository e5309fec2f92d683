//! `trident`: the command line of the Trident site-to-site VPN. Thin by design: it parses
//! arguments and the config file into typed settings and hands them to the `tunnel` crate.

mod audit;
mod capture;
mod check;
mod cli_extra;
mod config;
mod down;
mod hooks;
mod keys;
mod kme_sim;
mod logging;
mod man;
mod output;
mod pair;
mod reload;
mod reset;
mod status_view;
mod up;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "trident",
    version = cli_extra::VERSION,
    about = "Site-to-site VPN with per-epoch PSKs mixed from X25519, ML-KEM-768 and QKD"
)]
struct Cli {
    /// Log filter: error, warn, info (default), debug, trace, or RUST_LOG directives
    /// (e.g. "info,keymix=debug"); overrides RUST_LOG.
    #[arg(long, global = true, value_name = "LEVEL")]
    log_level: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print a new private key (base64), like `wg genkey`; with FILE, create FILE with mode
    /// 0600 instead (never replacing one). Warns when stdout is a file others can read.
    Genkey {
        /// Create this file (mode 0600) instead of printing the key.
        file: Option<PathBuf>,
    },
    /// Read a private key on stdin, print its public key, like `wg pubkey`.
    Pubkey,
    /// Print a new random bootstrap pre-shared key (base64), like `wg genpsk`; with FILE,
    /// create FILE with mode 0600 instead.
    Genpsk {
        /// Create this file (mode 0600) instead of printing the PSK.
        file: Option<PathBuf>,
    },
    /// Bring an interface up from CONFIG.toml and run it in the foreground until SIGINT,
    /// SIGTERM or `trident down`; SIGHUP reloads. It runs the checks of `check` first and
    /// refuses an interface that already runs.
    Up {
        /// The interface's TOML config.
        config: PathBuf,
    },
    /// Check CONFIG.toml as `up` would, without side effects (no device, no socket, no file
    /// written): exit 0 when it would start, 2 with one line per problem, every problem
    /// (like `nginx -t`). Also asks the machine what `up` would run into: a device of the
    /// same name, the state directory, the external WireGuard interface.
    Check {
        /// The interface's TOML config.
        config: PathBuf,
    },
    /// Show the state of a running interface (from its control socket).
    Status {
        /// Interface name; may be omitted when exactly one interface runs.
        #[arg(value_parser = cli_extra::interface_name)]
        name: Option<String>,
        /// Print JSON instead of the human-readable view.
        #[arg(long)]
        json: bool,
    },
    /// Forget the keymix chain with one peer (operator action, logged; replay records are
    /// kept): its next bootstrap is accepted. With a bootstrap PSK for the peer that
    /// bootstrap needs the PSK; without one it rests on the static keys alone, and the reset
    /// is refused unless --static-only acknowledges it.
    Reset {
        /// Interface name.
        #[arg(value_parser = cli_extra::interface_name)]
        name: String,
        /// The peer's public key (base64, as `trident status` prints it).
        peer: String,
        /// Acknowledge that, without a bootstrap PSK, the next first contact with this peer
        /// rests on the static keys alone (anyone holding one static private key could take
        /// its place); status shows it until the chain has grown again.
        #[arg(long)]
        static_only: bool,
        /// The interface's config: when it is not running, reset its state file instead.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Re-read a running interface's config file (like SIGHUP) and apply peer additions,
    /// removals and changes without touching unchanged peers; a change that needs a
    /// restart (key, port, address, ...) is refused and the running config stays.
    Reload {
        /// Interface name.
        #[arg(value_parser = cli_extra::interface_name)]
        name: String,
    },
    /// Shut a running interface down cleanly, as SIGTERM does (pre_down, routes, device,
    /// post_down), and wait until it is gone, like `wg-quick down`.
    Down {
        /// Interface name.
        #[arg(value_parser = cli_extra::interface_name)]
        name: String,
    },
    /// Print the config a running interface runs, like `wg showconf`: the file it was
    /// started with (or last reloaded successfully) with its defaults filled in; secrets
    /// appear as the paths of their files, never their contents.
    Showconf {
        /// Interface name.
        #[arg(value_parser = cli_extra::interface_name)]
        name: String,
    },
    /// Write both ends of a site-to-site link, ready for `trident up`: DIR/SITE_A/ and
    /// DIR/SITE_B/ with each gateway's config, private key and their bootstrap PSK (all
    /// 0600); with --qkd also the KME simulator pair and the [qkd] tables.
    Pair(pair::PairArgs),
    /// ETSI GS QKD 014 KME simulator pair: init, run, status.
    #[command(subcommand)]
    KmeSim(kme_sim::KmeSimCommand),
    /// RNDL audit: which epochs of a WAN capture an attacker who broke the listed key
    /// sources could decrypt (needs a gateway's key log).
    Audit(audit::AuditArgs),
    /// Print the shell completion script (e.g. `trident completions bash >
    /// /etc/bash_completion.d/trident`).
    Completions { shell: clap_complete::Shell },
    /// Print a man page in roff: trident(1) (`trident man > .../man1/trident.1`), or with
    /// `--section 5` trident.toml(5), the configuration reference.
    Man {
        /// 1: the commands (default); 5: the configuration file.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=5))]
        section: u8,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_level.as_deref()) {
        eprintln!("trident: {e:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Genkey { file } => keys::genkey(file.as_deref()),
        Command::Pubkey => keys::pubkey(),
        Command::Genpsk { file } => keys::genpsk(file.as_deref()),
        Command::Up { config } => up::up(&config),
        Command::Check { config } => check::check(&config),
        Command::Status { name, json } => status_view::status(name.as_deref(), json),
        Command::Reset {
            name,
            peer,
            static_only,
            config,
        } => reset::reset(&name, &peer, config.as_deref(), static_only),
        Command::Reload { name } => reload::reload(&name),
        Command::Down { name } => down::down(&name),
        Command::Showconf { name } => down::showconf(&name),
        Command::Pair(args) => pair::run(&args),
        Command::KmeSim(command) => kme_sim::run(command),
        Command::Audit(args) => audit::run(args),
        Command::Completions { shell } => cli_extra::completions(shell),
        Command::Man { section } => man::print(section),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(errors) = e.downcast_ref::<config::ConfigErrors>() {
                for warning in &errors.warnings {
                    eprintln!("trident: WARNING: {warning}");
                }
                for error in &errors.errors {
                    eprintln!("trident: {error}");
                }
                return ExitCode::from(2);
            }
            if let Some(config_error) = e.downcast_ref::<config::ConfigError>() {
                eprintln!("trident: {config_error}");
                return ExitCode::from(2);
            }
            eprintln!("trident: {e:#}");
            ExitCode::FAILURE
        }
    }
}
