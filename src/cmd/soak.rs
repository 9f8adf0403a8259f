//! `prodready soak` (the long-running tracker) and `prodready soak-status` (its summary).

use tokio_util::sync::CancellationToken;

use super::cancel_on_signals;
use crate::error::{Exit, Result};
use crate::rt::runtime;
use crate::{checklist, cli, soak};

/// `prodready soak CHECKLIST`: run the checklist's monitors into the store until SIGTERM.
///
/// # Errors
/// An invalid checklist, a store that cannot be opened or migrated.
pub fn cmd_soak(args: cli::SoakArgs) -> Result<Exit> {
    if args.print_prometheus_rules {
        let rules = soak::rules::prometheus_rules(args.slo_target, args.slo_window)
            .map_err(crate::error::Error::Usage)?;
        print!("{rules}");
        return Ok(Exit::Ready);
    }
    let (Some(path), Some(state)) = (&args.checklist, &args.state) else {
        return Err(crate::error::Error::Usage(
            "soak needs a CHECKLIST and --state".into(),
        ));
    };
    let checklist = checklist::load(path)?;
    let opts = soak::run::SoakOptions {
        keep_samples: args.keep_samples,
        state: state.clone(),
        listen: args.listen.clone(),
        auth: auth(args.auth.as_deref())?,
        clock: crate::store::clock::Clock {
            offset_file: args.clock_offset_file.clone(),
        },
        checklist_dir: checklist.dir.clone(),
    };
    let rt = runtime()?;
    let result = rt.block_on(async {
        let cancel = CancellationToken::new();
        cancel_on_signals(cancel.clone(), None);
        soak::run::soak(checklist.monitors, checklist.redactor, opts, cancel).await
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    result.map(|()| Exit::Ready)
}

/// `prodready soak-status`: the store's summary over a window, as text or JSON.
///
/// # Errors
/// A store that cannot be read.
pub fn cmd_soak_status(args: cli::SoakStatusArgs) -> Result<Exit> {
    let summaries = soak::status(&args.state, args.window.as_millis() as i64)?;
    match args.format {
        cli::StatusFormat::Text => {
            println!("{}", soak::tracker_line(&args.state)?);
            print!("{}", soak::render_status(&summaries));
        }
        cli::StatusFormat::Json => println!(
            "{}",
            serde_json::to_string_pretty(&summaries).expect("summaries serialize")
        ),
    }
    Ok(Exit::Ready)
}

/// `prodready status-page`: serve the store's live status page, read-only, until ctrl-c or
/// SIGTERM.
///
/// # Errors
/// A store that does not exist; an address refused ([`soak::status_page::serve::check_bind`])
/// or that cannot be bound.
pub fn cmd_status_page(args: cli::StatusPageArgs) -> Result<Exit> {
    // Fail before serving when there is no store: a page of errors helps nobody.
    soak::status_page::snapshot(&args.state, args.window.as_millis() as i64)?;
    let rt = runtime()?;
    let result = rt.block_on(async {
        let cancel = CancellationToken::new();
        cancel_on_signals(cancel.clone(), None);
        let server = soak::status_page::serve::serve(
            &args.listen,
            args.state.clone(),
            auth(args.auth.as_deref())?,
            args.window.as_millis() as i64,
            cancel.clone(),
        )
        .await?;
        let _ = server.await;
        Ok(())
    });
    rt.shutdown_timeout(std::time::Duration::from_secs(2));
    result.map(|()| Exit::Ready)
}

/// `--auth`, parsed and its variable read; an error never repeats the value given (it may be a
/// secret typed by mistake).
fn auth(spec: Option<&str>) -> Result<Option<soak::status_page::serve::Auth>> {
    spec.map(|s| soak::status_page::serve::Auth::parse(s).map_err(crate::error::Error::Usage))
        .transpose()
}
