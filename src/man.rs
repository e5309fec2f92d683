//! `trident man [--section 5]`: the manual. trident(1) is generated from the command line
//! itself (clap_mangen for the title, synopsis and global options; every subcommand with
//! its usage, description and options from clap's definitions, so it cannot fall behind
//! the code) plus the sections no parser knows: exit status, files, environment, examples.
//! trident.toml(5) is docs/trident.toml.5, written by hand; a test keeps it in step with
//! the config's keys (config/render_tests.rs).

use std::fmt::Write as _;

use anyhow::{bail, Context, Result};
use clap::CommandFactory;

/// The configuration reference.
pub const TRIDENT_TOML_5: &str = include_str!("../docs/trident.toml.5");

pub fn print(section: u8) -> Result<()> {
    match section {
        1 => crate::output::print_bytes(&page_1()?),
        5 => crate::output::print(TRIDENT_TOML_5),
        other => bail!(
            "there is no trident man page in section {other}: 1 (commands) or 5 (trident.toml)"
        ),
    }
}

/// Text for roff: backslashes escaped, a leading `.` or `'` kept from being a request.
fn esc(text: &str) -> String {
    let text = text.replace('\\', "\\e");
    if text.starts_with(['.', '\'']) {
        format!("\\&{text}")
    } else {
        text
    }
}

/// Option and command names: `-` as the minus sign, so they can be copied.
fn code(text: &str) -> String {
    esc(text).replace('-', "\\-")
}

/// Help text as roff paragraphs (clap keeps the doc comment's blank lines).
fn paragraphs(out: &mut String, text: &str) {
    for para in text.split("\n\n").filter(|p| !p.trim().is_empty()) {
        let joined: Vec<&str> = para.lines().map(str::trim).collect();
        let _ = writeln!(out, ".PP\n{}", esc(&joined.join(" ")));
    }
}

fn value_name(arg: &clap::Arg) -> String {
    arg.get_value_names()
        .and_then(|v| v.first())
        .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string)
}

fn usage(prefix: &str, cmd: &clap::Command) -> String {
    let mut words = vec![format!("{prefix} {}", cmd.get_name())];
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let value = arg
            .get_value_names()
            .and_then(|v| v.first())
            .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string);
        let word = match arg.get_long() {
            Some(long) if arg.get_action().takes_values() => format!("--{long} {value}"),
            Some(long) => format!("--{long}"),
            None => value,
        };
        let repeated = matches!(arg.get_action(), clap::ArgAction::Append);
        let word = if repeated { format!("{word}...") } else { word };
        words.push(if arg.is_required_set() {
            word
        } else {
            format!("[{word}]")
        });
    }
    if cmd.has_subcommands() {
        words.push("COMMAND".to_owned());
    }
    words.join(" ")
}

fn command(out: &mut String, prefix: &str, cmd: &clap::Command) {
    let _ = writeln!(out, ".SS \"{}\"", code(&usage(prefix, cmd)));
    if let Some(about) = cmd.get_long_about().or_else(|| cmd.get_about()) {
        paragraphs(out, &about.to_string());
    }
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        let name = match arg.get_long() {
            Some(long) if arg.get_action().takes_values() => format!(
                "\\fB{}\\fR \\fI{}\\fR",
                code(&format!("--{long}")),
                esc(&value_name(arg))
            ),
            Some(long) => format!("\\fB{}\\fR", code(&format!("--{long}"))),
            None => format!(
                "\\fI{}\\fR",
                arg.get_value_names()
                    .and_then(|v| v.first())
                    .map_or_else(|| arg.get_id().as_str().to_uppercase(), ToString::to_string)
            ),
        };
        let _ = writeln!(out, ".TP\n{name}");
        let help = arg.get_long_help().or_else(|| arg.get_help());
        let mut text = help.map(|h| h.to_string()).unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        if !defaults.is_empty() {
            let _ = write!(text, " (default: {})", defaults.join(", "));
        }
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|v| v.get_name().to_owned())
            .collect();
        if !possible.is_empty() && arg.get_long().is_none() {
            let _ = write!(text, " One of: {}.", possible.join(", "));
        }
        let _ = writeln!(
            out,
            "{}",
            esc(text
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .as_str())
        );
    }
    for sub in cmd.get_subcommands() {
        command(out, &format!("{prefix} {}", cmd.get_name()), sub);
    }
}

