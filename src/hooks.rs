//! wg-quick's PreUp/PostUp/PreDown/PostDown (`[interface] pre_up` …): each command runs
//! through `/bin/sh -c` with `%i` replaced by the interface name, its output logged. They run
//! on the main runtime (the packet thread's seccomp filter forbids starting programs) with
//! `up`'s reduced privileges: CAP_NET_ADMIN only, no-new-privileges.

use anyhow::{bail, Context, Result};

/// Absolute: hooks never depend on PATH to find the shell.
const SHELL: &str = "/bin/sh";

/// Runs `commands` in order, stopping at the first that fails (as wg-quick does).
pub async fn run(stage: &str, interface: &str, commands: &[String]) -> Result<()> {
    for command in commands {
        let command = command.replace("%i", interface);
        tracing::info!(interface, "{stage}: {command}");
        let output = tokio::process::Command::new(SHELL)
            .arg("-c")
            .arg(&command)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output()
            .await
            .with_context(|| format!("{stage}: starting {SHELL} -c {command:?}"))?;
        for (stream, bytes) in [("stdout", &output.stdout), ("stderr", &output.stderr)] {
            for line in String::from_utf8_lossy(bytes).lines() {
                tracing::info!(interface, "{stage} {stream}: {line}");
            }
        }
        if !output.status.success() {
            bail!("{stage} hook {command:?} failed ({})", output.status);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn commands_run_in_order_with_the_interface_name() {
        let dir = std::env::temp_dir().join(format!("trident-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let log = dir.join("order");
        let _ = std::fs::remove_file(&log);
        let commands = vec![
            format!("echo one %i >> {}", log.display()),
            format!("echo two %i%i >> {}", log.display()),
        ];
        runtime()
            .block_on(run("post_up", "tr0", &commands))
            .unwrap();
        let text = std::fs::read_to_string(&log).unwrap();
        assert_eq!(text, "one tr0\ntwo tr0tr0\n");
    }

    #[test]
    fn a_failure_stops_the_rest_and_names_the_command() {
        let dir = std::env::temp_dir().join(format!("trident-hooks-fail-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let marker = dir.join("after");
        let _ = std::fs::remove_file(&marker);
        let commands = vec![
            "echo out; echo err >&2; exit 3".to_owned(),
            format!("touch {}", marker.display()),
        ];
        let e = runtime()
            .block_on(run("pre_up", "tr0", &commands))
            .unwrap_err()
            .to_string();
        assert!(e.contains("pre_up") && e.contains("exit 3"), "{e}");
        assert!(!marker.exists(), "a later hook ran after a failure");
    }
}
