//! `trident`: the command line of the Trident site-to-site VPN. Thin by design: it parses
//! arguments and the config file into typed settings and hands them to the `tunnel` crate.

mod audit;
mod capture;
mod check;
mod cli_extra;
mod config;
mod hooks;
mod keys;
mod kme_sim;
mod logging;
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
    /// Print a new private key (base64), like `wg genkey`.
    Genkey,
    /// Read a private key on stdin, print its public key, like `wg pubkey`.
    Pubkey,
    /// Print a new random bootstrap pre-shared key (base64), like `wg genpsk`.
    Genpsk,
    /// Bring an interface up from CONFIG.toml and run it in the foreground until SIGINT/SIGTERM.
    Up {
        /// The interface's TOML config.
        config: PathBuf,
    },
    /// Check CONFIG.toml as `up` would, without side effects (no device, no socket, no file
    /// written): exit 0 when it would start, 2 with one line per problem (like `nginx -t`).
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
    /// ETSI GS QKD 014 KME simulator pair: init, run, status.
    #[command(subcommand)]
    KmeSim(kme_sim::KmeSimCommand),
    /// RNDL audit: which epochs of a WAN capture an attacker who broke the listed key
    /// sources could decrypt (needs a gateway's key log).
    Audit(audit::AuditArgs),
    /// Print the shell completion script (e.g. `trident completions bash >
    /// /etc/bash_completion.d/trident`).
    Completions { shell: clap_complete::Shell },
    /// Print the man page in roff (`trident man > /usr/local/share/man/man1/trident.1`).
    Man,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Err(e) = logging::init(cli.log_level.as_deref()) {
        eprintln!("trident: {e:#}");
        return ExitCode::from(2);
    }
    let result = match cli.command {
        Command::Genkey => keys::genkey(),
        Command::Pubkey => keys::pubkey(),
        Command::Genpsk => keys::genpsk(),
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
        Command::KmeSim(command) => kme_sim::run(command),
        Command::Audit(args) => audit::run(args),
        Command::Completions { shell } => cli_extra::completions(shell),
        Command::Man => cli_extra::man(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if let Some(config_error) = e.downcast_ref::<config::ConfigError>() {
                eprintln!("trident: {config_error}");
                return ExitCode::from(2);
            }
            eprintln!("trident: {e:#}");
            ExitCode::FAILURE
        }
    }
}
