//! `vaxcred dlq list|replay`: the dead-letter queue for operators. `list` shows each message's
//! id, error code, reason and source queue (never the body: it may hold patient data); `replay`
//! sends messages back to their source queue once the cause is fixed (a value set updated, an
//! EHR source configured), removing the failure headers.

use std::io::Write as _;

use anyhow::Context as _;
use bus::Bus;
use platform::Config;

/// `vaxcred dlq …`
#[derive(Debug, clap::Subcommand)]
pub enum DlqCommand {
    /// List dead-lettered messages (they stay in the queue).
    List {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print JSON lines instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Republish dead-lettered messages to their source queue.
    Replay {
        /// At most this many.
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Only the message with this AMQP message id.
        #[arg(long)]
        message_id: Option<String>,
    },
}

/// Runs a `dlq` subcommand against the configured broker and prefix.
pub fn run(cmd: &DlqCommand) -> anyhow::Result<i32> {
    let config = Config::load().context("configuration")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("tokio runtime")?;
    runtime.block_on(async {
        let bus = Bus::connect(crate::serve::bus_config(&config))
            .await
            .context("connecting to RabbitMQ")?;
        let result = execute(&bus, cmd).await;
        bus.close().await;
        result
    })
}

async fn execute(bus: &Bus, cmd: &DlqCommand) -> anyhow::Result<i32> {
    let mut out = String::new();
    match cmd {
        DlqCommand::List { limit, json } => {
            let letters = bus.dlq_list(*limit).await?;
            for l in &letters {
                let death = l.x_death.as_ref().map(|d| d.reason.clone());
                if *json {
                    let line = serde_json::json!({
                        "message_id": l.message_id,
                        "error": l.error_code,
                        "reason": l.reason,
                        "source_queue": l.source_queue,
                        "x_death_reason": death,
                        "bytes": l.body.len(),
                    });
                    out.push_str(&format!("{line}\n"));
                } else {
                    out.push_str(&format!(
                        "{}\t{}\t{}\t{}\n",
                        l.message_id.as_deref().unwrap_or("-"),
                        l.error_code.as_deref().or(death.as_deref()).unwrap_or("-"),
                        l.source_queue.as_deref().unwrap_or("-"),
                        l.reason.as_deref().unwrap_or("-"),
                    ));
                }
            }
            if !*json {
                out.push_str(&format!(
                    "{} dead-lettered message(s) shown\n",
                    letters.len()
                ));
            }
        }
        DlqCommand::Replay { limit, message_id } => {
            let report = bus.dlq_replay(*limit, message_id.as_deref()).await?;
            out.push_str(&format!(
                "replayed {}, left in the DLQ {}\n",
                report.replayed, report.skipped
            ));
        }
    }
    let _ = std::io::stdout().lock().write_all(out.as_bytes());
    Ok(0)
}