/// trident(1) in roff.
pub fn page_1() -> Result<Vec<u8>> {
    let cmd = crate::Cli::command();
    let man = clap_mangen::Man::new(cmd.clone()).manual("Trident manual");
    let mut page = Vec::new();
    man.render_title(&mut page).context("rendering the title")?;
    man.render_name_section(&mut page)
        .context("rendering NAME")?;
    man.render_synopsis_section(&mut page)
        .context("rendering SYNOPSIS")?;
    let mut out = String::from(DESCRIPTION);
    out.push_str(".SH \"GLOBAL OPTIONS\"\n");
    for arg in cmd.get_arguments().filter(|a| !a.is_hide_set()) {
        if let (Some(long), Some(help)) = (
            arg.get_long(),
            arg.get_long_help().or_else(|| arg.get_help()),
        ) {
            let _ = writeln!(
                out,
                ".TP\n\\fB{}\\fR \\fILEVEL\\fR\n{}",
                code(&format!("--{long}")),
                esc(&help
                    .to_string()
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "))
            );
        }
    }
    out.push_str(".SH COMMANDS\n");
    for sub in cmd.get_subcommands() {
        command(&mut out, "trident", sub);
    }
    out.push_str(SECTIONS);
    page.extend_from_slice(out.as_bytes());
    Ok(page)
}

const DESCRIPTION: &str = r#".SH DESCRIPTION
.PP
Trident is a WireGuard-style userspace VPN for linking two sites. Its data plane is
WireGuard (boringtun); every epoch (120 s by default) the two gateways agree on a fresh
pre-shared key mixed from X25519, ML-KEM-768 and, when configured, a QKD key from the
site's key management entity (ETSI GS QKD 014 or SKIP). Traffic recorded today stays
secret unless all of them are broken.
.PP
\fBtrident up\fR runs one interface in the foreground from its configuration file
(see \fBtrident.toml\fR(5)); the other commands talk to a running interface over its
control socket, check a configuration, or make keys. The names follow wg(8) and
wg-quick(8) where they exist: \fBgenkey\fR, \fBpubkey\fR, \fBgenpsk\fR, \fBup\fR,
\fBdown\fR, \fBshowconf\fR, \fBstatus\fR (wg show).
"#;

const SECTIONS: &str = r#".SH "EXIT STATUS"
.TP
.B 0
Success: the command did what it says (\fBcheck\fR: the configuration would start;
\fBup\fR: the interface ran and was shut down cleanly; \fBdown\fR: the interface is gone).
.TP
.B 1
An operational error: the interface is not running (or already running), the control
socket or a key management entity failed, a file could not be written, or \fBup\fR ended
with an error after it had started setting up.
.TP
.B 2
A configuration problem, or a command-line usage error. For a configuration every problem
is one line on standard error naming the file, the line and the key
(\fIconfig error in /etc/trident/site-a.toml line 9, key `peer.allowed_ips': ...\fR),
and \fBcheck\fR lists all of them. A file refused by the file policy (see
\fBtrident.toml\fR(5), FILE POLICY) is a configuration problem too.
.SH FILES
.TP
.I /etc/trident/NAME.toml
The configuration of interface NAME, as \fBtrident@NAME.service\fR starts it; its format is
\fBtrident.toml\fR(5). The keys and PSKs it names usually live next to it, in the 0700
directory \fI/etc/trident\fR.
.TP
.I /run/trident/NAME.sock
The control socket of a running interface (mode 0600 in a 0700 directory; the first
directory of \fBRUNTIME_DIRECTORY\fR under systemd). \fBstatus\fR, \fBreload\fR,
\fBreset\fR, \fBdown\fR and \fBshowconf\fR use it; a socket file nobody listens on was
left by a process that crashed, and the next \fBup\fR replaces it.
.TP
.I /var/lib/trident/NAME/
The state directory (\fBstate_dir\fR; \fB$STATE_DIRECTORY/NAME\fR under systemd): one
\fIpeer-*.chain\fR file per peer (mode 0600) with the keymix chain and the replay records.
.TP
.I /var/run/wireguard/NAME.sock
The UAPI socket of a userspace WireGuard (wireguard-go) that Trident sets the PSKs of, with
\fBwireguard = "NAME"\fR; without it, kernel WireGuard over netlink.
.TP
.I /etc/systemd/system/trident@.service
The systemd unit (one instance per interface), installed by \fIscripts/install.sh\fR with
this page and \fBtrident.toml\fR(5).
.SH ENVIRONMENT
.TP
.B RUST_LOG
The log filter (error, warn, info, debug, trace, or directives such as
\fIinfo,keymix=debug\fR); \fB\-\-log\-level\fR overrides it.
.TP
.B TRIDENT_KEYLOG
A key log file for \fBtrident audit\fR; overrides \fBkeylog_file\fR. It holds secrets.
.TP
.B RUNTIME_DIRECTORY
The directory of the control sockets (systemd's \fBRuntimeDirectory=\fR); default
\fI/run/trident\fR.
.TP
.B STATE_DIRECTORY
The parent of the default state directories (systemd's \fBStateDirectory=\fR); default
\fI/var/lib/trident\fR.
.TP
.B JOURNAL_STREAM
Set by systemd: logs go to the journal with their fields.
.TP
.B NOTIFY_SOCKET
Set by systemd for \fBType=notify\fR: READY=1 once the interface is up.
.TP
.B NO_COLOR
No colours in logs on a terminal.
.TP
.B TRIDENT_SECCOMP_LOG
With 1, the packet thread's seccomp filter logs forbidden system calls instead of
refusing them (for debugging only).
.SH EXAMPLES
.PP
Two sites in one go, copied to their gateways, checked and started:
.PP
.nf
.RS
trident pair site\-a site\-b \-\-out /root/pair \-\-endpoint\-a 192.0.2.2 \e
    \-\-endpoint\-b 198.51.100.2 \-\-lan\-a 192.168.10.0/24 \-\-lan\-b 192.168.20.0/24
# on gateway A, with /root/pair/site\-a copied to /etc/trident:
trident check /etc/trident/site\-a.toml
systemctl enable \-\-now trident@site\-a
.RE
.fi
.PP
Keys by hand, like wg:
.PP
.nf
.RS
trident genkey /etc/trident/a.key          # created 0600
trident pubkey < /etc/trident/a.key
trident genpsk /etc/trident/ab.psk
.RE
.fi
.PP
Day two:
.PP
.nf
.RS
trident status                 # the only running interface
trident status site\-a \-\-json | jq '.peers[0].state'
trident showconf site\-a        # the config it runs, defaults filled in
trident reload site\-a          # after editing the peers
trident down site\-a            # pre_down, routes, device, post_down
.RE
.fi
.SH "SEE ALSO"
.BR trident.toml (5),
.BR wg (8),
.BR wg\-quick (8),
.BR systemd.service (5)
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manual_lists_every_command_and_the_extra_sections() {
        let page = String::from_utf8(page_1().unwrap()).unwrap();
        let cmd = crate::Cli::command();
        for sub in cmd.get_subcommands() {
            let name = code(sub.get_name());
            assert!(
                page.contains(&format!(".SS \"trident {name}")),
                "{name} missing"
            );
        }
        for section in [
            "EXIT STATUS",
            "FILES",
            "ENVIRONMENT",
            "EXAMPLES",
            "SEE ALSO",
        ] {
            assert!(
                page.contains(&format!(".SH \"{section}\""))
                    || page.contains(&format!(".SH {section}\n")),
                "{section}"
            );
        }
        // No pointer to per-command pages that nobody installs.
        assert!(!page.contains("trident-up(1)"), "points to trident-up(1)");
        assert!(page.contains(".SS \"trident kme\\-sim init"));
    }

    #[test]
    fn the_configuration_page_is_roff() {
        assert!(
            TRIDENT_TOML_5.starts_with(".TH TRIDENT.TOML 5")
                || TRIDENT_TOML_5.contains("\n.TH TRIDENT.TOML 5")
        );
    }
}
